"""The Centrifugo proxy callbacks, one `Handler` each. Each reads like the protocol: parse (done
by callbacks.pipeline against the request struct) -> decide -> act -> answer. None of them sees a
transport's request: what they need besides the body comes in the `Call`."""

from __future__ import annotations

import binascii
import functools
import logging
import time
from typing import Any

import msgspec
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils.module_loading import import_string

from callbacks import protocol, rpc
from callbacks.enrichment import envelope, name_in_info, user_display_name
from callbacks.json_checks import DECODE_ERRORS, data_problem
from callbacks.pipeline import Call, Handler
from callbacks.protocol import (
    ConnectRequest,
    PublishRequest,
    RefreshRequest,
    Reply,
    RpcRequest,
    SubRefreshRequest,
    SubscribeRequest,
)
from callbacks.publishing import Accepted, Publication, Rejected, publication_accept, publication_accept_async
from callbacks.tokens import TokenRejected, token_verify
from control.access import AccessSnapshot
from partitions.rules import Action, Decision
from partitions.store import rules_store
from realtime.wsgi_bridge import run_blocking
from streams.joinleave import Member, member_seen, member_seen_async
from streams.payload import is_json_text
from streams.writer import StreamUnavailable

logger = logging.getLogger("callbacks")
_decode_connect_data = msgspec.json.Decoder(protocol.ConnectData).decode


class ConnectHandler(Handler[ConnectRequest]):
    """Connections without a JWT: a token in the connect data, a Django session, or anonymous.

    On the event loop when no session has to be read (a reconnect storm is mostly this): a token
    in the connect data, or no session cookie at all; the session store is read in a thread."""

    request_type = ConnectRequest
    kind = "connect"
    uses_session = True

    def handle(self, payload: ConnectRequest, call: Call) -> Reply:
        answer = self.answer_token(payload)
        if answer is not None:
            return answer
        return self.answer_session(call.session_key)

    async def handle_async(self, payload: ConnectRequest, call: Call) -> Reply:
        answer = self.answer_token(payload)
        if answer is not None:
            return answer
        if not call.session_key:
            return _anonymous()
        return await run_blocking(self.answer_session, call.session_key)

    @staticmethod
    def answer_token(payload: ConnectRequest) -> Reply | None:
        try:
            token = _connect_token(_payload_bytes(payload))
        except BadPayload as exc:
            return exc.reply
        if not token:
            return None
        try:
            verified = token_verify(token)
        except TokenRejected as exc:
            logger.info("connect refused: %s (client %s)", exc, payload.client)
            code = protocol.DISCONNECT_TOKEN_EXPIRED if exc.expired else protocol.DISCONNECT_INVALID_TOKEN
            return protocol.disconnect(code, str(exc))
        access = rules_store.current().access
        if access:
            gone = connection_refused(access, verified.user, verified.jti, verified.iat, "connect")
            if gone is not None:
                return gone
        meta = dict(verified.meta)
        # What the refresh proxy needs to re-check the token (Centrifugo does not resend it).
        meta.update(auth="token", jti=verified.jti, iat=verified.iat, exp=verified.expire_at)
        name = name_in_info(verified.info)
        if name is not None:  # the publish proxy sees meta, not info (callbacks.enrichment)
            meta["name"] = name
        body: dict[str, Any] = {"user": verified.user, "expire_at": _token_expire_at(verified.expire_at), "meta": meta}
        if verified.info is not None:
            body["info"] = verified.info
        return protocol.result(body)

    @staticmethod
    def answer_session(session_key: str) -> Reply:
        """The user of the session whose key came in the Cookie header Centrifugo forwards
        (proxy http_headers: Cookie); Django's auth checks it as for any request."""
        if not session_key:
            return _anonymous()
        request = HttpRequest()  # what django.contrib.auth reads: the session, nothing else
        request.session = session = _session_store(session_key)
        user = get_user(request)
        if user.is_authenticated:
            access = rules_store.current().access
            if access:
                gone = connection_refused(access, str(user.pk), None, None, "connect")
                if gone is not None:
                    return gone
            roles = sorted(user.groups.values_list("name", flat=True))
            if user.is_staff:
                roles.append("staff")
            return protocol.result(
                {
                    "user": str(user.pk),
                    "expire_at": int(time.time()) + settings.SESSION_CONNECTION_TTL,
                    "meta": {
                        "roles": roles,
                        "auth": "session",
                        "sid": session.session_key,
                        "name": user_display_name(user),
                    },
                }
            )
        return _anonymous()


def connection_refused(access: AccessSnapshot, user: str, jti: str | None, iat: int | None, kind: str) -> Reply | None:
    """The disconnect for a connection whose token an operator revoked or whose user is banned
    (None: it may stay). Callers test `access` first: with nothing revoked or banned, that truth
    test is all a callback pays."""
    refusal = access.refusal(user=user, jti=jti, iat=iat, now=time.time())
    if refusal is None:
        return None
    logger.info("%s: user=%r jti=%r disconnected (%s): %s", kind, user, jti, refusal.code, refusal.reason)
    return protocol.disconnect(refusal.code, refusal.reason)


def _connection_gone(user: str, meta: protocol.ConnectionMeta, kind: str) -> Reply | None:
    """`connection_refused` for a call of an established connection (its meta decoded)."""
    access = rules_store.current().access
    if not access:
        return None
    return connection_refused(access, user, meta.jti, meta.iat, kind)


def _token_expire_at(exp: int) -> int:
    """When a token connection is next re-checked by the refresh proxy: at its token's expiry, or
    within TOKEN_RECHECK_INTERVAL, whichever comes first (exp 0: a token that never expires)."""
    recheck = int(time.time()) + settings.TOKEN_RECHECK_INTERVAL
    return min(exp, recheck) if exp else recheck


def _anonymous() -> Reply:
    if settings.ALLOW_ANONYMOUS:
        return protocol.result({"user": ""})
    return protocol.disconnect(protocol.DISCONNECT_UNAUTHORIZED, "unauthorized")


def _connect_token(data: bytes) -> str:
    """The `token` of connect data `{"token": "..."}`; "" when there is none or it is not that shape."""
    if not data:
        return ""
    try:
        return _decode_connect_data(data).token
    except DECODE_ERRORS:
        return ""


class RefreshHandler(Handler[RefreshRequest]):
    """Called when a proxy-authenticated connection (or a Centrifugo-verified token's, its meta
    claim carrying the jti) reaches its expire_at. A token connection is answered on the event
    loop (one every TOKEN_RECHECK_INTERVAL per connection: bench/RESULTS.md, "Token revocation");
    a session connection reads the session store in a thread."""

    request_type = RefreshRequest
    kind = "refresh"

    def handle(self, payload: RefreshRequest, call: Call) -> Reply:
        meta = protocol.connection_meta(payload.meta)
        return self.answer(payload.user, meta) or self.answer_session(payload.user, meta)

    async def handle_async(self, payload: RefreshRequest, call: Call) -> Reply:
        meta = protocol.connection_meta(payload.meta)
        return self.answer(payload.user, meta) or await run_blocking(self.answer_session, payload.user, meta)

    @staticmethod
    def answer(user: str, meta: protocol.ConnectionMeta) -> Reply | None:
        """The answer that needs no I/O; None: a session connection (`answer_session`)."""
        gone = _connection_gone(user, meta, "refresh")
        if gone is not None:
            return gone
        if meta.auth == "session" and meta.sid:
            return None
        if meta.jti is not None and meta.exp is not None and (not meta.exp or time.time() < meta.exp):
            # A token connection (connect data, or a Centrifugo-verified token whose meta claim
            # carries its jti) not revoked: it lives on until its token expires, re-checked here
            # at least every TOKEN_RECHECK_INTERVAL.
            return protocol.result({"expire_at": _token_expire_at(meta.exp)})
        # Its token expired (or it predates the jti/exp meta): the client reconnects and presents
        # a fresh one (Centrifugo does not resend the token here).
        return _EXPIRED

    @staticmethod
    def answer_session(user: str, meta: protocol.ConnectionMeta) -> Reply:
        if _session_still_valid(meta.sid, user):
            return protocol.result({"expire_at": int(time.time()) + settings.SESSION_CONNECTION_TTL})
        return _EXPIRED


_EXPIRED = protocol.result({"expired": True})


def _session_store(session_key: str | None) -> SessionBase:
    store: SessionBase = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key)
    return store


def _session_still_valid(session_key: str, user: str) -> bool:
    return bool(user) and str(_session_store(session_key).get("_auth_user_id", "")) == user


def _may_subscribe(payload: SubscribeRequest | SubRefreshRequest, refused: str) -> Decision | Reply:
    """The rules' answer for subscribe and sub_refresh alike; a refusal is logged as `refused`.
    A connection whose token was revoked or whose user is banned gets the disconnect (a Reply):
    this is how a connection whose token Centrifugo verified is cut."""
    ruleset = rules_store.current()
    meta = protocol.connection_meta(payload.meta)
    if ruleset.access:
        kind = "subscribe" if isinstance(payload, SubscribeRequest) else "sub_refresh"
        gone = connection_refused(ruleset.access, payload.user, meta.jti, meta.iat, kind)
        if gone is not None:
            return gone
    decision = ruleset.decide(Action.SUBSCRIBE, channel=payload.channel, user=payload.user, roles=meta.roles)
    if not decision.allowed:
        logger.info("%s: user=%r channel=%r: %s", refused, payload.user, payload.channel, decision.reason)
    return decision


class SubscribeHandler(Handler[SubscribeRequest]):
    request_type = SubscribeRequest
    kind = "subscribe"

    def handle(self, payload: SubscribeRequest, call: Call) -> Reply:
        reply, joining = self.answer(payload)
        if joining is None:
            return reply
        try:
            member_seen(joining, joining=True)
        except StreamUnavailable as exc:
            return _join_not_stored(joining, exc)
        return reply

    async def handle_async(self, payload: SubscribeRequest, call: Call) -> Reply:
        reply, joining = self.answer(payload)
        if joining is None:
            return reply
        try:
            await member_seen_async(joining, joining=True)
        except StreamUnavailable as exc:
            return _join_not_stored(joining, exc)
        return reply

    @staticmethod
    def answer(payload: SubscribeRequest) -> tuple[Reply, Member | None]:
        """The answer, and the member whose join must be stored before it is given (None: none)."""
        decision = _may_subscribe(payload, "subscribe denied")
        if not isinstance(decision, Decision):
            return decision, None
        if not decision.allowed:
            return protocol.DENIED, None
        rule = decision.rule
        if rule is not None and rule.allow_binary and payload.protocol != "protobuf":
            # Centrifugo hands publications over as they are: raw bytes in a JSON frame would
            # disconnect this client (1007) at the first binary publication, or on history.
            return _BINARY_CHANNEL, None
        body: dict[str, Any] = {}
        if rule is not None and rule.overrides:
            body["override"] = {k: {"value": v} for k, v in rule.overrides.items()}
        if settings.SUBSCRIPTION_RECHECK_INTERVAL:
            body["expire_at"] = _unix_now() + SUBSCRIBE_LEAD
        reply = protocol.result(body) if body else protocol.EMPTY_RESULT
        if rule is None or not rule.options.get("log_join_leave"):  # the switch's cost when off
            return reply, None
        return reply, _member(payload)


def _member(payload: SubscribeRequest | SubRefreshRequest) -> Member | None:
    """The member to record for an allowed subscription whose rule logs joins and leaves. None
    where the channel stores nothing, or without re-checks (no sub_refresh, so no heartbeat: a
    leave could not be told)."""
    if not settings.SUBSCRIPTION_RECHECK_INTERVAL:
        _warn_no_heartbeat()
        return None
    target = rules_store.current().target(channel=payload.channel, user=payload.user)
    if not target.store:
        return None
    return Member(target=target, channel=payload.channel, user=payload.user, client=payload.client)


@functools.cache
def _warn_no_heartbeat() -> None:
    logger.warning(
        "a channel rule has log_join_leave on but SUBSCRIPTION_RECHECK_INTERVAL is 0: no sub_refresh "
        "heartbeat tells when a member leaves, so no join or leave entries are written"
    )


def _join_not_stored(member: Member, exc: StreamUnavailable) -> Reply:
    # The join must precede the member's messages in the log: no join, no subscription (the
    # client's SDK retries a temporary error).
    logger.warning("subscribe: join of client %s to %r not stored: %s", member.client, member.channel, exc)
    return _JOIN_UNAVAILABLE


_JOIN_UNAVAILABLE = protocol.error(
    protocol.STORE_UNAVAILABLE, "join not stored: message log unavailable, retry later", temporary=True
)
_BINARY_CHANNEL = protocol.error(
    protocol.BAD_REQUEST, "this channel carries binary publications: subscribe with the protobuf protocol"
)


class SubRefreshHandler(Handler[SubRefreshRequest]):
    """Re-checks a live subscription against the current rules, every SUBSCRIPTION_RECHECK_INTERVAL
    seconds (Centrifugo's presence tick calls it once the expire_at we gave has passed): a rule
    change ends the subscriptions it no longer allows."""

    request_type = SubRefreshRequest
    kind = "sub_refresh"

    def handle(self, payload: SubRefreshRequest, call: Call) -> Reply:
        reply, member = self.answer(payload)
        if member is not None:
            try:
                member_seen(member, joining=False)
            except StreamUnavailable as exc:
                _heartbeat_lost(member, exc)
        return reply

    async def handle_async(self, payload: SubRefreshRequest, call: Call) -> Reply:
        reply, member = self.answer(payload)
        if member is not None:
            try:
                await member_seen_async(member, joining=False)
            except StreamUnavailable as exc:
                _heartbeat_lost(member, exc)
        return reply

    @staticmethod
    def answer(payload: SubRefreshRequest) -> tuple[Reply, Member | None]:
        """The answer, and the member whose heartbeat it is (None: its rule logs no joins)."""
        decision = _may_subscribe(payload, "sub_refresh expired")
        if not isinstance(decision, Decision):
            return decision, None
        if not decision.allowed:
            return _EXPIRED, None  # its leave comes from the reaper, as for any end
        if not settings.SUBSCRIPTION_RECHECK_INTERVAL:
            return protocol.EMPTY_RESULT, None  # no expire_at: not asked again (a token's own expiry was reached)
        reply = protocol.result({"expire_at": _unix_now() + REFRESH_LEAD})
        if decision.rule is None or not decision.rule.options.get("log_join_leave"):  # the switch's cost when off
            return reply, None
        return reply, _member(payload)


def _heartbeat_lost(member: Member, exc: StreamUnavailable) -> None:
    # The subscription stays (Redis being down is no reason to end it); the reaper may then take
    # the member for gone (a leave), and the next heartbeat that is stored joins it again.
    logger.warning("sub_refresh: heartbeat of client %s on %r not stored: %s", member.client, member.channel, exc)


# How far ahead of now (unix seconds) the expire_at we give lies. Centrifugo checks expiry on each
# client's presence tick (every SUBSCRIPTION_RECHECK_INTERVAL, see centrifugo/run.sh) and calls
# sub_refresh once `now > expire_at` (whole seconds; expired_sub_close_delay is set to ~0):
# - sub_refresh: with now + 1, `now > expire_at` holds again 1-2 s after the tick that asked, so
#   the next tick (an interval >= 2 s later) asks again: one call per subscription per interval.
#   The second of lead keeps Centrifugo from reading it as already past (expired) while the
#   clocks agree within 1 s.
# - subscribe: Centrifugo refuses an expire_at that is not after its own now, and now + 1 would be
#   when the answer crosses a second boundary on its way; now + 2 leaves a second for that.
SUBSCRIBE_LEAD = 2
REFRESH_LEAD = 1


def _unix_now() -> int:
    return int(time.time())


class PublishHandler(Handler[PublishRequest]):
    request_type = PublishRequest
    kind = "publish"

    def handle(self, payload: PublishRequest, call: Call) -> Reply:
        try:
            data = _payload_bytes(payload)
        except BadPayload as exc:
            return exc.reply
        meta = protocol.connection_meta(payload.meta)
        gone = _connection_gone(payload.user, meta, "publish")
        if gone is not None:
            return gone
        return _publish_reply(publication_accept(**_publication(payload, data, meta)), payload, data, meta)

    async def handle_async(self, payload: PublishRequest, call: Call) -> Reply:
        try:
            data = _payload_bytes(payload)
        except BadPayload as exc:
            return exc.reply
        meta = protocol.connection_meta(payload.meta)
        gone = _connection_gone(payload.user, meta, "publish")
        if gone is not None:
            return gone
        outcome = await publication_accept_async(**_publication(payload, data, meta))
        return _publish_reply(outcome, payload, data, meta)


_BAD_B64 = protocol.error(protocol.BAD_REQUEST, "b64data is not valid base64")


class BadPayload(Exception):
    """A client's `b64data` that is refused before anything reads it; `reply` says why (107)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply)
        self.reply = reply


def _publication(payload: PublishRequest, data: bytes, meta: protocol.ConnectionMeta) -> Publication:
    # With the publish proxy's binary_encoding on, every publication arrives as b64data, JSON
    # clients' too: what the bytes are decides, not how they travelled.
    return {"channel": payload.channel, "user": payload.user, "client": payload.client,
            "roles": meta.roles, "data": data, "binary": not is_json_text(data)}  # fmt: skip


def _publish_reply(
    outcome: Accepted | Rejected, payload: PublishRequest, data: bytes, meta: protocol.ConnectionMeta
) -> Reply:
    if isinstance(outcome, Rejected):
        return outcome.reply()
    body: dict[str, Any] = {"tags": outcome.tags()} if outcome.appended else {}
    if outcome.enrich:
        # What subscribers receive (and Centrifugo's history keeps); the log keeps `data` as sent.
        enriched = envelope(data=data, user=payload.user, client=payload.client, name=meta.name,
                            appended=outcome.appended)  # fmt: skip
        body["data"] = msgspec.Raw(enriched)
    if outcome.broadcast_key:
        # Centrifugo keeps the first result under this key (per channel) for a while and answers
        # a retry with it instead of broadcasting again: subscribers see the message once too.
        # Not the raw key: another publisher's same raw key on this channel must be broadcast.
        body["idempotency_key"] = outcome.broadcast_key
    return protocol.result(body)


def _payload_bytes(payload: PublishRequest | RpcRequest | ConnectRequest) -> bytes:
    """The client's payload: `b64data` decoded (the proxies run with binary_encoding, so Centrifugo
    can pass bytes that are not JSON), else `data` as sent (the body's check covered it). Raises
    BadPayload when b64data is not base64, or is text nested deeper than the input limits allow."""
    if not payload.b64data:
        return bytes(payload.data)
    try:
        data = binascii.a2b_base64(payload.b64data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise BadPayload(_BAD_B64) from None
    problem = data_problem(data)
    if problem is not None:
        raise BadPayload(protocol.error(protocol.BAD_REQUEST, problem))
    return data


class RpcHandler(Handler[RpcRequest]):
    request_type = RpcRequest
    kind = "rpc"
    blocking = True  # history reads the streams through redis-py

    def handle(self, payload: RpcRequest, call: Call) -> Reply:
        meta = protocol.connection_meta(payload.meta)
        gone = _connection_gone(payload.user, meta, "rpc")
        if gone is not None:
            return gone
        method = rpc.METHODS.get(payload.method)
        if method is None:
            return protocol.error(protocol.METHOD_NOT_FOUND, f"unknown method {payload.method!r}")
        try:
            data = _payload_bytes(payload)
        except BadPayload as exc:
            return exc.reply
        return method(user=payload.user, roles=meta.roles, data=data)
