"""Bursts and floods against a real server process: status counts and the worst video gap.

    .venv/bin/python bench/api_flood.py [--bookings 400] [--logins 200] [--flood-s 8]

1. 400 concurrent ``POST /api/bookings`` for 20 slots on one node: status counts.
2. 200 concurrent sign-ins (correct passwords) on one node: status counts, and how long
   ``/healthz`` took in the middle of them.
3. A call (counselor + interpreter, video both ways) quiet, then under an API flood
   (availability for two months with changing zones and dates, wrong sign-ins) from a
   separate process: the worst gap between video frames at the interpreter, as a ratio
   to the quiet gap of the same run.

Prints the machine's load (``os.getloadavg``) with the figures. Uses only stable
interfaces (``NodeProcess``, the CLI, ``RtcParticipant``): copy this file and
``tests/robustness/flood.py`` into an older checkout to measure it the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernel.roles import Role
from scheduler.staff import StaffMember, StaffStore
from tests.robustness.flood import call_under_flood, machine_load
from tests.support.node_process import NodeProcess
from tests.support.redis_server import redis_url_for_tests


async def _staff(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    store = StaffStore(client)
    for i in range(6):
        await store.add(
            StaffMember(username=f"counselor{i}", display_name=f"C{i}", role=Role.COUNSELOR,
                        topics=["nationality"]),
            "password123",
        )  # fmt: skip
    for i in range(3):
        await store.add(
            StaffMember(username=f"interp{i}", display_name=f"I{i}", role=Role.INTERPRETER,
                        languages=["ko", "ja", "en"]),
            "password123",
        )  # fmt: skip
    await client.aclose()


async def _bookings(base: str, n: int) -> collections.Counter[int]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async with http.get(
            base + "/api/availability",
            params={"topic": "nationality", "timezone": "Europe/Berlin", "days": "14"},
        ) as r:
            slots = [s["start"] for s in (await r.json())["slots"]][:20]

        async def book(i: int) -> int:
            body = {"name": f"R{i}", "contact": f"r{i}@example.de", "country": "DE",
                    "timezone": "Europe/Berlin", "language": "ko", "topic": "nationality",
                    "slot_start": slots[i % len(slots)]}  # fmt: skip
            try:
                async with http.post(base + "/api/bookings", json=body) as r:
                    await r.read()
                    return r.status
            except aiohttp.ClientError:
                return 0

        return collections.Counter(await asyncio.gather(*(book(i) for i in range(n))))


async def _logins(base: str, n: int) -> tuple[collections.Counter[int], float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def login(i: int) -> int:
            body = {"username": f"counselor{i % 6}", "password": "password123"}
            try:
                async with http.post(base + "/api/staff/login", json=body) as r:
                    await r.read()
                    return r.status
            except aiohttp.ClientError:
                return 0

        async def health() -> float:
            await asyncio.sleep(0.2)
            started = time.monotonic()
            async with http.get(base + "/healthz") as r:
                await r.read()
            return time.monotonic() - started

        *statuses, took = await asyncio.gather(*(login(i) for i in range(n)), health())
    return collections.Counter(statuses), took  # type: ignore[arg-type]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=400)
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--flood-s", type=float, default=8.0)
    parser.add_argument("--quiet-s", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, redis_url_for_tests(Path(tmp)) as url:
        await _staff(url)
        node = NodeProcess(Path(tmp) / "node", env={"REDIS_URL": url})
        node.data_dir.mkdir()
        try:
            await asyncio.to_thread(node.start)
            print(f"load {machine_load()}", flush=True)
            counts = await _bookings(node.base_url, args.bookings)
            print(
                f"{args.bookings} concurrent bookings: {dict(sorted(counts.items()))}; "
                f"load {machine_load()}",
                flush=True,
            )
            logins, health_s = await _logins(node.base_url, args.logins)
            shown = dict(sorted(logins.items()))
            print(
                f"{args.logins} concurrent sign-ins: {shown}, /healthz meanwhile "
                f"{health_s:.2f} s; load {machine_load()}",
                flush=True,
            )
            result = await call_under_flood(
                node, quiet_s=args.quiet_s, flood_s=args.flood_s, workers=args.workers
            )
            print(f"{result.summary()}; load {machine_load()}", flush=True)
        finally:
            node.kill()


if __name__ == "__main__":
    asyncio.run(main())
