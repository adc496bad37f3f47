"""What the operator took away, as the callbacks see it: a frozen snapshot loaded with the rule
set (partitions.selectors.ruleset_load) and swapped in with it, so a revocation, a ban or a
closure reaches every process on every replica by the one path rule changes take.

Pure: no Django, no I/O. A callback asks `RuleSet.access.refusal(...)`; with nothing revoked or
banned that is one truth test of the snapshot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from partitions.patterns import Pattern

# Disconnect codes (Centrifugo: 4500-4999 tell the SDK not to reconnect; 4501-4503 are in use).
DISCONNECT_TOKEN_REVOKED = 4504
DISCONNECT_BANNED = 4505
# A WebSocket close frame carries at most 123 bytes of reason. Centrifugo sends no close frame at all
# for a longer one (internal/websocket WriteControl refuses it): the client sees an abnormal close
# and reconnects, whatever the code said.
CLOSE_REASON_BYTES = 123
BANNED = "banned"  # the refusal reason: "banned: <reason>"


def close_reason(text: str, *, room: int = CLOSE_REASON_BYTES) -> str:
    """`text` cut to `room` bytes of UTF-8, whole characters only."""
    return text.encode()[:room].decode(errors="ignore")


@dataclass(frozen=True, slots=True)
class Refusal:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class BanInfo:
    until: int | None  # unix seconds; None: until unbanned
    reason: str


@dataclass(frozen=True, slots=True)
class AccessSnapshot:
    revoked_jtis: frozenset[str] = frozenset()
    user_cutoffs: Mapping[str, int] = field(default_factory=dict)  # user -> unix s; tokens with iat < it
    bans: Mapping[str, BanInfo] = field(default_factory=dict)
    # Unix s when the first ban in it ends or its first revoked token expires (None: nothing ends
    # by itself). A ban's refusal already ends then; the rules store reloads at that time so the
    # snapshot drops it (and, with nothing left, the callbacks are back to one truth test).
    next_end: float | None = None

    def __bool__(self) -> bool:
        return bool(self.revoked_jtis or self.user_cutoffs or self.bans)

    def refusal(self, *, user: str, jti: str | None, iat: int | None, now: float) -> Refusal | None:
        """Why this connection must go (None: it may stay). `jti`/`iat` are the token's, from the
        connection meta (None for a session or anonymous connection)."""
        ban = self.bans.get(user) if user else None
        if ban is not None and (ban.until is None or now < ban.until):
            return Refusal(DISCONNECT_BANNED, f"banned: {ban.reason}" if ban.reason else "banned")
        if jti is not None and jti in self.revoked_jtis:
            return Refusal(DISCONNECT_TOKEN_REVOKED, "token revoked")
        cutoff = self.user_cutoffs.get(user) if user else None
        if cutoff is not None and jti is not None and (iat is None or iat < cutoff):
            return Refusal(DISCONNECT_TOKEN_REVOKED, "token revoked")
        return None


EMPTY_ACCESS = AccessSnapshot()


@dataclass(frozen=True, slots=True)
class Closure:
    """A kill switch, compiled: channels matching `pattern` are closed for these actions."""

    id: int
    pattern: Pattern
    publish: bool
    subscribe: bool
    reason: str

    def message(self) -> str:
        """What a refused client is told (error CHANNEL_CLOSED): the operator's reason, not the pattern."""
        return f"channel closed: {self.reason}" if self.reason else "channel closed"


def closure_for(closures: Sequence[Closure], channel: str, *, subscribe: bool) -> Closure | None:
    """The first closure that closes `channel` for publish (subscribe=False) or subscribe."""
    for closure in closures:
        if (closure.subscribe if subscribe else closure.publish) and closure.pattern.match(channel)[0]:
            return closure
    return None
