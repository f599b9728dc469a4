from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from signaling.placement import NodePlacement


async def test_a_room_lives_on_one_node_and_moves_when_it_dies(redis: aioredis.Redis) -> None:
    a = NodePlacement(redis, node_id="node-a", base_url="http://a", heartbeat_s=1)
    b = NodePlacement(redis, node_id="node-b", base_url="http://b", heartbeat_s=1)
    await a.start()
    await b.start()
    try:
        assert await a.claim("r-1") == "node-a"
        assert await b.claim("r-1") == "node-a"  # b must send people to a
        assert [n.node_id for n in await b.nodes()] == ["node-a", "node-b"]

        # node a dies without cleaning up: its heartbeat lapses, the room moves to b
        await a.stop_heartbeat()
        await redis.delete("sb:node:node-a")
        assert await b.claim("r-1") == "node-b"

        # releasing is only possible for the holder
        await a.release("r-1")
        assert await redis.get("sb:room-node:r-1") == b"node-b"
        await b.release("r-1")
        assert await redis.get("sb:room-node:r-1") is None
    finally:
        await a.aclose()
        await b.aclose()
    assert await b.nodes() == []


async def test_heartbeat_keeps_claims_alive(redis: aioredis.Redis) -> None:
    node = NodePlacement(redis, node_id="n", base_url="http://n", heartbeat_s=0.2)
    await node.start()
    try:
        await node.claim("r-2")
        ttl_before = await redis.ttl("sb:room-node:r-2")
        await asyncio.sleep(0.5)
        assert await redis.get("sb:room-node:r-2") == b"n"
        assert await redis.ttl("sb:room-node:r-2") >= ttl_before - 1
    finally:
        await node.aclose()
