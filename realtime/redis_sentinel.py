"""The event loop's Redis client behind Sentinel: the auto-pipelined connection of
realtime.redis_async, to whichever server the sentinels name as the master.

Finding the master (on the first command, and again after the connection is lost): ask the
sentinels in turn `SENTINEL get-master-addr-by-name <name>` (with sentinel_user/sentinel_password,
TLS when sentinel_tls) until one answers, connect to that address, and check that `ROLE` says
master (a demoted master that comes back is a replica until the sentinels reconfigure it). The
sentinel that answered is asked first next time. Concurrent callers share one discovery.

After a failover the old master's connection breaks (kill -9, or the sentinels' CLIENT KILL), or
the server answers `-READONLY` (demoted), `-LOADING`, `-MASTERDOWN`: the commands in flight fail
with RedisUnavailable (they may have been applied: never retried here) and the next command finds
the new master. Publishing resumes as soon as the sentinels have promoted a replica.
"""

from __future__ import annotations

from realtime.redis_async import (
    PipelinedRedis,
    RedisReplyError,
    RedisUnavailable,
    _Connection,
    _Endpoint,
    _pack,
    open_connection,
)
from realtime.redis_url import RedisLocation


class PipelinedSentinel(PipelinedRedis):
    fatal = ("READONLY", "LOADING", "MASTERDOWN")

    def __init__(self, location: RedisLocation, *, timeout: float, ack_replicas: int = 0) -> None:
        self.location = location
        self.sentinels = [
            _Endpoint(host=host, port=port, username=location.sentinel_username,
                      password=location.sentinel_password, tls=location.sentinel_tls)
            for host, port in location.addresses
        ]  # fmt: skip
        super().__init__(self._master("", 0), timeout=timeout, ack_replicas=ack_replicas)

    def _master(self, host: str, port: int) -> _Endpoint:
        location = self.location
        return _Endpoint(
            host=host, port=port, db=location.db, username=location.username, password=location.password,
            tls=location.tls,
        )  # fmt: skip

    @property
    def where(self) -> str:
        return f"{self.location.where} (last master {self.endpoint.where})"

    async def _open(self) -> _Connection:
        host, port = await self._ask_sentinels()
        self.endpoint = self._master(host, port)
        connection = await open_connection(
            self.endpoint, timeout=self.timeout, connect_timeout=self.connect_timeout,
            replicas=self.ack_replicas, fatal=self.fatal,
        )  # fmt: skip
        role = await connection.send(_pack(("ROLE",)))
        if isinstance(role, RedisReplyError) or not role or role[0] != b"master":
            said = role if isinstance(role, RedisReplyError) else (role[0] if role else role)
            connection.abort(RedisUnavailable("not the master"))
            raise RedisUnavailable(
                f"Redis at {self.endpoint.where}, named master {self.location.master_name!r} by the sentinels, "
                f"answers ROLE {said!r}: a failover is in progress"
            )
        return connection

    async def _ask_sentinels(self) -> tuple[str, int]:
        failures = []
        for i, sentinel in enumerate(self.sentinels):
            try:
                connection = await open_connection(sentinel, timeout=self.timeout, connect_timeout=self.connect_timeout)
            except RedisUnavailable as exc:
                failures.append(str(exc))
                continue
            try:
                reply = await connection.send(_pack(("SENTINEL", "get-master-addr-by-name", self.location.master_name)))
            except RedisUnavailable as exc:
                failures.append(str(exc))
                continue
            finally:
                connection.closed = True
                if connection.transport is not None:
                    connection.transport.close()
            if isinstance(reply, RedisReplyError) or not reply:
                failures.append(
                    f"sentinel {sentinel.where} does not know master {self.location.master_name!r}: {reply}"
                )
                continue
            if i:  # ask the one that answered first next time
                self.sentinels.insert(0, self.sentinels.pop(i))
            return reply[0].decode(), int(reply[1])
        raise RedisUnavailable(f"no sentinel named the master ({self.location.where}): {'; '.join(failures)}")
