"""The queue's dispatcher stops when asked, even if a library swallows the cancellation.

Reproduces the CI hang: ``aclose()`` cancelled the dispatcher while it was inside a
Redis call; redis-py (like any library) may absorb the ``CancelledError`` and return
normally, the loop went on, and ``aclose()`` waited for it forever.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from sched_helpers import SECRET, FakeClock

from scheduler.queue import WalkInQueue
from scheduler.staff import StaffStore
from scheduler.topics import TopicStore
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService

pytestmark = pytest.mark.timeout(30)


class SwallowingRedis(aioredis.Redis):
    """A real Redis client that, once armed, absorbs one cancellation inside a command.

    This is what a library does when it catches ``CancelledError`` to clean up and
    then returns: the caller sees a normal return value.
    """

    armed = False
    inside: asyncio.Event
    swallowed = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.armed:
            self.armed = False
            self.inside.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.swallowed += 1
        return await super().execute_command(*args, **options)


async def test_aclose_returns_when_a_redis_call_swallows_the_cancellation(
    redis_url: str, clock: FakeClock
) -> None:
    client = SwallowingRedis.from_url(redis_url)
    assert isinstance(client, SwallowingRedis)
    client.inside = asyncio.Event()
    try:
        topics = TopicStore(client)
        queue = WalkInQueue(
            client, staff=StaffStore(client), topics=topics,
            rooms=RoomDirectory(client, clock=clock), tokens=TokenService(SECRET, clock=clock),
            base_url="http://sb.test", clock=clock,
        )  # fmt: skip
        client.armed = True
        queue.start()
        await asyncio.wait_for(client.inside.wait(), 5)
        closing = asyncio.create_task(queue.aclose())
        done, _ = await asyncio.wait({closing}, timeout=10)
        assert client.swallowed == 1
        if not done:
            stacks = "".join(
                f"{t.get_name()}: {t.get_stack(limit=5)}\n" for t in asyncio.all_tasks()
            )
            closing.cancel()
            pytest.fail(f"aclose() did not return within 10 s; tasks:\n{stacks}")
        assert not [t for t in asyncio.all_tasks() if "queue" in t.get_name()]
    finally:
        await client.aclose()


async def test_aclose_under_random_timing_never_hangs(redis_url: str, clock: FakeClock) -> None:
    """start() then aclose() after varied delays: every close returns promptly."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        topics = TopicStore(client)
        for i in range(60):
            queue = WalkInQueue(
                client, staff=StaffStore(client), topics=topics,
                rooms=RoomDirectory(client, clock=clock), tokens=TokenService(SECRET, clock=clock),
                base_url="http://sb.test", clock=clock,
            )  # fmt: skip
            queue.start()
            await asyncio.sleep((i % 12) * 0.001)
            await asyncio.wait_for(queue.aclose(), 6)
    finally:
        await client.aclose()
