"""Hostile request bodies against the gateway as deployed (hardening issue 9, items 2 and 4): what a
real client sees through Centrifugo, and what a flood of huge bodies does to the workers' memory."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from centrifuge import ReplyError

from tests.e2e import clients
from tests.support.gateway import SECRETS, Gateway

pytestmark = pytest.mark.e2e


def run(coro: object, timeout: float = 60) -> object:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


@pytest.fixture
def deep_json_client() -> Iterator[None]:
    """centrifuge-python encodes commands with json.dumps, which recurses once per level."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    yield
    sys.setrecursionlimit(limit)


def deep(depth: int) -> object:
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


# --- item 2: a client's deep JSON is a 107 it can act on, not a 100 it retries forever ----------


@pytest.mark.usefixtures("deep_json_client")
def test_issue9_item2_a_client_publishing_deep_json_gets_107_not_100(gateway: Gateway) -> None:
    writer_token = gateway.token("writer")

    async def scenario() -> tuple[ReplyError, object]:
        client = await clients.connected(gateway.ws_url, token=writer_token)
        with pytest.raises(ReplyError) as refused:
            await client.publish("chat:deep", deep(982))  # ~2 KB on the wire
        accepted = await client.publish("chat:deep", deep(63))  # the deepest `data` allowed
        await client.disconnect()
        return refused.value, accepted

    error, accepted = run(scenario())  # type: ignore[misc]
    assert (error.code, error.message, error.temporary) == (
        107,
        # Centrifugo sends `data` base64-encoded (binary_encoding): its own limit applies, 63.
        "bad request: JSON nested deeper than 63 levels",
        False,
    )
    assert accepted is not None


@pytest.mark.usefixtures("deep_json_client")
def test_issue9_item2_a_client_connecting_with_deep_data_gets_107_not_100(gateway: Gateway) -> None:
    """Before: error 100 (temporary), so the SDK reconnected forever; connect_refused timed out."""
    disconnected = run(clients.connect_refused(gateway.ws_url, data={"token": "x", "more": deep(982)}))
    assert (disconnected.code, disconnected.reason) == (107, "bad request: JSON nested deeper than 63 levels")  # type: ignore[attr-defined]


# --- item 4: a flood of huge bodies leaves the workers' memory where it was -------------------


def worker_pids(gateway: Gateway) -> list[int]:
    master = int(gateway.supervisorctl("pid", "callback").strip())
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


BODY_MB = 15
CHUNK = b"x" * (256 * 1024)


async def attack(port: int, headers: dict[str, str], *, chunked: bool) -> str:
    """One 15 MB POST /api/publish sent as fast as the server takes it; its status, or what cut it
    short. The answer is read while the body is still being sent, as an attacker would; a raw socket,
    because asyncio's streams drop an answer already received once a write has failed."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    length = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {BODY_MB * 1024 * 1024}\r\n"

    async def send_body() -> None:
        await loop.sock_sendall(sock, f"POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}{length}\r\n".encode())
        for _ in range(BODY_MB * 4):
            await loop.sock_sendall(sock, b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK)
        if chunked:
            await loop.sock_sendall(sock, b"0\r\n\r\n")

    sender = asyncio.ensure_future(send_body())
    try:
        answer = await asyncio.wait_for(loop.sock_recv(sock, 4096), 45)
        return answer.split(b" ")[1].decode() if answer else "closed"
    except ConnectionError as exc:
        return type(exc).__name__
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        sock.close()


async def flood(port: int, headers: dict[str, str], *, chunked: bool = False, parallel: int = 80) -> Counter[str]:
    answers = await asyncio.gather(*(attack(port, headers, chunked=chunked) for _ in range(parallel)))
    return Counter(answers)


# Per worker. Refused by their headers, no body byte is ours: the worker (uvicorn, through
# realtime.gunicorn_worker) buffers at most 64 KB of an unread body and discards the rest once the
# answer is sent, so only allocator noise remains
# (measured: +0.5-5 MiB; before that fix +10-18 MiB a round). Chunked bodies are read up to
# SERVER_API_MAX_BODY each, at most BODY_BYTES_IN_FLIGHT (32 MiB) at once (measured: +20 MiB).
REFUSED_BY_HEADERS_BOUND_MIB = 16
CHUNKED_BOUND_MIB = 64


def test_issue9_item4_huge_bodies_leave_worker_memory_bounded(gateway: Gateway) -> None:
    """80 parallel 15 MB POST /api/publish, three ways: no API key, a valid key with a Content-Length
    over SERVER_API_MAX_BODY, a valid key and a chunked body (no Content-Length). Before: the bridge
    buffered up to 16 MB per request, and the workers went from ~95 MB to 763/863 MB."""
    pids = worker_pids(gateway)
    assert len(pids) == 2  # WEB_CONCURRENCY in tests.support.gateway
    key = {"Authorization": f"Api-Key {SECRETS['GATEWAY_API_KEY']}", "Content-Type": "application/json"}
    started = time.monotonic()
    before = {pid: rss_mib(pid) for pid in pids}
    answers = {
        "no key": run(flood(gateway.port, {"Content-Type": "application/json"})),
        "key, oversized": run(flood(gateway.port, key)),
    }
    refused = {pid: rss_mib(pid) for pid in pids}
    answers["key, chunked"] = run(flood(gateway.port, key, chunked=True))
    after = {pid: rss_mib(pid) for pid in pids}
    elapsed = time.monotonic() - started
    growth = {pid: (round(refused[pid] - before[pid], 1), round(after[pid] - before[pid], 1)) for pid in pids}
    print(f"\nflood answers: {answers}; {elapsed:.1f} s; RSS MiB before {before}, growth (refused, all) {growth}")
    assert worker_pids(gateway) == pids  # no worker died or was replaced
    assert set(answers["no key"]) == {"401"}, answers
    assert set(answers["key, oversized"]) == {"413"}, answers
    assert set(answers["key, chunked"]) <= {"413", "503"}, answers  # 503: over BODY_BYTES_IN_FLIGHT
    assert max(g[0] for g in growth.values()) < REFUSED_BY_HEADERS_BOUND_MIB, growth
    assert max(g[1] for g in growth.values()) < CHUNKED_BOUND_MIB, growth
