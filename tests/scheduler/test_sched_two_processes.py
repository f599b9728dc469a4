"""Two real server processes, 200 concurrent booking requests for 20 slots: exactly 20 win."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from sched_helpers import SECRET, add_staff

from kernel.roles import Role
from scheduler.booking_store import BookingStore
from scheduler.staff import StaffStore

pytestmark = pytest.mark.timeout(60)
SERVER = Path(__file__).with_name("_server.py")


async def start_server(redis_url: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER), redis_url, SECRET, "--max-seconds", "50",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert line.startswith(b"PORT "), line
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


@pytest.fixture
async def servers(redis_url: str, redis: aioredis.Redis) -> AsyncIterator[list[str]]:
    store = StaffStore(redis)
    await add_staff(store, "park", Role.COUNSELOR, topics=["nationality"])
    await add_staff(store, "sato", Role.INTERPRETER, languages=["ko", "ja"])
    started = await asyncio.gather(start_server(redis_url), start_server(redis_url))
    try:
        yield [url for _, url in started]
    finally:
        for proc, _ in started:
            proc.terminate()
        for proc, _ in started:
            await asyncio.wait_for(proc.wait(), 10)


async def test_200_requests_20_slots_two_processes(
    servers: list[str], redis: aioredis.Redis
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            servers[0] + "/api/availability",
            params={"topic": "nationality", "language": "ko", "timezone": "Europe/Berlin",
                    "days": "14"},
        ) as resp:  # fmt: skip
            assert resp.status == 200
            slots = [s["start"] for s in (await resp.json())["slots"]][:20]
        assert len(slots) == 20

        async def book(i: int) -> int:
            payload = {
                "name": f"Resident {i}", "contact": f"r{i}@example.de", "country": "DE",
                "timezone": "Europe/Berlin", "language": "ja" if i % 2 else "ko",
                "topic": "nationality", "slot_start": slots[i % 20],
            }  # fmt: skip
            async with http.post(servers[i % 2] + "/api/bookings", json=payload) as resp:
                if resp.status not in (201, 409):
                    raise AssertionError(await resp.text())
                return resp.status

        statuses = await asyncio.gather(*(book(i) for i in range(200)))
    assert statuses.count(201) == 20
    assert statuses.count(409) == 180
    store = BookingStore(redis)
    days = {s[:10] for s in slots}
    bookings = []
    for key in await redis.keys("sb:booking:*"):
        found = await store.get(key.decode().removeprefix("sb:booking:"))
        assert found is not None
        bookings.append(found[0])
    assert len(bookings) == 20 and days
    assert len({b.start for b in bookings}) == 20  # one booking per slot
    for person in ("park", "sato"):
        mine = sorted((b.start, b.end) for b in bookings if person in (b.counselor, b.interpreter))
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(mine))
