"""`python -m bench.revocation`: what token revocation costs (issue 13).

With revocation on, every token connection is refreshed through the refresh proxy at least every
TOKEN_RECHECK_INTERVAL seconds, so N token connections add N / TOKEN_RECHECK_INTERVAL refresh calls
per second (before issue 13 a token connection was never refreshed: it expired at its token's exp
and reconnected). This prints that load per 10,000 connections for a few intervals, and the CPU of
one refresh call measured on the real callback: callbacks.pipeline.answer (body decode, the
RefreshHandler, the metrics), the code both transports run, in-process, with the rule set holding
an empty access snapshot (nothing revoked: the baseline) and one of realistic size (10,000 revoked
jtis not yet expired, 1,000 user cutoffs, 100 bans), alternated in the same run. What gunicorn adds
per request (HTTP parsing, the thread-pool hop of a blocking handler) is not in it: see
bench/RESULTS.md, "The callback server".

It also times what the hot paths gained: sub_refresh (in-process, same snapshots) and the one
check publish and rpc gained (`_connection_gone` with the empty snapshot: one truth test).

    DJANGO_SETTINGS_MODULE=realtime.settings.test .venv/bin/python -m bench.revocation

No server, no Redis, no database (the rule set is built in memory); about a minute.

`--http`: the same refresh call through the shipped gateway (tests.support.gateway: gunicorn,
Redis, Centrifugo on free loopback ports), POSTed by this process on keep-alive connections as
Centrifugo would, CPU of the callback service read from /proc: the whole request's cost. The access
snapshot is written into the gateway's database (10,000 recorded tokens, revoked or not, 1,000
cutoffs, 100 bans) and the rounds alternate empty / realistic; a sub_refresh round per pair is the
baseline of the same run (the call the README's *Taking access away* measured at 114-132 us).
    PATH=$PWD/.venv/bin:$PWD/bin:$PATH .venv/bin/python -m bench.revocation --http
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import django

INTERVALS = (5, 30, 60, 300)
ROUNDS = 7
CALLS = 20_000


def cpu_us_per_call(call: Callable[[], object], calls: int = CALLS) -> float:
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    if "--http" in sys.argv[1:]:
        http_main()
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime.settings.test")
    os.environ["RULES_WATCH"] = "false"
    django.setup()
    from django.conf import settings

    from callbacks import handlers, pipeline, protocol
    from control.access import EMPTY_ACCESS, AccessSnapshot, BanInfo
    from partitions.models import ChannelRule
    from partitions.rules import Defaults, build
    from partitions.selectors import compile_channel_rule
    from partitions.store import rules_store
    from realtime.observability import flush_metrics

    now = int(time.time())
    realistic = AccessSnapshot(
        revoked_jtis=frozenset(uuid.uuid4().hex for _ in range(10_000)),
        user_cutoffs={f"user{i}": now - 3600 for i in range(1_000)},
        bans={f"banned{i}": BanInfo(None, "spam") for i in range(100)},
    )
    # A token connection's refresh, exactly as Centrifugo v6.9.1 sends it (include_connection_meta).
    meta = {"roles": ["editor"], "auth": "token", "jti": uuid.uuid4().hex, "iat": now - 60, "exp": now + 3600}
    common = {"client": "0b7d5b3e-5c2a-4c39-9d5e-1f0c0a7e2b11", "transport": "websocket",
              "protocol": "json", "encoding": "json", "user": "user7", "meta": meta}  # fmt: skip
    refresh_body = protocol.encode(common)
    sub_refresh_body = protocol.encode({**common, "channel": "public:news"})
    refresh, sub_refresh = handlers.RefreshHandler(), handlers.SubRefreshHandler()
    call = pipeline.Call()

    # The sub_refresh below is allowed (as nearly all are): `public:*` open to anyone.
    public = compile_channel_rule(ChannelRule(pattern="public:*", subscribe_access="anyone"))

    def use(access: AccessSnapshot) -> None:
        rules_store._ruleset = build(1, [public], [], Defaults(), access=access)
        rules_store._stale = False

    def answer(handler: pipeline.Handler[object], body: bytes) -> Callable[[], object]:
        return lambda: pipeline.answer(handler, body, call, started=pipeline.now())

    use(realistic)
    assert b'"expire_at"' in pipeline.answer(refresh, refresh_body, call, started=pipeline.now())[1]
    assert b'"expire_at"' in pipeline.answer(sub_refresh, sub_refresh_body, call, started=pipeline.now())[1]
    user_meta = protocol.connection_meta(protocol.msgspec.Raw(protocol.encode(meta)))
    cases: dict[str, list[float]] = {}
    for _ in range(ROUNDS):  # alternated, so load from other work hits both alike
        for label, access in (("empty", EMPTY_ACCESS), ("realistic", realistic)):
            use(access)
            cases.setdefault(f"refresh, {label}", []).append(cpu_us_per_call(answer(refresh, refresh_body)))
            cases.setdefault(f"sub_refresh, {label}", []).append(cpu_us_per_call(answer(sub_refresh, sub_refresh_body)))
            gone = lambda: handlers._connection_gone("user7", user_meta, "publish")  # noqa: E731
            cases.setdefault(f"publish/rpc check, {label}", []).append(cpu_us_per_call(gone, CALLS * 10))
        flush_metrics()
    median = {name: statistics.median(values) for name, values in cases.items()}

    print(f"TOKEN_RECHECK_INTERVAL here: {settings.TOKEN_RECHECK_INTERVAL} s; median of {ROUNDS} alternated rounds")
    print(f"{'CPU per call (us)':<34}{'empty':>10}{'realistic':>11}{'ratio':>8}")
    for what in ("refresh", "sub_refresh", "publish/rpc check"):
        empty, real = median[f"{what}, empty"], median[f"{what}, realistic"]
        print(f"{what:<34}{empty:>10.2f}{real:>11.2f}{real / empty:>8.2f}")
    per_call = median["refresh, realistic"]
    print("\nadded refresh load per 10,000 token connections (CPU: the in-process figure above)")
    print(f"{'TOKEN_RECHECK_INTERVAL':<24}{'calls/s':>10}{'CPU, % of a core':>18}")
    for interval in INTERVALS:
        rate = 10_000 / interval
        print(f"{interval:<24}{rate:>10.0f}{rate * per_call / 1e4:>18.2f}")


SNAPSHOT = """
import datetime, uuid
from django.db import transaction
from django.utils import timezone
from control import models
from partitions.services import ruleset_bump
now = timezone.now()
revoke = {revoke!r}
with transaction.atomic():
    if not models.IssuedToken.objects.exists():
        models.IssuedToken.objects.bulk_create(models.IssuedToken(
            jti=uuid.uuid4().hex, kind="connection", user=f"user{{i % 1000}}", issued_at=now,
            expires_at=now + datetime.timedelta(days=1), ttl=86400, issued_by="bench") for i in range(10_000))
    models.IssuedToken.objects.update(revoked_at=now if revoke else None)
    models.UserTokenCutoff.objects.all().delete()
    models.Ban.objects.all().delete()
    if revoke:
        models.UserTokenCutoff.objects.bulk_create(models.UserTokenCutoff(
            user=f"user{{i}}", before=now - datetime.timedelta(hours=1), actor="bench") for i in range(1000))
        models.Ban.objects.bulk_create(models.Ban(user=f"banned{{i}}", reason="spam", actor="bench")
            for i in range(100))
    ruleset_bump()
"""


def _post_many(url: str, path: str, body: bytes, secret: str, calls: int, threads: int) -> None:
    host, port = url.removeprefix("http://").split(":")
    headers = {"Content-Type": "application/json", "X-Centrifugo-Proxy-Secret": secret}

    errors: list[bytes] = []

    def worker() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        for _ in range(calls // threads):
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200 or b'"result"' not in answer:  # a refusal would measure the wrong path
                errors.append(answer)
                break
        connection.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise SystemExit(f"{path} answered {errors[0]!r}")


def http_main(calls: int = 6000, threads: int = 4, rounds: int = 3) -> None:
    from bench.subrefresh import cpu_by_program
    from tests.support.gateway import SECRETS, Gateway

    now = int(time.time())
    meta = {"roles": ["editor"], "auth": "token", "jti": uuid.uuid4().hex, "iat": now - 60, "exp": now + 7200}
    common = {"client": "0b7d5b3e-5c2a-4c39-9d5e-1f0c0a7e2b11", "transport": "websocket",
              "protocol": "json", "encoding": "json", "user": "user7", "meta": meta}  # fmt: skip
    bodies = {
        "/centrifugo/refresh": json.dumps(common).encode(),
        "/centrifugo/sub_refresh": json.dumps({**common, "channel": "public:news"}).encode(),
    }
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-revocation-") as tmp:
        gateway = Gateway(var_dir=Path(tmp)).start()
        try:
            session = os.getsid(gateway.process.popen.pid)  # type: ignore[union-attr]
            for _ in range(rounds):
                for label, revoke in (("empty", False), ("realistic", True)):
                    done = gateway.manage("shell", "-c", SNAPSHOT.format(revoke=revoke))
                    assert done.returncode == 0, done.stderr
                    time.sleep(1)  # every worker polls the new version (RULES_POLL_INTERVAL 0.2 s)
                    for path, body in bodies.items():
                        if path.endswith("sub_refresh") and label == "realistic":
                            continue  # one baseline round per pair
                        _post_many(gateway.callback_url, path, body, SECRETS["CENTRIFUGO_PROXY_SECRET"], 200, threads)
                        before = cpu_by_program(session)["callbacks"]
                        _post_many(gateway.callback_url, path, body, SECRETS["CENTRIFUGO_PROXY_SECRET"], calls, threads)
                        used = cpu_by_program(session)["callbacks"] - before
                        name = f"{path.rsplit('/', 1)[1]}, {label}"
                        results.setdefault(name, []).append(used / calls * 1e6)
                        print(f"{name}: {used / calls * 1e6:.0f} us of callbacks CPU per call", flush=True)
        finally:
            gateway.stop()
    median = {name: statistics.median(values) for name, values in results.items()}
    baseline = median["sub_refresh, empty"]
    print(f"\nthrough the gateway, {calls} calls x {rounds} rounds, {threads} keep-alive connections; median us "
          "of callbacks CPU per call (ratio to sub_refresh in the same run):")  # fmt: skip
    for name, value in median.items():
        print(f"  {name:<24}{value:>8.0f} us  {value / baseline:.2f}x")
    per_call = median["refresh, realistic"]
    print("added refresh load per 10,000 token connections:")
    for interval in INTERVALS:
        rate = 10_000 / interval
        print(
            f"  TOKEN_RECHECK_INTERVAL {interval:>3} s: {rate:>5.0f} calls/s, {rate * per_call / 1e4:.1f} % of a core"
        )


if __name__ == "__main__":
    main()
