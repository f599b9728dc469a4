"""Placement on a real Redis: claims, epochs and fencing, placement by load, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from signaling.node_registry import Claim, NodeLoad
from signaling.placement import NoCapacity, NodePlacement, PlacementUnsettled

Make = Callable[..., NodePlacement]


class Clock:
    """Wall-clock time, plus however far a test moved it on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(redis: aioredis.Redis) -> AsyncIterator[Make]:
    """Nodes that have seen Redis long enough to trust the registry (``settled``)."""
    made: list[NodePlacement] = []

    def new(node_id: str, **kw: object) -> NodePlacement:
        kw.setdefault("heartbeat_s", 1000.0)  # beats only when the test says so
        kw.setdefault("ttl_s", 2.0)
        kw.setdefault("settle_s", 0.0)
        node = NodePlacement(redis, node_id=node_id, base_url=f"http://{node_id}", **kw)  # type: ignore[arg-type]
        made.append(node)
        return node

    yield new
    for node in made:
        await node.aclose()


@pytest.fixture
async def fresh(redis: aioredis.Redis, clock: Clock) -> AsyncIterator[Make]:
    """Nodes whose first heartbeat is now (just started, or Redis just came back)."""
    made: list[NodePlacement] = []

    def new(node_id: str) -> NodePlacement:
        node = NodePlacement(
            redis, node_id=node_id, base_url=f"http://{node_id}", heartbeat_s=1000.0,
            ttl_s=2.0, clock=clock,
        )  # fmt: skip
        made.append(node)
        return node

    yield new
    for node in made:
        await node.aclose()


async def _lapse(redis: aioredis.Redis, node_id: str) -> None:
    """What Redis shows once a node stopped beating for longer than its TTL."""
    await redis.delete(f"sb:node:{node_id}")


async def test_a_room_lives_on_one_node_and_moves_with_a_new_epoch_when_it_dies(
    make: Make, redis: aioredis.Redis
) -> None:
    a, b = make("node-a"), make("node-b")
    await a.start()
    await b.start()
    assert await a.claim("r-1") == Claim("node-a", 1)
    assert await b.claim("r-1") == Claim("node-a", 1)  # b must send people to a
    assert [n.info.node_id for n in await b.nodes()] == ["node-a", "node-b"]

    await a.stop_heartbeat()
    await _lapse(redis, "node-a")
    assert await b.claim("r-1") == Claim("node-b", 2)
    assert b.claims == {"r-1": 2}

    # only the holder of the current epoch can release
    await a.release("r-1")
    assert await redis.get("sb:room-node:r-1") == b"node-b|2"
    await b.release("r-1")
    assert await redis.get("sb:room-node:r-1") is None


async def test_the_heartbeat_keeps_claims_alive(make: Make, redis: aioredis.Redis) -> None:
    node = make("n", heartbeat_s=0.2, ttl_s=2.0)
    await node.start()
    await node.claim("r-2")
    await asyncio.sleep(2.5)  # longer than the TTL: only the heartbeat keeps it
    assert await redis.get("sb:room-node:r-2") == b"n|1"
    assert await redis.get("sb:node:n") is not None


async def test_a_fenced_node_learns_on_its_next_heartbeat_that_the_room_moved(
    make: Make, redis: aioredis.Redis
) -> None:
    """A node cut off from Redis (or stalled) past its TTL while the room moved must
    not keep serving it: its renewal finds a newer epoch and it drops the room."""
    a, b = make("node-a"), make("node-b")
    lost: list[str] = []

    async def on_lost(room_id: str) -> None:
        lost.append(room_id)

    a.on_lost(on_lost)
    await a.start()
    await b.start()
    await a.claim("r-3")
    await a.claim("r-4")
    # a is cut off: its entry and its claims lapse; the next join moves r-3 to b
    await _lapse(redis, "node-a")
    await redis.delete("sb:room-node:r-3", "sb:room-node:r-4")
    placed = await b.place("r-3")
    assert placed.claim == Claim("node-b", 2) and placed.node.base_url == "http://node-b"

    # a comes back: r-3 is lost (epoch 2 was issued to b), r-4 nobody took: still a's
    assert await a.heartbeat_now() == ["r-3"]
    assert lost == ["r-3"]
    assert a.claims == {"r-4": 1}
    assert await redis.get("sb:room-node:r-4") == b"node-a|1"
    assert await redis.get("sb:room-node:r-3") == b"node-b|2"
    await a.release("r-3")  # not a's any more: nothing happens to b's claim
    assert await redis.get("sb:room-node:r-3") == b"node-b|2"


async def test_an_unreachable_holder_is_fenced_by_the_join_step(make: Make) -> None:
    a, b = make("node-a"), make("node-b")
    await a.start()
    await b.start()
    await a.claim("r-5")
    assert (await b.place("r-5")).claim == Claim("node-a", 1)  # a is alive: stays
    moved = await b.place("r-5", fenced="node-a")
    assert moved.claim == Claim("node-b", 2)
    assert await a.heartbeat_now() == ["r-5"]


async def test_new_rooms_go_to_the_least_loaded_node_under_its_limit(make: Make) -> None:
    busy = make("node-a", load=lambda: NodeLoad(streams=12))
    idle = make("node-b", room_limit=2)
    api_only = make("node-c", room_limit=0)
    for node in (busy, idle, api_only):
        await node.start()
    # b is idle; each claimed room weighs as a two-person call (4 streams), a forwards 12
    where = [(await api_only.place(f"r-{i}")).claim.node_id for i in range(5)]
    assert where == ["node-b", "node-b", "node-a", "node-a", "node-a"]
    full = make("node-d", room_limit=1)
    await full.start()
    assert (await full.place("r-9")).claim.node_id == "node-d"
    assert (await full.place("r-9")).claim.node_id == "node-d"  # the same room stays
    assert {n.info.node_id: n.claimed for n in await full.nodes()} == {
        "node-a": 3,
        "node-b": 2,
        "node-c": 0,
        "node-d": 1,
    }


async def test_no_capacity_when_every_node_is_full_or_draining(make: Make) -> None:
    a = make("node-a", room_limit=1)
    await a.start()
    await a.place("r-1")
    with pytest.raises(NoCapacity):
        await a.place("r-2")
    b = make("node-b")
    await b.start()
    await b.drain()
    with pytest.raises(NoCapacity):
        await a.place("r-2")


async def test_a_lapsed_claim_goes_back_to_its_node_when_that_node_is_still_alive(
    make: Make, redis: aioredis.Redis
) -> None:
    """After a Redis restart the claims may have expired before the nodes beat again:
    a join in that moment keeps the room where its media is."""
    a, b = make("node-a"), make("node-b")
    await a.start()
    await b.start()
    await a.claim("r-6")
    await redis.delete("sb:room-node:r-6")
    placed = await b.place("r-6")
    assert placed.claim == Claim("node-a", 1)
    assert await a.heartbeat_now() == []


async def test_a_node_whose_own_entry_lapsed_still_places_its_room_on_itself(
    make: Make, redis: aioredis.Redis
) -> None:
    """One node, its loop held past the TTL between two heartbeats (a starved machine):
    the join step it answers must not say that every server is full."""
    a = make("node-a")
    await a.start()
    await a.claim("r-8")
    await _lapse(redis, "node-a")
    placed = await a.place("r-8")
    assert placed.claim == Claim("node-a", 1)  # the room stays where its media is
    assert placed.node.node_id == "node-a"
    await _lapse(redis, "node-a")
    assert (await a.place("r-9")).claim.node_id == "node-a"  # and a new room goes there too
    await a.drain()
    await _lapse(redis, "node-a")
    with pytest.raises(NoCapacity):  # a draining node does not take it back
        await a.place("r-10")


async def test_placement_is_atomic_under_concurrent_joins(make: Make) -> None:
    nodes = [make(f"node-{i}", room_limit=4) for i in range(3)]
    for node in nodes:
        await node.start()
    # every participant of every room asks at once, through different nodes
    asks = [nodes[(r + p) % 3].place(f"r-{r}") for r in range(9) for p in range(3)]
    placed = await asyncio.gather(*asks)
    by_room: dict[str, set[str]] = {}
    for i, result in enumerate(placed):
        by_room.setdefault(f"r-{i // 3}", set()).add(result.claim.node_id)
    assert all(len(holders) == 1 for holders in by_room.values()), by_room
    counts = {n.info.node_id: n.claimed for n in await nodes[0].nodes()}
    assert sorted(counts.values()) == [3, 3, 3], counts


async def test_a_node_that_just_reached_redis_does_not_move_rooms_off_a_missing_holder(
    make: Make, fresh: Make, clock: Clock, redis: aioredis.Redis
) -> None:
    """After a Redis restart every key with a TTL is gone and the nodes re-register one
    by one: a join in that moment must not take a room from its node, which is only late.
    New rooms are placed at once; a holder that a page reports unreachable (and a probe
    confirms) is fenced at once."""
    a = make("node-a")
    await a.start()
    await a.claim("r-1")
    await a.claim("r-2")
    await redis.delete("sb:node:node-a", "sb:room-node:r-1", "sb:room-node:r-2")
    b = fresh("node-b")
    await b.start()
    assert not b.settled
    with pytest.raises(PlacementUnsettled):
        await b.place("r-1")
    assert (await b.place("r-new")).claim == Claim("node-b", 1)
    assert (await b.place("r-2", fenced="node-a")).claim == Claim("node-b", 2)
    clock.ahead = 3.0  # a whole TTL of good heartbeats later, node-a never came back
    assert b.settled
    assert (await b.place("r-1")).claim == Claim("node-b", 2)
