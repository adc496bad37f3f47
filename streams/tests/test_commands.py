from __future__ import annotations

import threading
import time
from io import StringIO

import pytest
import redis
from django.core.management import CommandError, call_command

from partitions.store import rules_store
from streams.writer import Appended, stream_append
from tests.support.procs import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rules() -> None:
    # Each test's database starts from the migrations' default rules: forget any cached set.
    rules_store.invalidate()


def publish(channel: str, data: bytes, user: str = "u1") -> Appended:
    target = rules_store.current().target(channel=channel, user=user)
    return stream_append(target=target, channel=channel, user=user, client="c1", data=data)


def tail(*args: str) -> tuple[list[str], str]:
    out, err = StringIO(), StringIO()
    call_command("stream_tail", *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue()


def test_tail_from_start_prints_matching_messages_oldest_first(redis_url: str) -> None:
    appended = []
    for channel, data, user in [
        ("chat:a", b'{"n": 1}', "u1"),
        ("chat:b", b'{"n": 2}', ""),
        ("public:news", b'{"n": 3}', "u1"),  # filtered out by the pattern
        ("chat:a", b'{\n"n": 4}', "u1"),
        ("chat:late", b"{}", "u1"),  # beyond --count
    ]:
        appended.append(publish(channel, data, user))
        # Ids of different partitions order only by millisecond: keep the writes a tick apart.
        time.sleep(0.002)
    lines, err = tail("chat:*", "--from-start", "--count", "3")
    chat = [appended[0], appended[1], appended[3]]
    assert [line.split(" ", 5)[1:] for line in lines] == [
        [chat[0].key, chat[0].entry_id, "chat:a", "u1", '{"n": 1}'],
        [chat[1].key, chat[1].entry_id, "chat:b", "-", '{"n": 2}'],
        [chat[2].key, chat[2].entry_id, "chat:a", "u1", '{ "n": 4}'],  # one line per message
    ]
    assert lines[0].split(" ")[0].endswith("Z")
    assert err.strip() == "tailed 3 messages"


def test_tail_truncates_long_data(redis_url: str) -> None:
    publish("chat:a", b'"' + b"x" * 500 + b'"')
    [line], _ = tail("--from-start", "--count", "1")
    data = line.split(" ", 5)[5]
    assert len(data) == 200
    assert data.endswith("…")


def test_tail_by_default_shows_only_messages_stored_after_it_started(redis_url: str, redis_client: redis.Redis) -> None:
    publish("chat:a", b'"old"')
    result: list[list[str]] = []
    follower = threading.Thread(target=lambda: result.append(tail("--count", "1")[0]), daemon=True)
    follower.start()
    # Blocked in XREAD: it has settled where to start, so what comes next is new to it.
    wait_for(lambda: redis_client.info("clients")["blocked_clients"] >= 1, timeout=10, what="the tail to block")
    new = publish("chat:b", b'"new"')
    follower.join(timeout=5)
    assert not follower.is_alive()
    [[line]] = result
    assert line.split(" ")[2:5] == [new.entry_id, "chat:b", "u1"]


def test_tail_since_starts_after_the_given_id(redis_url: str) -> None:
    first = publish("chat:a", b"1")
    second = publish("chat:a", b"2")
    [line], _ = tail("--since", first.entry_id, "--count", "1")
    assert second.entry_id in line


def test_tail_refuses_a_malformed_id() -> None:
    with pytest.raises(CommandError, match="expected a stream entry id"):
        call_command("stream_tail", "--since", "yesterday")


def test_consume_with_max_messages_prints_json_lines_and_a_summary(redis_url: str) -> None:
    publish("chat:a", b'{"n": 1}')
    publish("public:b", b'{"n": 2}')
    out, err = StringIO(), StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)  # print_handler writes to the process's stdout
        call_command("stream_consume", "--group", "g", "--max-messages", "2", "--block-ms", "100", stderr=err)
    assert sorted(line.split('"channel":"')[1].split('"')[0] for line in out.getvalue().splitlines()) == [
        "chat:a",
        "public:b",
    ]
    assert err.getvalue().strip() == "processed 2, failed 0 (reclaimed 0), dead-lettered 0"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--stream", "nosuch"], "no enabled, storing partition rule writes stream(s) nosuch"),
        (["--partitions", "2"], "--partitions needs --stream"),
        (["--handler", "streams.nosuch.handler"], "No module named 'streams.nosuch'"),
    ],
)
def test_consume_refuses_bad_arguments(args: list[str], error: str) -> None:
    with pytest.raises(CommandError, match=error.replace("(", r"\(").replace(")", r"\)")):
        call_command("stream_consume", "--group", "g", *args)
