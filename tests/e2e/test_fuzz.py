"""A bounded fuzz run against the callback port of a real gateway (hardening issue 9, acceptance):
structured requests to every proxy path and `POST /api/publish`, with random types in every field,
nesting around and far beyond MAX_JSON_DEPTH, invalid UTF-8, valid and invalid base64, empty, odd
and oversized bodies, wrong content types; mostly with the right secret or API key, so that the
requests get past authentication. Not one may be answered 5xx.

Seeds are fixed: a failure replays. FUZZ_REQUESTS (default 20,000) and FUZZ_SEED change the run;
`make fuzz` runs 100,000.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import socket
import threading
import time
from collections import Counter
from typing import Any

import pytest

from callbacks.json_checks import MAX_JSON_DEPTH
from tests.support.gateway import SECRETS, Gateway

pytestmark = pytest.mark.e2e

REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "20000"))
SEED = int(os.environ.get("FUZZ_SEED", "9"))
CONNECTIONS = 4  # keep-alive connections, one thread each
KINDS = ["connect", "refresh", "subscribe", "sub_refresh", "publish", "rpc", "api"]
FIELDS = {
    "connect": ["data", "b64data", "name", "version", "channels"],
    "refresh": ["user", "meta"],
    "subscribe": ["user", "channel", "token", "data", "b64data", "meta"],
    "publish": ["user", "channel", "data", "b64data", "meta"],
    "sub_refresh": ["user", "channel", "meta"],
    "rpc": ["user", "method", "data", "b64data", "meta"],
    "api": ["channel", "data", "idempotency_key"],
}
ENVELOPE = ["client", "transport", "protocol", "encoding"]
CHANNELS = ["chat:fuzz", "public:fuzz", "secret:x", "inbox:42", "", "chat:" + "x" * 1100, "chat:\u00e9\u6f22", "\x00"]


class Fuzzer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def text(self) -> str:
        r = self.rng
        return r.choice(
            [
                "", "42", "alice", r.choice(CHANNELS), "history", "\u00e9\u6f22\U0001f600", "\ud800"[:0] + "\\",
                "".join(chr(r.randrange(0x20, 0x3000)) for _ in range(r.randrange(1, 40))),
                "x" * r.choice([255, 256, 1024, 1025, 5000]), "[" * 200, '"{' * 50,
                base64.b64encode(r.randbytes(r.randrange(0, 30))).decode(),
            ]
        )  # fmt: skip

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        kind = r.randrange(12) if depth < 4 else r.randrange(7)
        if kind == 0:
            return None
        if kind == 1:
            return r.choice([True, False])
        if kind == 2:
            return r.choice([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30])
        if kind == 3:
            return r.choice([0.5, -1e308, 1e-300, 3.14])
        if kind in (4, 5, 6):
            return self.text()
        if kind in (7, 8):
            return [self.value(depth + 1) for _ in range(r.randrange(0, 5))]
        if kind == 9:
            return {"roles": r.choice([["editor"], "editor", [1, None], []]), "auth": self.value(depth + 1)}
        if kind == 10:
            return {"token": self.text(), "channel": r.choice(CHANNELS), "since": r.choice(["1-0", "x", 5]),
                    "since_ms": r.choice([0, -1, 10**20, "x"]), "limit": r.choice([1, 0, 1000, None])}  # fmt: skip
        return {self.text(): self.value(depth + 1) for _ in range(r.randrange(0, 4))}

    def deep(self) -> bytes:
        """Raw JSON nested around or far beyond the limit, as arrays, objects or both."""
        r = self.rng
        depth = r.choice([MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 100, 982,
                          r.randrange(1000, 60_000)])  # fmt: skip
        shape = r.randrange(3)
        if shape == 0:
            return b"[" * depth + b"1" + b"]" * depth
        if shape == 1:
            return b'{"a":' * depth + b"1" + b"}" * depth
        return b'[{"a":' * (depth // 2) + b"1" + b"}]" * (depth // 2)

    def b64data(self) -> str:
        """What binary_encoding makes Centrifugo send: any client bytes, base64-encoded — random
        bytes, JSON values, JSON nested around and beyond the limit, text that is not UTF-8 — or
        something that is not base64 at all."""
        r = self.rng
        roll = r.random()
        if roll < 0.3:
            return base64.b64encode(r.randbytes(r.randrange(0, 200))).decode()
        if roll < 0.5:
            return base64.b64encode(self.deep()).decode()
        if roll < 0.7:
            return base64.b64encode(json.dumps(self.value()).encode()).decode()
        if roll < 0.8:
            return base64.b64encode(b'{"token": "\xff\xfe", "n": [' + r.randbytes(20) + b"]}").decode()
        return r.choice(["!!!", "abc", "YQ", "YQ==" * 3, "\u00e9", "=" * 8, self.text()])

    def plausible(self, name: str) -> Any:
        """What Centrifugo would send in this field, so that a request reaches its handler."""
        r = self.rng
        if name in ENVELOPE:
            return r.choice(["c1", "websocket", "json", ""])
        if name == "channel":
            return r.choice(CHANNELS[:4])
        if name == "user":
            return r.choice(["42", "alice", ""])
        if name == "method":
            return r.choice(["history", "history", "nope"])
        if name == "meta":
            return {"roles": r.choice([[], ["editor"], ["staff"]]), "auth": r.choice(["", "token", "session"])}
        if name == "data":
            return r.choice([self.value(), {"channel": r.choice(CHANNELS[:4]), "limit": r.randrange(1, 5)},
                             {"token": self.text()}, {"_idempotency_key": self.text(), "n": 1}])  # fmt: skip
        if name == "b64data":  # as Centrifugo sends a client's data with binary_encoding on
            raw = r.randbytes(r.randrange(1, 50)) if r.random() < 0.3 else json.dumps(self.plausible("data")).encode()
            return base64.b64encode(raw).decode()
        if name == "channels":
            return [r.choice(CHANNELS[:4])]
        return self.text()

    def body(self, kind: str) -> bytes:
        r = self.rng
        plausible = r.random() < 0.45
        # Centrifugo's proxies run with binary_encoding: a client's data comes as b64data, mostly.
        payload_field = "b64data" if r.random() < 0.7 else "data"
        fields: dict[str, Any] = {}
        for name in ([] if kind == "api" else ENVELOPE) + FIELDS[kind]:
            roll = r.random()
            if plausible:
                if name not in ("data", "b64data") or name == payload_field:
                    fields[name] = self.plausible(name) if roll < 0.9 else self.value()
                continue
            if roll < 0.15:
                continue  # missing
            if name == "channel":
                fields[name] = r.choice(CHANNELS) if roll < 0.8 else self.value()
            elif name == "b64data":
                fields[name] = self.b64data() if roll < 0.8 else self.value()
            elif name in ("user", "method") and roll < 0.6:
                fields[name] = r.choice(["42", "alice", "", "history", "nope"])
            else:
                fields[name] = self.value()
        if r.random() < 0.2:
            fields[self.text()] = self.value()  # unknown fields
        raw = json.dumps(fields, ensure_ascii=r.random() < 0.5).encode()
        deep_field = r.random()
        if deep_field < 0.15 and raw.endswith(b"}"):  # a deep value in a real field
            name = r.choice([n for n in FIELDS[kind] if n not in ("b64data", "channel")] or ["data"])
            raw = raw[:-1] + (b", " if len(raw) > 2 else b"") + json.dumps(name).encode() + b": " + self.deep() + b"}"
        return self.corrupt(raw)

    def corrupt(self, raw: bytes) -> bytes:
        r = self.rng
        roll = r.random()
        if roll < 0.06:  # invalid UTF-8 inside a string or anywhere
            at = raw.find(b'"', r.randrange(len(raw))) + 1 or r.randrange(len(raw) + 1)
            return (
                raw[:at]
                + r.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
                + raw[at:]
            )
        if roll < 0.09:
            return raw[: r.randrange(len(raw) + 1)]  # truncated
        if roll < 0.11:
            return r.randbytes(r.randrange(0, 300))  # noise
        if roll < 0.13:
            return r.choice([b"", b"null", b"[]", b"1", b'"x"', b"{}", b"\xef\xbb\xbf{}", b"{}" * 3])
        if roll < 0.135:  # far over every cap: refused by its length, before it is read
            return raw + b" " * (1024 * 1024 + r.randrange(1, 300_000))
        if roll < 0.14:  # a large publication under the caps
            return json.dumps(
                {"user": "42", "channel": "chat:fuzz", "data": {"blob": "x" * r.randrange(60_000, 900_000)}}
            ).encode()
        return raw

    def request(self) -> tuple[str, str, bytes, dict[str, str]]:
        r = self.rng
        kind = r.choice(KINDS)
        path = "/api/publish" if kind == "api" else f"/centrifugo/{kind}"
        headers = {
            "Content-Type": r.choice(
                ["application/json"] * 6
                + ["text/plain", "", "multipart/form-data; boundary=x", "application/json; charset=latin-1"]
            )
        }
        roll = r.random()
        if kind == "api":
            key = SECRETS["GATEWAY_API_KEY"] if roll < 0.9 else r.choice(["", "wrong", "\u00e9"])
            scheme = "Api-Key " if roll < 0.85 else r.choice(["Api-Key  ", "Bearer ", "", "api-key "])
            headers["Authorization"] = scheme + key
        elif roll < 0.93:
            headers["X-Centrifugo-Proxy-Secret"] = SECRETS["CENTRIFUGO_PROXY_SECRET"]
        elif roll < 0.97:
            headers["X-Centrifugo-Proxy-Secret"] = r.choice(["", "wrong", SECRETS["CENTRIFUGO_PROXY_SECRET"] + "x"])
        if r.random() < 0.05:
            headers["Cookie"] = r.choice(["sessionid=x", "sessionid=", "a=b; sessionid=\u00e9"])
        if r.random() < 0.05:
            headers["Idempotency-Key"] = self.text()
        return kind, path, self.body(kind), {k: v for k, v in headers.items() if v}


class Connection:
    """HTTP/1.1 keep-alive on a raw socket: the answer is read even when the server refused the
    body before reading it and closed the connection while it was still being sent."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def call(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        reused = self.sock is not None
        status, answer = self._call(path, body, headers)
        if status == 0 and reused:
            # gunicorn closes a connection whose last body was not read whole (it was refused
            # by its length) without always saying so: the next request finds it closed.
            status, answer = self._call(path, body, headers)
        return status, answer

    def _call(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{head}\r\n"
        with contextlib.suppress(OSError):  # refused before the body was read: the answer is waiting
            self.sock.sendall(request.encode("latin-1", "replace") + body)
        try:
            status, answer, keep = self._read()
        except OSError:
            status, answer, keep = 0, b"", False
        if not keep:
            self.sock.close()
            self.sock = None
        return status, answer

    def _read(self) -> tuple[int, bytes, bool]:
        assert self.sock is not None
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                return 0, b"", False
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return int(lines[0].split(" ")[1]), rest[:length], headers.get("connection", "").lower() != "close"


def outcome(kind: str, status: int, answer: bytes) -> str:
    try:
        reply = json.loads(answer)
    except ValueError:  # gunicorn's own refusals (e.g. a NUL in a header value) are plain text
        return f"{status} text"
    if not isinstance(reply, dict):
        return f"{status} {reply!r}"
    if "error" in reply:
        return f"{status} error {reply['error'].get('code')}"
    return f"{status} {next(iter(reply), '-')}"


def test_fuzz_every_callback_and_the_server_api_answers_no_5xx(gateway: Gateway) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    server_errors: list[tuple[str, int, bytes, bytes]] = []
    lock = threading.Lock()
    per_thread = REQUESTS // CONNECTIONS

    def worker(seed: int) -> None:
        fuzzer, connection = Fuzzer(seed), Connection(gateway.port)
        for _ in range(per_thread):
            kind, path, body, headers = fuzzer.request()
            status, answer = connection.call(path, body, headers)
            with lock:
                counts[(kind, outcome(kind, status, answer))] += 1
                if status >= 500 or status == 0:
                    server_errors.append((kind, status, body[:300], answer[:300]))

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(SEED * 1000 + i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    by_status = Counter(label.split(" ", 1)[0] for _, label in counts.elements())
    print(
        f"\nfuzz: {total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s), seed {SEED}; by status {dict(by_status)}"
    )
    for kind in KINDS:
        print(f"  {kind}: {dict(sorted((label, n) for (k, label), n in counts.items() if k == kind))}")
    assert total == per_thread * CONNECTIONS >= min(REQUESTS, 20_000) - CONNECTIONS
    assert not server_errors, server_errors[:5]
    assert gateway.process is not None
    log = gateway.process.log_path.read_text(errors="replace")
    assert "Traceback" not in log, gateway.process.tail()  # no request was an unexpected error
    # The run reached the handlers, not only the refusals.
    assert counts[("publish", "200 result")] > 0
    assert counts[("api", "200 result")] > 0
