"""Issue 12: log entries carry a `type` — absent for a message (every entry written so far), "join"
or "leave" for the join/leave entries of channel rules with log_join_leave."""

from __future__ import annotations

import json

import msgspec

from streams.reader import message_from_entry


def test_issue12_item1_an_entry_without_type_is_a_message_and_prints_as_before() -> None:
    message = message_from_entry("rtgw:stream:{chat:0}", b"5-0", {b"channel": b"chat:a", b"data": b'{"n": 1}'})
    assert message.type == "message"
    assert message.json() == {"n": 1}
    assert "type" not in message.as_json()


def test_issue12_item1_join_and_leave_entries_keep_their_type() -> None:
    fields = {b"channel": b"chat:a", b"user": b"alice", b"data": b'{"reason": "disconnect"}', b"type": b"leave"}
    message = message_from_entry("rtgw:stream:{chat:0}", b"6-0", fields)
    assert message.type == "leave"
    assert json.loads(msgspec.json.encode(message.as_json()))["type"] == "leave"
    assert message_from_entry("k", b"7-0", {**fields, b"type": b"join"}).type == "join"
