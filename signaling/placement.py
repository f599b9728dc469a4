"""Which node hosts which room: a registry of nodes with heartbeats, and room claims.

A room's media lives on exactly one node (as in LiveKit). A node claims a room
when the first participant connects to it there; the claim expires unless the
node's heartbeat renews it, so when a node dies its rooms move to whichever
node the next participant reaches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from kernel.taskset import TaskSet, raise_if_cancelling

logger = logging.getLogger(__name__)

_NODE = "sb:node:"
_ROOM_NODE = "sb:room-node:"

# Take the room if nobody holds it, or if its holder's heartbeat has lapsed.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. holder) == 1 then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    base_url: str
    started_at: float
    heartbeat_at: float


class NodePlacement:
    """This node's entry in the registry, and its claims on rooms."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        node_id: str,
        base_url: str,
        heartbeat_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self.node_id = node_id
        self._base_url = base_url
        self._heartbeat_s = heartbeat_s
        self._ttl_s = max(3, int(heartbeat_s * 3))
        self._clock = clock
        self._started_at = clock()
        self._rooms: set[str] = set()
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._tasks = TaskSet(f"node {node_id}")

    async def start(self) -> None:
        await self._beat()
        self._tasks.spawn(self._run(), name="heartbeat")

    async def stop_heartbeat(self) -> None:
        """Stop renewing this node and its claims (they lapse within the TTL)."""
        await self._tasks.aclose()

    async def aclose(self) -> None:
        await self.stop_heartbeat()
        for room_id in list(self._rooms):
            await self.release(room_id)
        await self._redis.delete(_NODE + self.node_id)

    async def claim(self, room_id: str) -> str:
        """Claim the room for this node; returns the node that holds it."""
        holder = await self._claim(
            keys=[_ROOM_NODE + room_id], args=[self.node_id, self._ttl_s, _NODE]
        )
        holder_id = holder.decode() if isinstance(holder, bytes) else str(holder)
        if holder_id == self.node_id:
            self._rooms.add(room_id)
        return holder_id

    async def holder(self, room_id: str) -> str | None:
        """The live node holding the room, if any (a lapsed node holds nothing)."""
        raw = await self._redis.get(_ROOM_NODE + room_id)
        if raw is None:
            return None
        node = raw.decode() if isinstance(raw, bytes) else str(raw)
        return node if await self._redis.exists(_NODE + node) else None

    async def release(self, room_id: str) -> None:
        self._rooms.discard(room_id)
        await self._release(keys=[_ROOM_NODE + room_id], args=[self.node_id])

    async def nodes(self) -> list[NodeInfo]:
        found: list[NodeInfo] = []
        async for key in self._redis.scan_iter(match=_NODE + "*"):
            raw = await self._redis.get(key)
            if raw is not None:
                found.append(NodeInfo(**json.loads(raw)))
        return sorted(found, key=lambda n: n.node_id)

    async def _beat(self) -> None:
        info = NodeInfo(self.node_id, self._base_url, self._started_at, self._clock())
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_NODE + self.node_id, json.dumps(info.__dict__), ex=self._ttl_s)
            for room_id in self._rooms:
                pipe.set(_ROOM_NODE + room_id, self.node_id, ex=self._ttl_s)
            await pipe.execute()

    async def _run(self) -> None:
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self._heartbeat_s)
            try:
                await self._beat()
            except (OSError, aioredis.RedisError):
                logger.warning("node %s: heartbeat failed", self.node_id, exc_info=True)
