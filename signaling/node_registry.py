"""The node registry in Redis: what each node reports, room claims, and reading it back.

Keys (all prefixed ``sb:``):

* ``node:{id}``         JSON ``NodeInfo``, expires ``ttl_s`` after the node's last heartbeat
* ``nodes``             set of registered node ids (lapsed ones are pruned lazily)
* ``room-node:{room}``  ``"node|epoch"``: the room's claim, expires ``ttl_s`` after its renewal
* ``room-epoch:{room}`` hash ``epoch``, ``node``: the last epoch issued and to whom
* ``node-rooms:{id}``   set of rooms claimed for the node (pruned lazily by placement)

``signaling.placement`` writes them (heartbeats, claims, placement); ``read_registry``
is what ``seoulbridge nodes`` and the metrics show.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

NODE = "sb:node:"
NODES = "sb:nodes"
ROOM_NODE = "sb:room-node:"
EPOCH = "sb:room-epoch:"
NODE_ROOMS = "sb:node-rooms:"
#: Epoch records outlive any consultation, like admission.
EPOCH_TTL_S = 3 * 24 * 3600


class NodeLoad(BaseModel):
    """What a node reports of itself with each heartbeat."""

    model_config = ConfigDict(frozen=True)

    rooms: int = Field(default=0, description="rooms open on the node")
    participants: int = 0
    peers: int = Field(default=0, description="server-side peer connections")
    streams: int = Field(default=0, description="tracks forwarded to subscribers")
    cpu_percent: float = 0.0


class NodeInfo(NodeLoad):
    """A node's registry entry: where pages reach it, its limit, its load."""

    node_id: str
    base_url: str
    started_at: float
    heartbeat_at: float
    room_limit: int
    accepting: bool = True


class NodeStatus(BaseModel):
    """A registry entry with the rooms claimed for the node (``seoulbridge nodes``)."""

    model_config = ConfigDict(frozen=True)

    info: NodeInfo
    claimed: int


@dataclass(frozen=True)
class Claim:
    node_id: str
    epoch: int

    @classmethod
    def parse(cls, raw: bytes | str) -> Claim:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        node, sep, epoch = text.rpartition("|")
        return cls(node, int(epoch)) if sep else cls(text, 0)


def text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def read_registry(redis: aioredis.Redis) -> list[NodeStatus]:
    """Every live node with the number of rooms claimed for it (``seoulbridge nodes``)."""
    ids = sorted(text(m) for m in await redis.smembers(NODES))
    if not ids:
        return []
    infos = await redis.mget([NODE + i for i in ids])
    found: list[NodeStatus] = []
    for node_id, raw in zip(ids, infos, strict=True):
        if raw is None:
            continue
        rooms = sorted(text(r) for r in await redis.smembers(NODE_ROOMS + node_id))
        claims = await redis.mget([ROOM_NODE + r for r in rooms]) if rooms else []
        held = sum(1 for c in claims if c is not None and Claim.parse(c).node_id == node_id)
        found.append(NodeStatus(info=NodeInfo.model_validate_json(raw), claimed=held))
    return found
