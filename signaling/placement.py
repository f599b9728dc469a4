"""Which node hosts which room: the node registry, placement by load, fenced room claims.

A room's media lives on exactly one node (as in LiveKit). Every node registers
in Redis with a heartbeat that carries its load; the join step (any node) asks
``place()`` for the room's node: the live holder if there is one, else the
least-loaded live node under its room limit, chosen and claimed in one Lua
script, so concurrent joins never split a room or overfill a node.

Claims are fenced. Each new holder of a room gets the next *epoch*; a claim is
``"node|epoch"`` and lapses unless its holder renews it. A renewal only succeeds
while the claim is still the holder's own epoch (or lapsed with no newer epoch
issued), so a node that lost Redis, or was stalled past the lapse while the room
moved, learns on its next heartbeat that the room is gone and drops its peers
(``on_lost``). Redis is the one arbiter: no consensus of our own.

The keys are described in ``signaling.node_registry``, the scripts in
``signaling.placement_scripts``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from kernel.taskset import TaskSet, raise_if_cancelling
from signaling.errors import SignalingError
from signaling.node_registry import (
    EPOCH,
    EPOCH_TTL_S,
    NODE,
    NODE_ROOMS,
    NODES,
    ROOM_NODE,
    Claim,
    NodeInfo,
    NodeLoad,
    NodeStatus,
    read_registry,
    text,
)
from signaling.placement_scripts import PLACE, RELEASE, RENEW

logger = logging.getLogger(__name__)

#: A room counts as at least this many forwarded streams (a two-person call: each
#: person's audio and video to the other) until it has its own, so a burst of new
#: rooms spreads over the nodes before their media shows in the heartbeats.
STREAMS_PER_NEW_ROOM = 4


@dataclass(frozen=True)
class Placement:
    """Where a room lives now: its claim and the holder's registry entry."""

    claim: Claim
    node: NodeInfo


class NoCapacity(SignalingError):
    """Every live node is at its room limit (or none is registered)."""


class PlacementUnsettled(SignalingError):
    """This node's Redis came back only moments ago: the room's last holder may not have
    re-registered yet, so the room is not moved off it now (ask again in a second)."""


LostHandler = Callable[[str], Coroutine[Any, Any, None]]


class NodePlacement:
    """This node's entry in the registry, its fenced claims, and placement for the join step."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        node_id: str,
        base_url: str,
        room_limit: int = 25,
        heartbeat_s: float = 1.0,
        ttl_s: float = 5.0,
        load: Callable[[], NodeLoad] = NodeLoad,
        settle_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self.node_id = node_id
        self.base_url = base_url
        self.room_limit = room_limit
        self._heartbeat_s = heartbeat_s
        self._ttl_s = max(2, math.ceil(ttl_s))
        #: how long after reaching Redis (again) a missing node counts as gone: a TTL
        self._settle_s = self._ttl_s if settle_s is None else settle_s
        self._load = load
        self._clock = clock
        self._started_at = clock()
        self._accepting = True
        #: room id -> epoch of this node's claim
        self._claims: dict[str, int] = {}
        self._on_lost: LostHandler | None = None
        self._place = redis.register_script(PLACE)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)
        self._tasks = TaskSet(f"node {node_id}")
        self._snapshot: list[NodeStatus] = []
        self.last_beat_ok: float | None = None
        #: since when every heartbeat reached Redis (None after a failed one)
        self._redis_ok_since: float | None = None

    # ------------------------------------------------------------ lifecycle
    def set_load(self, load: Callable[[], NodeLoad]) -> None:
        """Where the heartbeat reads this node's figures."""
        self._load = load

    def on_lost(self, handler: LostHandler) -> None:
        """``handler(room_id)`` runs when a renewal finds the room moved to another node."""
        self._on_lost = handler

    async def start(self) -> None:
        await self._beat()
        self._tasks.spawn(self._run(), name="heartbeat")

    async def stop_heartbeat(self) -> None:
        """Stop renewing this node and its claims (they lapse within the TTL)."""
        await self._tasks.aclose()

    async def aclose(self) -> None:
        await self.stop_heartbeat()
        for room_id in list(self._claims):
            await self.release(room_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(NODE + self.node_id)
            pipe.srem(NODES, self.node_id)
            await pipe.execute()

    # ---------------------------------------------------------------- claims
    @property
    def claims(self) -> dict[str, int]:
        """The rooms this node holds, with their epochs."""
        return dict(self._claims)

    async def claim(self, room_id: str) -> Claim:
        """Claim the room for this node (it opens here); returns whoever holds it."""
        placed = await self._run_place(room_id, candidate=self.node_id, fenced="")
        if placed.node_id == self.node_id:
            self._claims[room_id] = placed.epoch
        return placed

    async def place(self, room_id: str, *, fenced: str | None = None) -> Placement:
        """The room's node for the join step: its live holder, else the least-loaded
        live node under its limit, claimed for it. ``fenced``: a holder known to be
        unreachable; the room moves off it. Raises ``NoCapacity``.

        This node is alive (it is answering), so when no live node is found and it takes
        rooms, it registers again and asks once more: a loop held past the node's TTL (a
        starved machine) lapses its entry between heartbeats, and the join step would
        otherwise tell a resident that every server is full, of a node with room."""
        keys, args = self._place_keys(room_id), self._place_args(room_id, "", fenced or "")
        result = await self._place(keys=keys, args=args)
        no_node = result[0] is None and result[1] is not None and text(result[1]) == "no_capacity"
        if no_node and self._accepting:
            logger.warning(
                "node %s: no live node with room for room %s; registering this node again "
                "in case its entry lapsed (a late heartbeat) and asking once more",
                self.node_id,
                room_id,
            )
            await self.heartbeat_now()
            result = await self._place(keys=keys, args=args)
        value, info = result[0], result[1]
        if value is None:
            if info is not None and text(info) == "unsettled":
                raise PlacementUnsettled(
                    f"room {room_id}: Redis came back moments ago; its node may be re-registering"
                )
            raise NoCapacity(f"no node can take room {room_id}: every live node is full")
        claim = Claim.parse(value)
        if info is None:
            raise NoCapacity(f"room {room_id}: node {claim.node_id} is not registered")
        return Placement(claim, NodeInfo.model_validate_json(info))

    async def holder(self, room_id: str) -> Placement | None:
        """The live node holding the room, if any (a lapsed node holds nothing)."""
        raw = await self._redis.get(ROOM_NODE + room_id)
        if raw is None:
            return None
        claim = Claim.parse(raw)
        info = await self._redis.get(NODE + claim.node_id)
        return None if info is None else Placement(claim, NodeInfo.model_validate_json(info))

    async def release(self, room_id: str) -> None:
        epoch = self._claims.pop(room_id, None)
        if epoch is None:
            return
        await self._release(
            keys=[ROOM_NODE + room_id, NODE_ROOMS + self.node_id],
            args=[f"{self.node_id}|{epoch}", room_id],
        )

    async def _run_place(self, room_id: str, *, candidate: str, fenced: str) -> Claim:
        result = await self._place(
            keys=self._place_keys(room_id), args=self._place_args(room_id, candidate, fenced)
        )
        return Claim.parse(result[0])

    def _place_keys(self, room_id: str) -> list[str]:
        return [ROOM_NODE + room_id, EPOCH + room_id, NODES]

    def _place_args(self, room_id: str, candidate: str, fenced: str) -> list[str | int]:
        return [
            room_id, self._ttl_s, candidate, fenced, NODE, NODE_ROOMS, ROOM_NODE,
            STREAMS_PER_NEW_ROOM, EPOCH_TTL_S, "1" if self.settled else "0",
        ]  # fmt: skip

    @property
    def settled(self) -> bool:
        """This node has reached Redis without a failed heartbeat for a whole TTL, so a
        node missing from the registry is gone, not late re-registering after an outage
        that every node lived through."""
        since = self._redis_ok_since
        return since is not None and self._clock() - since >= self._settle_s

    # -------------------------------------------------------------- registry
    async def drain(self) -> None:
        """Take no new rooms from now on (the node is stopping); said in Redis at once."""
        self._accepting = False
        try:
            async with asyncio.timeout(1.0):
                await self._redis.set(
                    NODE + self.node_id, self._info().model_dump_json(), ex=self._ttl_s
                )
        except (OSError, TimeoutError, aioredis.RedisError):
            logger.warning("node %s: could not say it is draining", self.node_id)

    @property
    def accepting(self) -> bool:
        return self._accepting

    def snapshot(self) -> list[NodeStatus]:
        """The registry as of the last heartbeat (for metrics, which cannot wait on Redis)."""
        return list(self._snapshot)

    async def nodes(self) -> list[NodeStatus]:
        """Every live node with the number of rooms claimed for it."""
        return await read_registry(self._redis)

    def _info(self) -> NodeInfo:
        load = self._load()
        return NodeInfo(
            **load.model_dump(),
            node_id=self.node_id,
            base_url=self.base_url,
            started_at=self._started_at,
            heartbeat_at=self._clock(),
            room_limit=self.room_limit,
            accepting=self._accepting,
        )

    async def _beat(self) -> list[str]:
        """Register this node and renew its claims; returns the rooms it lost."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(NODE + self.node_id, self._info().model_dump_json(), ex=self._ttl_s)
            pipe.sadd(NODES, self.node_id)
            await pipe.execute()
        claims = dict(self._claims)
        lost: list[str] = []
        if claims:
            args: list[str | int] = [
                self.node_id, self._ttl_s, ROOM_NODE, EPOCH, NODE_ROOMS + self.node_id,
            ]  # fmt: skip
            for room_id, epoch in claims.items():
                args += [room_id, epoch]
            for room_id in (text(r) for r in await self._renew(args=args)):
                if self._claims.get(room_id) != claims[room_id]:
                    continue  # released or re-claimed meanwhile
                del self._claims[room_id]
                logger.warning(
                    "room %s: claim epoch %d of node %s was superseded; dropping it here",
                    room_id,
                    claims[room_id],
                    self.node_id,
                )
                lost.append(room_id)
        self.last_beat_ok = self._clock()
        if self._redis_ok_since is None:
            self._redis_ok_since = self.last_beat_ok
        return lost

    async def heartbeat_now(self) -> list[str]:
        """One heartbeat now; the rooms it found lost are dropped (``on_lost``) before it
        returns them."""
        lost = await self._beat()
        for room_id in lost:
            if self._on_lost is not None:
                await self._on_lost(room_id)
        return lost

    async def _run(self) -> None:
        beats = 0
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self._heartbeat_s)
            try:
                async with asyncio.timeout(self._ttl_s):
                    lost = await self._beat()
                for room_id in lost:
                    if self._on_lost is not None:
                        self._tasks.spawn(self._on_lost(room_id), name=f"room {room_id} lost")
                if beats % 5 == 0:
                    async with asyncio.timeout(self._ttl_s):
                        self._snapshot = await self.nodes()
                beats += 1
            except (OSError, TimeoutError, aioredis.RedisError):
                self._redis_ok_since = None
                logger.warning(
                    "node %s: heartbeat failed (Redis unreachable?); media goes on, retrying",
                    self.node_id,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
