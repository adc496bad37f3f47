"""An auto-pipelining Redis client for the event loop that serves the hot callbacks.

Each worker process holds one connection to Redis. The commands issued by the requests the loop
is serving together (those whose bytes arrived in the same poll) are written with one `write()`,
and the replies come back in order on the same connection, parsed by hiredis. This is what ioredis
does for the Node service this project replaces, and it is why storing a publication costs less
than a round trip per request (bench/RESULTS.md, "Redis from the event loop").

What it promises, since a publish is acknowledged on its reply:
- a reply is matched to its command by order, on one connection; a command that may have been
  executed is never sent again (only a Cluster's MOVED/ASK/TRYAGAIN, which say it was not, are followed);
- when Redis does not answer within `timeout`, or the connection breaks, every command still
  waiting fails with `RedisUnavailable` and the connection is dropped (a late reply cannot be
  matched to a new command); the next command connects again;
- an error reply raises `RedisReplyError` for that command only.

Only the commands the gateway sends go through here (XADD, EVALSHA/SCRIPT LOAD, INCR/EXPIRE,
PING); everything else (the admin, management commands, the server API) uses redis-py.

Topology (REDIS_URL, realtime.redis_url): `open_client` gives a `PipelinedRedis` for one server,
a `PipelinedSentinel` (realtime.redis_sentinel: the master the sentinels name, found again after a
failover) or a `PipelinedCluster` (realtime.redis_cluster: one such connection per master, each
command routed by its key's slot, MOVED/ASK followed). With REDIS_ACK=replicated, every flush that
carries a write ends with one `WAIT <replicas> <ms>` on the same connection, and the writes'
callers get their replies only once WAIT says enough replicas have them; otherwise `NotReplicated`
(a RedisUnavailable: the entry exists on the master and may survive, or not). While a replica
stalls, each WAIT blocks the connection for its whole timeout and the flushes behind it queue (Redis
runs a blocked client's next commands after it): under steady traffic most writes then end as
"did not answer" and the connection is opened again — a 1503 either way, never a false ok.

Why hand-written rather than a maintained client (redis-py's asyncio Redis/RedisCluster/Sentinel,
coredis): `python -m bench.redis_clients` (bench/RESULTS.md, "Redis clients for the event loop")
measured them at 0.04-0.08x this client's XADD/s with 16-30x its CPU per XADD, on single Redis,
Sentinel and Cluster alike: they do one round trip per command and pool connections, where this
client writes what the loop issued together at once. Topology is a few hundred lines here.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from collections.abc import Awaitable
from typing import Any, Protocol

import hiredis

from realtime import redis_url


def _pack(args: tuple[object, ...]) -> bytes:
    """RESP for one command (hiredis, in C). Arguments: str, bytes, int or float."""
    return hiredis.pack_command(args)  # type: ignore[arg-type]  # the stub types it as a 1-tuple


class RedisUnavailable(Exception):
    """No answer: Redis is down, unreachable, too slow, or the connection broke."""


class RedisReplyError(Exception):
    """Redis answered with an error (`-ERR ...`, `-NOSCRIPT ...`)."""


class NotReplicated(RedisUnavailable):
    """REDIS_ACK=replicated: the write reached the master but WAIT did not confirm enough replicas
    in time. The entry exists on the master (a retry without an idempotency key may store it twice),
    and a failover before the replicas catch up may lose it: unknown, like any RedisUnavailable."""


# The writes whose replies wait for WAIT with REDIS_ACK=replicated (the stream writer's commands;
# a rate-limit counter does not need to survive a failover).
_DURABLE = frozenset({"XADD", "EVALSHA"})


class _Endpoint:
    """Where and how to connect to one server."""

    def __init__(
        self, url: str = "", *, host: str = "localhost", port: int = 6379, path: str = "", db: int = 0,
        username: str = "", password: str = "", tls: bool = False,
    ) -> None:  # fmt: skip
        if url:  # one server's URL (raises RedisUrlError, a ValueError, for anything else)
            location = redis_url.parse(url)
            if location.kind != "single":
                raise redis_url.RedisUrlError(f"REDIS_URL names a {location.kind}, not one server")
            host, port = location.addresses[0] if location.addresses else ("localhost", 6379)
            path, db, username, password = location.unix_path, location.db, location.username, location.password
            tls = location.tls
        self.host, self.port, self.path, self.db = host, port, path, db
        self.username, self.password, self.tls = username, password, tls

    @property
    def where(self) -> str:
        return self.path or f"{self.host}:{self.port}"

    def handshake(self) -> list[tuple[object, ...]]:
        commands: list[tuple[object, ...]] = []
        if self.password:
            commands.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            commands.append(("SELECT", self.db))
        return commands


def wait_ms(timeout: float) -> int:
    """WAIT's timeout for a socket timeout of `timeout` seconds (see _Connection)."""
    return max(10, int(timeout * 800) - 100)


# After a failed connect, the next attempt waits this long (seconds).
RECONNECT_AFTER = 0.1


class _Held:
    """REDIS_ACK=replicated: a write's reply, kept until the WAIT after it answers. It stands in
    the connection's `waiting` queue where a future would (the same four methods)."""

    __slots__ = ("future", "reply")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.reply: Any = None

    def done(self) -> bool:
        return self.future.done()

    def cancelled(self) -> bool:
        return self.future.cancelled()

    def set_result(self, reply: Any) -> None:
        self.reply = reply

    def set_exception(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class _WaitReply:
    """The reply to `WAIT n ms`: the number of replicas that have every write sent before it on
    this connection. Releases the held writes' replies, or fails them with NotReplicated."""

    __slots__ = ("held", "replicas", "where")

    def __init__(self, held: list[_Held], replicas: int, where: str) -> None:
        self.held, self.replicas, self.where = held, replicas, where

    def done(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def set_result(self, acked: Any) -> None:
        failure = None
        if isinstance(acked, RedisReplyError) or acked < self.replicas:
            failure = NotReplicated(
                f"Redis at {self.where} has the write but WAIT confirmed {acked} of {self.replicas} replicas in time"
            )
        for held in self.held:
            if held.future.done():
                continue
            # An error reply means nothing was written: it is the answer whatever WAIT says.
            if failure is None or isinstance(held.reply, RedisReplyError):
                held.future.set_result(held.reply)
            else:
                held.future.set_exception(failure)

    def set_exception(self, exc: BaseException) -> None:
        for held in self.held:
            held.set_exception(exc)


class _Connection(asyncio.Protocol):
    def __init__(self, timeout: float, *, where: str = "", replicas: int = 0, fatal: tuple[str, ...] = ()) -> None:
        self.timeout = timeout
        self.where = where  # host:port for messages (no credentials)
        self.loop = asyncio.get_running_loop()
        self.transport: Any = None  # asyncio's or uvloop's (not an asyncio.Transport subclass)
        self.reader = hiredis.Reader(replyError=RedisReplyError)
        # (future, deadline) per command written or about to be, oldest first.
        self.waiting: collections.deque[tuple[Any, float]] = collections.deque()
        self.outbox: list[bytes] = []
        self.watchdog: asyncio.TimerHandle | None = None
        self.closed = False
        # REDIS_ACK=replicated: WAIT after each flush that carries writes (REDIS_ACK_REPLICAS; 0:
        # local, no WAIT), its timeout below the socket timeout so that its own reply comes back
        # in time: 80 % of it less 100 ms, because Redis times WAIT out on its 10 Hz clock
        # (`WAIT 1 200` with a stalled replica answered after 213-277 ms here).
        self.replicas = replicas
        self.wait_command = _pack(("WAIT", replicas, wait_ms(timeout))) if replicas else b""
        self.held: list[_Held] = []
        # Error replies that mean "this server cannot take writes any more" (a demoted master):
        # that command fails as RedisUnavailable and the connection is dropped, so the next
        # command finds the master again.
        self.fatal = fatal

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # The connection may sit idle for hours: keep NAT and firewall state alive, and learn
            # of a dead peer without waiting for the next publish to time out.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.waiting
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(RedisUnavailable(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not waiting:  # a reply nobody asked for: the stream cannot be trusted any more
                self.abort(RedisUnavailable("unexpected reply from Redis"))
                return
            future, _ = waiting.popleft()
            if self.fatal and reply.__class__ is RedisReplyError and str(reply).startswith(self.fatal):
                failure = RedisUnavailable(f"Redis at {self.where} cannot take writes: {reply}")
                if not future.done():
                    future.set_exception(failure)
                self.abort(failure)
                return
            if not future.done():  # its caller may have gone (cancelled)
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort(RedisUnavailable(f"connection to Redis lost: {exc}" if exc else "connection to Redis closed"))

    # --- commands
    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.closed:
            raise RedisUnavailable("connection to Redis closed")
        future: asyncio.Future[Any] = self.loop.create_future()
        if not self.outbox:
            # Written on the loop's next pass, not this one: the requests whose bytes arrived in
            # the same poll run first and add their commands: more commands per Redis read, more
            # publishes/s (bench/RESULTS.md); the wait is one loop pass.
            self.loop.call_soon(self._flush_next_pass)
        self.outbox.append(packed)
        self.waiting.append((future, self.loop.time() + self.timeout))
        if self.watchdog is None:
            self.watchdog = self.loop.call_later(self.timeout, self.check_deadline)
        return future

    def send_held(self, packed: bytes) -> asyncio.Future[Any]:
        """`send` for a write whose reply waits for the WAIT that follows it (REDIS_ACK=replicated)."""
        future = self.send(packed)
        held = _Held(future)
        self.waiting[-1] = (held, self.waiting[-1][1])
        self.held.append(held)
        return future

    def _flush_next_pass(self) -> None:
        self.loop.call_soon(self.flush)

    def flush(self) -> None:
        if self.closed or not self.outbox:
            return
        if self.held:  # one WAIT covers every write before it on this connection
            self.outbox.append(self.wait_command)
            self.waiting.append((_WaitReply(self.held, self.replicas, self.where), self.loop.time() + self.timeout))
            self.held = []
        data = b"".join(self.outbox) if len(self.outbox) > 1 else self.outbox[0]
        self.outbox = []
        self.transport.write(data)

    def check_deadline(self) -> None:
        self.watchdog = None
        if self.closed or not self.waiting:
            return
        deadline = self.waiting[0][1]
        now = self.loop.time()
        if now >= deadline:
            self.abort(RedisUnavailable(f"Redis at {self.where} did not answer within {self.timeout} s"))
        else:
            self.watchdog = self.loop.call_later(deadline - now, self.check_deadline)

    def abort(self, exc: RedisUnavailable) -> None:
        """Fail every command still waiting and drop the connection."""
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        self.outbox = []
        self.held = []
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class PipelinedRedis:
    """One auto-pipelined connection, opened on first use and again after a failure.

    `ack_replicas` > 0 (REDIS_ACK=replicated): the replies of XADD and EVALSHA wait for the WAIT
    that follows them on the connection."""

    fatal: tuple[str, ...] = ()

    def __init__(
        self, url: str | _Endpoint, *, timeout: float, connect_timeout: float | None = None, ack_replicas: int = 0
    ) -> None:
        self.endpoint = url if isinstance(url, _Endpoint) else _Endpoint(url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else timeout
        self.ack_replicas = ack_replicas
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._failure = ""  # the last failed attempt's error, repeated until _failed_until
        self._failed_until = 0.0

    @property
    def where(self) -> str:
        return self.endpoint.where

    async def execute(self, *args: object) -> Any:
        """Send one command and wait for its reply."""
        reply = await self.submit(*args)
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    def submit(self, *args: object) -> Awaitable[Any]:
        """`execute` without a coroutine frame of its own, for the publish path: awaiting the
        result gives the reply, and an error reply comes back as a RedisReplyError instance
        instead of being raised (RedisUnavailable is raised as usual)."""
        connection = self._connection
        if connection is not None and not connection.closed:
            if self.ack_replicas and args[0] in _DURABLE:
                return connection.send_held(_pack(args))
            return connection.send(_pack(args))
        return self._connect_and_send(args)

    async def _connect_and_send(self, args: tuple[object, ...]) -> Any:
        connection = await self._connect()
        if self.ack_replicas and args[0] in _DURABLE:
            return await connection.send_held(_pack(args))
        return await connection.send(_pack(args))

    def submit_together(self, *commands: tuple[object, ...]) -> Awaitable[list[Any]]:
        """Several commands back to back on one connection (nothing between them: `ASKING` + a
        command); awaiting gives every reply, error replies as RedisReplyError instances."""
        return self._together(commands)

    async def _together(self, commands: tuple[tuple[object, ...], ...]) -> list[Any]:
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        hold = self.ack_replicas
        futures = [
            connection.send_held(_pack(c)) if hold and c[0] in _DURABLE else connection.send(_pack(c)) for c in commands
        ]
        return [await future for future in futures]

    async def execute_many(self, *commands: tuple[object, ...]) -> list[Any]:
        """Send several commands back to back (one write, one round trip) and wait for all replies.
        The first error reply is raised after every reply has arrived."""
        replies = await self._together(commands)
        for reply in replies:
            if isinstance(reply, RedisReplyError):
                raise reply
        return replies

    async def load_script(self, script: str, *, key: str) -> None:
        """SCRIPT LOAD where `key` lives (here: the one server)."""
        await self.execute("SCRIPT", "LOAD", script)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            connection.flush()
            connection.closed = True
            if connection.transport is not None:
                connection.transport.close()

    async def _connect(self) -> _Connection:
        # Concurrent callers share one attempt, and after a failed one the next waits RECONNECT_AFTER
        # (its callers get the same error meanwhile): during an outage or a failover, a few
        # connects (or sentinel queries) per second, not one per request.
        if self._connecting is None:
            if self._failure and asyncio.get_running_loop().time() < self._failed_until:
                raise RedisUnavailable(self._failure)
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Future[_Connection]) -> None:
        self._connecting = None
        if attempt.cancelled():
            return
        failure = attempt.exception()
        if failure is None:
            self._connection, self._failure = attempt.result(), ""
        else:
            self._failure = str(failure)
            self._failed_until = asyncio.get_running_loop().time() + RECONNECT_AFTER

    async def _open(self) -> _Connection:
        return await open_connection(
            self.endpoint, timeout=self.timeout, connect_timeout=self.connect_timeout,
            replicas=self.ack_replicas, fatal=self.fatal,
        )  # fmt: skip


async def open_connection(
    endpoint: _Endpoint, *, timeout: float, connect_timeout: float, replicas: int = 0, fatal: tuple[str, ...] = ()
) -> _Connection:
    """A connection to one server, authenticated and on its database."""
    loop = asyncio.get_running_loop()
    where = endpoint.where

    def protocol() -> _Connection:
        return _Connection(timeout, where=where, replicas=replicas, fatal=fatal)

    try:
        if endpoint.path:
            opening = loop.create_unix_connection(protocol, endpoint.path)
        else:
            context = ssl.create_default_context() if endpoint.tls else None
            opening = loop.create_connection(protocol, endpoint.host, endpoint.port, ssl=context)
        _, connection = await asyncio.wait_for(opening, connect_timeout)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise RedisUnavailable(f"cannot connect to Redis at {where}: {type(exc).__name__}: {exc}") from exc
    for command in endpoint.handshake():
        reply = await connection.send(_pack(command))
        if isinstance(reply, RedisReplyError):
            connection.abort(RedisUnavailable(f"Redis refused {command[0]}: {reply}"))
            raise RedisUnavailable(f"Redis refused {command[0]} at {where}: {reply}")
    return connection


class AsyncRedis(Protocol):
    """What the stream writer needs of a client, whatever the topology."""

    @property
    def where(self) -> str: ...

    def submit(self, *args: object) -> Awaitable[Any]: ...
    async def execute(self, *args: object) -> Any: ...
    async def execute_many(self, *commands: tuple[object, ...]) -> list[Any]: ...
    async def load_script(self, script: str, *, key: str) -> None: ...
    async def close(self) -> None: ...


def open_client(
    location: redis_url.RedisLocation, *, timeout: float, ack: str = "local", ack_replicas: int = 1
) -> AsyncRedis:
    """The client for REDIS_URL's topology (nothing connects until the first command)."""
    replicas = ack_replicas if ack == "replicated" else 0
    if location.kind == "sentinel":
        from realtime.redis_sentinel import PipelinedSentinel

        return PipelinedSentinel(location, timeout=timeout, ack_replicas=replicas)
    if location.kind == "cluster":
        from realtime.redis_cluster import PipelinedCluster

        return PipelinedCluster(location, timeout=timeout, ack_replicas=replicas)
    host, port = location.addresses[0] if location.addresses else ("localhost", 6379)
    endpoint = _Endpoint(
        host=host, port=port, path=location.unix_path, db=location.db, username=location.username,
        password=location.password, tls=location.tls,
    )  # fmt: skip
    return PipelinedRedis(endpoint, timeout=timeout, ack_replicas=replicas)


_clients: dict[asyncio.AbstractEventLoop, AsyncRedis] = {}


def get_async_redis() -> AsyncRedis:
    """This event loop's client (a gunicorn worker has one loop; tests may run several)."""
    client = _clients.get(asyncio.get_running_loop())
    if client is None:
        client = _new_client()
    return client


def _new_client() -> AsyncRedis:
    from django.conf import settings

    for stale in [other for other in _clients if other.is_closed()]:
        del _clients[stale]
    # REDIS_URL, parsed again: tests point it elsewhere (settings.REDIS_LOCATION is the start-up value).
    client = open_client(
        redis_url.parse(settings.REDIS_URL), timeout=settings.REDIS_SOCKET_TIMEOUT, ack=settings.REDIS_ACK,
        ack_replicas=settings.REDIS_ACK_REPLICAS,
    )  # fmt: skip
    _clients[asyncio.get_running_loop()] = client
    return client


async def close_async_redis() -> None:
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.close()
