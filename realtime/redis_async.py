"""An auto-pipelining Redis client for the event loop that serves the hot callbacks.

Each worker process holds one connection to Redis. The commands issued by the requests the loop
is serving together (those whose bytes arrived in the same poll) are written with one `write()`,
and the replies come back in order on the same connection, parsed by hiredis. This is what ioredis
does for the Node service this project replaces, and it is why storing a publication costs less
than a round trip per request (bench/RESULTS.md, "Redis from the event loop").

What it promises, since a publish is acknowledged on its reply:
- a reply is matched to its command by order, on one connection; nothing is ever retried;
- when Redis does not answer within `timeout`, or the connection breaks, every command still
  waiting fails with `RedisUnavailable` and the connection is dropped (a late reply cannot be
  matched to a new command); the next command connects again;
- an error reply raises `RedisReplyError` for that command only.

Only the commands the gateway sends go through here (XADD, EVALSHA/SCRIPT LOAD, INCR/EXPIRE,
PING); everything else (the admin, management commands, the server API) uses redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from collections.abc import Awaitable
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis


def _pack(args: tuple[object, ...]) -> bytes:
    """RESP for one command (hiredis, in C). Arguments: str, bytes, int or float."""
    return hiredis.pack_command(args)  # type: ignore[arg-type]  # the stub types it as a 1-tuple


class RedisUnavailable(Exception):
    """No answer: Redis is down, unreachable, too slow, or the connection broke."""


class RedisReplyError(Exception):
    """Redis answered with an error (`-ERR ...`, `-NOSCRIPT ...`)."""


class _Endpoint:
    """Where and how to connect, from a redis:// | rediss:// | unix:// URL (as redis-py reads them)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"REDIS_URL must start with redis://, rediss:// or unix://, not {parts.scheme!r}")
        self.tls = parts.scheme == "rediss"
        self.path = unquote(parts.path) if parts.scheme == "unix" else ""
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else ""
        self.password = unquote(parts.password) if parts.password else ""
        query = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
        db = query.get("db") or ("" if parts.scheme == "unix" else parts.path.lstrip("/")) or "0"
        if not db.isdigit():
            raise ValueError(f"REDIS_URL database must be a number, not {db!r}")
        self.db = int(db)

    def handshake(self) -> list[tuple[object, ...]]:
        commands: list[tuple[object, ...]] = []
        if self.password:
            commands.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            commands.append(("SELECT", self.db))
        return commands


class _Connection(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.transport: Any = None  # asyncio's or uvloop's (not an asyncio.Transport subclass)
        self.reader = hiredis.Reader(replyError=RedisReplyError)
        # (future, deadline) per command written or about to be, oldest first.
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.outbox: list[bytes] = []
        self.watchdog: asyncio.TimerHandle | None = None
        self.closed = False

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

    def _flush_next_pass(self) -> None:
        self.loop.call_soon(self.flush)

    def flush(self) -> None:
        if self.closed or not self.outbox:
            return
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
            self.abort(RedisUnavailable(f"Redis did not answer within {self.timeout} s"))
        else:
            self.watchdog = self.loop.call_later(deadline - now, self.check_deadline)

    def abort(self, exc: RedisUnavailable) -> None:
        """Fail every command still waiting and drop the connection."""
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        self.outbox = []
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class PipelinedRedis:
    """One auto-pipelined connection, opened on first use and again after a failure."""

    def __init__(self, url: str, *, timeout: float, connect_timeout: float | None = None) -> None:
        self.endpoint = _Endpoint(url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None

    async def execute(self, *args: object) -> Any:
        """Send one command and wait for its reply."""
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        reply = await connection.send(_pack(args))
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    def submit(self, *args: object) -> Awaitable[Any]:
        """`execute` without a coroutine frame of its own, for the publish path: awaiting the
        result gives the reply, and an error reply comes back as a RedisReplyError instance
        instead of being raised (RedisUnavailable is raised as usual)."""
        connection = self._connection
        if connection is not None and not connection.closed:
            return connection.send(_pack(args))
        return self._connect_and_send(args)

    async def _connect_and_send(self, args: tuple[object, ...]) -> Any:
        connection = await self._connect()
        return await connection.send(_pack(args))

    async def execute_many(self, *commands: tuple[object, ...]) -> list[Any]:
        """Send several commands back to back (one write, one round trip) and wait for all replies.
        The first error reply is raised after every reply has arrived."""
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        futures = [connection.send(_pack(command)) for command in commands]
        replies = [await future for future in futures]
        for reply in replies:
            if isinstance(reply, RedisReplyError):
                raise reply
        return replies

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            connection.flush()
            connection.closed = True
            if connection.transport is not None:
                connection.transport.close()

    async def _connect(self) -> _Connection:
        # Concurrent callers share one attempt: during an outage, one connect per moment, not per request.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Future[_Connection]) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._connection = attempt.result()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint
        where = endpoint.path or f"{endpoint.host}:{endpoint.port}"
        try:
            if endpoint.path:
                opening = loop.create_unix_connection(lambda: _Connection(self.timeout), endpoint.path)
            else:
                context = ssl.create_default_context() if endpoint.tls else None
                opening = loop.create_connection(
                    lambda: _Connection(self.timeout), endpoint.host, endpoint.port, ssl=context
                )
            _, connection = await asyncio.wait_for(opening, self.connect_timeout)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise RedisUnavailable(f"cannot connect to Redis at {where}: {type(exc).__name__}: {exc}") from exc
        for command in endpoint.handshake():
            reply = await connection.send(_pack(command))
            if isinstance(reply, RedisReplyError):
                connection.abort(RedisUnavailable(f"Redis refused {command[0]}: {reply}"))
                raise RedisUnavailable(f"Redis refused {command[0]} at {where}: {reply}")
        return connection


_clients: dict[asyncio.AbstractEventLoop, PipelinedRedis] = {}


def get_async_redis() -> PipelinedRedis:
    """This event loop's client (a gunicorn worker has one loop; tests may run several)."""
    client = _clients.get(asyncio.get_running_loop())
    if client is None:
        client = _new_client()
    return client


def _new_client() -> PipelinedRedis:
    from django.conf import settings

    for stale in [other for other in _clients if other.is_closed()]:
        del _clients[stale]
    client = PipelinedRedis(settings.REDIS_URL, timeout=settings.REDIS_SOCKET_TIMEOUT)
    _clients[asyncio.get_running_loop()] = client
    return client


async def close_async_redis() -> None:
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.close()
