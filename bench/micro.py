"""`python -m bench.micro`: the per-call costs that module docstrings used to state, measured in-process
with timeit (best of 7 repeats, so the least disturbed run; no server, no Redis). bench/RESULTS.md
records each run's figures with its date; the docstrings point there instead of carrying numbers.

    DJANGO_SETTINGS_MODULE=realtime.settings.test .venv/bin/python -m bench.micro
"""

from __future__ import annotations

import os
import timeit
from collections.abc import Callable

import django
import msgspec

# The exact body Centrifugo v6 sends to the publish proxy (bench/README.md, section 1).
PUBLISH_BODY = (
    b'{"client":"0b7d5b3e-5c2a-4c39-9d5e-1f0c0a7e2b11","transport":"websocket","protocol":"json",'
    b'"encoding":"binary","user":"42","channel":"chat:room1","b64data":"eyJ0ZXh0IjoiaGVsbG8ifQ==",'
    b'"meta":{"roles":[]}}'
)


def bracketed(size: int, objects: int) -> bytes:
    """A JSON array of `objects` small objects (so `objects` + 1 opening brackets, nested 2 deep),
    padded with one string to exactly `size` bytes: shallow, but past the bracket count that makes
    json_problem run its exact depth scan."""
    head = b"[" + b",".join([b'{"k":"vvvvv"}'] * objects) + b',"'
    body = head + b"p" * (size - len(head) - 2) + b'"]'
    assert len(body) == size
    msgspec.json.decode(body)
    return body


def best_us(call: Callable[[], object], *, repeat: int = 7) -> float:
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime.settings.test")
    django.setup()
    from django.conf import settings

    from callbacks.json_checks import json_problem
    from control.access import Closure
    from partitions.patterns import Pattern
    from partitions.rules import Action, RuleSet
    from streams.idempotency import PublicationKey
    from streams.payload import is_json_text

    def key_of(data: bytes) -> Callable[[], object]:
        return lambda: PublicationKey.of(user="42", client="c", channel="chat:room1", key="k1", data=data, binary=False)

    small, large = bracketed(5_000, 300), bracketed(50_000, 3_000)
    attack = b"[" * (1 << 20)
    text = b'{"text":"' + b"h" * 89 + b'"}'
    # Each case measures what it says: the accepted bodies pass, the attack is refused.
    assert json_problem(PUBLISH_BODY) is None
    assert json_problem(small) is None
    assert json_problem(large) is None
    assert json_problem(attack)
    assert len(text) == 100
    assert is_json_text(text)
    # The kill switch (control.access.closure_for, in RuleSet.decide): the shipped rules plus
    # closures of other prefixes (the channel passes them all), or one that closes it.
    from bench.rules import generate_rules

    rules = generate_rules(10)

    def decide_with(*patterns: str) -> Callable[[], object]:
        closures = [Closure(i, Pattern.parse(p), True, True, "r") for i, p in enumerate(patterns)]
        ruleset = RuleSet(version=1, channel_rules=rules, closures=closures)
        return lambda: ruleset.decide(Action.PUBLISH, channel="chat:room1", user="42")

    others = ("orders:*", "news:global", "inbox:{user}", "game:*:eu", "ns1:*", "ns2:*", "ns3:*", "ns4:*")
    assert decide_with()().allowed
    assert decide_with(*others[:3])().allowed
    assert not decide_with(*others[:2], "chat:*")().allowed
    cases: list[tuple[str, Callable[[], object]]] = [
        ("partitions.rules: decide publish, no closure", decide_with()),
        ("partitions.rules: decide publish, 3 closures of other channels", decide_with(*others[:3])),
        ("partitions.rules: decide publish, 8 closures of other channels", decide_with(*others)),
        ("partitions.rules: decide publish, refused by the 3rd of 3 closures", decide_with(*others[:2], "chat:*")),
        ("streams.idempotency: PublicationKey.of, 110-byte data", key_of(b"x" * 110)),
        ("streams.idempotency: PublicationKey.of, 64 KiB data", key_of(b"x" * 65_536)),
        ("callbacks.json_checks: json_problem, the publish body above", lambda: json_problem(PUBLISH_BODY)),
        ("callbacks.json_checks: json_problem, 5 KB with 301 brackets", lambda: json_problem(small)),
        ("msgspec.json.decode of the same 5 KB", lambda: msgspec.json.decode(small)),
        ("callbacks.json_checks: json_problem, 50 KB with 3,001 brackets", lambda: json_problem(large)),
        ("msgspec.json.decode of the same 50 KB", lambda: msgspec.json.decode(large)),
        ("callbacks.json_checks: json_problem, 1 MiB of '[' (nesting attack)", lambda: json_problem(attack)),
        ("streams.payload: is_json_text, 100-byte publication", lambda: is_json_text(text)),
        ("django.conf.settings.CALLBACK_MAX_BODY (one LazyObject read)", lambda: settings.CALLBACK_MAX_BODY),
    ]
    for name, call in cases:
        print(f"{best_us(call):10.2f} us  {name}", flush=True)


if __name__ == "__main__":
    main()
