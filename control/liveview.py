"""What the admin's live view reads besides the channel's publications (which the browser receives
from Centrifugo itself): the channel's join and leave entries in the message log, its presence
count, and where the browser finds Centrifugo. The views are in control.liveview_views.

Joins and leaves: entries of `type` join/leave (streams.joinleave) that the subscribe proxy and the
reaper write to the partition the channel's partition rule names, only where the channel's rule
has `log_join_leave`. A partition rule keyed by user spreads them over every partition of its
stream, so all of them are read: one XREAD of each (multiread: one pipeline on a Redis Cluster)
after a cursor per partition that the page sends back with its next poll. A poll reads at most
READ_BATCH entries per partition; on a partition busier than that per poll the view falls behind
and says so (`behind`), it never scans more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port

from callbacks.presence_api import channel_problem
from callbacks.server_api import CentrifugoUnavailable, centrifugo_call
from partitions.rules import Action, RuleSet
from realtime.redis import Client, get_redis
from streams.catalog import stream_specs_of
from streams.multiread import read_streams
from streams.reader import message_from_entry
from streams.writer import stream_key

READ_BATCH = 1000
JOIN_LEAVE = ("join", "leave")


def websocket_url(request: HttpRequest) -> str:
    """LIVE_VIEW_WEBSOCKET_URL, else the admin's own host on Centrifugo's port: the admin is on PORT
    (3000) and Centrifugo on CENTRIFUGO_PORT (8000) of the same host in every shipped topology
    but the multi-instance one, whose nginx needs the setting."""
    if settings.LIVE_VIEW_WEBSOCKET_URL:
        return str(settings.LIVE_VIEW_WEBSOCKET_URL)
    host, _ = split_domain_port(request.get_host())
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{host}:{settings.CENTRIFUGO_PORT}/connection/websocket"


def live_channel_problem(channel: str) -> str | None:
    """Why no client can be subscribed to `channel` (so there is nothing to watch), or None."""
    return channel_problem(channel)


def join_leave_keys(ruleset: RuleSet, channel: str) -> list[str]:
    """The partitions that hold `channel`'s join and leave entries; [] when its rule logs none."""
    rule = ruleset.decide(Action.SUBSCRIBE, channel=channel, user="").rule
    if rule is None or not rule.options.get("log_join_leave"):
        return []
    target = ruleset.target(channel=channel, user="")
    if not target.store:
        return []
    [spec] = [s for s in stream_specs_of(ruleset) if s.name == target.stream]
    return [stream_key(spec.name, p) for p in range(spec.partitions)]


@dataclass
class JoinLeave:
    events: list[dict[str, Any]] = field(default_factory=list)
    cursor: dict[str, str] = field(default_factory=dict)
    behind: bool = False


def join_leave_read(
    keys: list[str], cursor: dict[str, str], channel: str, *, client: Client | None = None
) -> JoinLeave:
    """`channel`'s joins and leaves after `cursor` (key -> entry id) in `keys`, oldest first, and
    the cursor to send next. A key missing from the cursor (the first poll) starts at its newest
    entry: the view shows what happens from when it opened."""
    client = client or get_redis()
    found = JoinLeave()
    start = [key for key in keys if key not in cursor]
    if start:
        pipe = client.pipeline(transaction=False)
        for key in start:
            pipe.xrevrange(key, count=1)
        for key, newest in zip(start, pipe.execute(), strict=True):
            found.cursor[key] = _text(newest[0][0]) if newest else "0-0"
    positions = {key: cursor[key] for key in keys if key in cursor}
    for key, entries in read_streams(client, positions, count=READ_BATCH):
        key = _text(key)
        found.behind = found.behind or len(entries) >= READ_BATCH
        for entry_id, fields in entries:
            entry = message_from_entry(key, entry_id, fields)
            found.cursor[key] = entry.id
            if entry.type in JOIN_LEAVE and entry.channel == channel:
                found.events.append({"type": entry.type, "id": entry.id, "user": entry.user, "client": entry.client,
                                     "time": int(entry.id.partition("-")[0])})  # fmt: skip
    for key in positions:
        found.cursor.setdefault(key, positions[key])
    found.events.sort(key=lambda e: (e["time"], e["id"]))
    return found


def presence_count(channel: str) -> dict[str, Any]:
    """Centrifugo's presence_stats for `channel` (every node's, with the Redis engine), or the
    reason there is none. The live view's own subscription is not in it (its token turns its
    presence off)."""
    try:
        answer = centrifugo_call("presence_stats", {"channel": channel})
    except CentrifugoUnavailable as exc:
        return {"error": f"Centrifugo is unavailable: {exc}"}
    if "error" in answer:
        error = answer["error"]
        return {"error": f"Centrifugo answered {error.get('code')}: {error.get('message', '')}"}
    result = answer.get("result") or {}
    return {"num_clients": int(result.get("num_clients", 0)), "num_users": int(result.get("num_users", 0))}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
