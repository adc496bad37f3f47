"""The event loop's Redis client for a Redis Cluster: one auto-pipelined connection
(realtime.redis_async.PipelinedRedis) per master, each command sent to the master that owns its
key's slot.

- The slot map comes from `CLUSTER SLOTS` of any node that answers (the seeds of REDIS_URL, then
  every node seen), on the first command and whenever a reply says it is stale.
- The key: XADD/INCR/EXPIRE args[1], EVALSHA args[3] (KEYS[1], the stream: its idempotency key
  shares the hash tag); the slot is CRC16 of the hash tag (redis.crc.key_slot), cached per key.
- `-MOVED slot host:port`: the slot has a new owner: record it, refresh the whole map in the
  background, and send the command there. `-ASK slot host:port`: the key is being migrated:
  `ASKING` and the command back to back on the target, the map unchanged. `-TRYAGAIN`: a
  multi-key command (the idempotent append) met a half-migrated slot: again after 10 ms. All
  three mean the command was NOT executed, so following them is safe; at most MAX_REDIRECTS
  MOVED/ASK, and all within one REDIS_SOCKET_TIMEOUT.
- `-CLUSTERDOWN`, or a master that does not answer: RedisUnavailable (nothing is retried: the
  write may have been applied), and the map is refreshed before the next command to that node
  (after a failover, the replica that took over).
- NOSCRIPT is per node: `load_script(script, key=...)` loads it where the key lives.
- REDIS_ACK=replicated: each master's connection sends its own WAIT (Redis replicates per master).
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.crc import key_slot

from realtime.redis_async import PipelinedRedis, RedisReplyError, RedisUnavailable, _Endpoint
from realtime.redis_url import RedisLocation

SLOTS = 16384
MAX_REDIRECTS = 5
TRYAGAIN_DELAY = 0.01


class _Node(PipelinedRedis):
    stale = False  # it failed: ask for the map again before sending it more


class PipelinedCluster:
    def __init__(self, location: RedisLocation, *, timeout: float, ack_replicas: int = 0) -> None:
        self.location = location
        self.where = location.where
        self.timeout = timeout
        self.ack_replicas = ack_replicas
        self.nodes: dict[tuple[str, int], _Node] = {}
        self.slots: list[_Node | None] = [None] * SLOTS
        self._sources: list[tuple[str, int]] = list(location.addresses)  # whom to ask for the map, in order
        self._refreshing: asyncio.Future[None] | None = None
        self._key_slots: dict[object, int] = {}

    # --- routing
    def _node(self, host: str, port: int) -> _Node:
        node = self.nodes.get((host, port))
        if node is None:
            location = self.location
            endpoint = _Endpoint(
                host=host, port=port, username=location.username, password=location.password, tls=location.tls
            )
            node = self.nodes[host, port] = _Node(endpoint, timeout=self.timeout, ack_replicas=self.ack_replicas)
        return node

    def _slot(self, key: object) -> int:
        slot = self._key_slots.get(key)
        if slot is None:
            if len(self._key_slots) > 100_000:  # keys carry time windows (rate limits): stay bounded
                self._key_slots.clear()
            raw = key.encode() if isinstance(key, str) else key
            slot = self._key_slots[key] = key_slot(raw)  # type: ignore[arg-type]
        return slot

    @staticmethod
    def _key(args: tuple[object, ...]) -> object:
        return args[3] if args[0] == "EVALSHA" else args[1]

    async def _route(self, slot: int) -> _Node:
        node = self.slots[slot]
        if node is None or node.stale:
            await self._refresh()
            node = self.slots[slot]
            if node is None:
                raise RedisUnavailable(f"no master of the Redis Cluster serves slot {slot} ({self.where})")
        return node

    # --- commands
    def submit(self, *args: object) -> Any:
        """Awaiting it gives the reply; an error reply comes back as a RedisReplyError instance."""
        slot = self._slot(self._key(args))
        node = self.slots[slot]
        if node is None or node.stale:
            return self._submit_routed(args, slot)
        return self._checked(args, slot, node, node.submit(*args))

    async def _submit_routed(self, args: tuple[object, ...], slot: int) -> Any:
        node = await self._route(slot)
        return await self._checked(args, slot, node, node.submit(*args))

    async def _checked(self, args: tuple[object, ...], slot: int, node: _Node, pending: Any) -> Any:
        try:
            reply = await pending
        except RedisUnavailable:
            node.stale = True
            raise
        if reply.__class__ is RedisReplyError:
            return await self._redirected(args, slot, reply)
        return reply

    async def _redirected(self, args: tuple[object, ...], slot: int, reply: Any) -> Any:
        """Follow MOVED / ASK / TRYAGAIN (the command was not executed); any other reply is the answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        redirects = 0
        while True:
            message = str(reply)
            kind = message.split(" ", 1)[0]
            if kind not in ("MOVED", "ASK", "TRYAGAIN"):
                if kind == "CLUSTERDOWN":
                    self._refresh_soon()
                    raise RedisUnavailable(f"Redis Cluster ({self.where}): {message}")
                return reply
            redirects += kind != "TRYAGAIN"  # TRYAGAIN (a migration in progress) is bounded by the deadline
            if redirects > MAX_REDIRECTS or loop.time() >= deadline:
                break
            if kind == "TRYAGAIN":
                await asyncio.sleep(TRYAGAIN_DELAY)
                node = await self._route(slot)
                pending = node.submit(*args)
            else:
                host, _, port = message.split()[2].rpartition(":")
                node = self._node(host, int(port))
                if kind == "MOVED":
                    self.slots[slot] = node
                    self._refresh_soon()
                    pending = node.submit(*args)
                else:
                    pending = self._asking(node, args)
            try:
                reply = await pending
            except RedisUnavailable:
                node.stale = True
                raise
            if reply.__class__ is not RedisReplyError:
                return reply
        raise RedisUnavailable(f"Redis Cluster ({self.where}): slot {slot} still redirected ({reply}); not sent again")

    async def _asking(self, node: _Node, args: tuple[object, ...]) -> Any:
        _, reply = await node.submit_together(("ASKING",), args)
        return reply

    async def execute(self, *args: object) -> Any:
        reply = await self.submit(*args)
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def execute_many(self, *commands: tuple[object, ...]) -> list[Any]:
        """Commands on one key (INCR + EXPIRE): one node, one write; a redirected one follows its redirect."""
        slot = self._slot(self._key(commands[0]))
        node = await self._route(slot)
        try:
            replies = await node.submit_together(*commands)
        except RedisUnavailable:
            node.stale = True
            raise
        for i, reply in enumerate(replies):
            if reply.__class__ is RedisReplyError:
                replies[i] = await self._redirected(commands[i], slot, reply)
        for reply in replies:
            if isinstance(reply, RedisReplyError):
                raise reply
        return replies

    async def load_script(self, script: str, *, key: str) -> None:
        node = await self._route(self._slot(key))
        await node.execute("SCRIPT", "LOAD", script)

    async def close(self) -> None:
        for node in self.nodes.values():
            await node.close()

    # --- the slot map
    def _refresh_soon(self) -> None:
        if self._refreshing is None:
            self._start_refresh().add_done_callback(lambda done: done.cancelled() or done.exception())

    def _start_refresh(self) -> asyncio.Future[None]:
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._load_map())
            self._refreshing.add_done_callback(self._refreshed)
        return self._refreshing

    def _refreshed(self, _: asyncio.Future[None]) -> None:
        self._refreshing = None

    async def _refresh(self) -> None:
        # Concurrent callers share one CLUSTER SLOTS.
        await asyncio.shield(self._start_refresh())

    async def _load_map(self) -> None:
        failures = []
        for address in list(dict.fromkeys([*self._sources, *self.nodes])):
            try:
                reply = await self._node(*address).execute("CLUSTER", "SLOTS")
            except (RedisUnavailable, RedisReplyError) as exc:
                failures.append(f"{address[0]}:{address[1]}: {exc}")
                continue
            slots: list[_Node | None] = [None] * SLOTS
            for start, end, master, *_ in reply:
                host = master[0].decode() if master[0] and master[0] != b"?" else address[0]
                node = self._node(host, int(master[1]))
                node.stale = False
                slots[start : end + 1] = [node] * (end - start + 1)
            self.slots = slots
            if self._sources[0] != address:
                self._sources = [address, *(a for a in self._sources if a != address)]
            return
        raise RedisUnavailable(
            f"no node of the Redis Cluster answered CLUSTER SLOTS ({self.where}): {'; '.join(failures)}"
        )
