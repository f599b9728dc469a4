"""Many-node benchmark: placement at the room limit, balance over 2–3 nodes, SIGKILL recovery.

    .venv/bin/python bench/cluster.py --nodes 3 --limit 8 --kills 5

Real nodes (``seoulbridge serve`` processes) on one real ``redis-server``:

1. **Rooms per node at the limit.** Every node has ``--limit`` rooms at most. The
   join step is asked for ``nodes × limit + 3`` new rooms, one after another and
   then in a burst from all nodes at once; printed: rooms each node took, how many
   joins were refused with ``503 no_capacity``, and the join step's latency.
2. **Placement balance** over 2 and 3 nodes: the spread (max − min rooms per node)
   when every node has room to spare, sequential and concurrent.
3. **Recovery after SIGKILL** of the node holding a two-person call (aiortc clients
   that come back through the join step as the page does), ``--kills`` times: the
   time from the kill to every participant's socket on a survivor and to fresh
   media on every side. The killed node is started again between rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernel.roles import Role  # noqa: E402
from signaling.rooms import RoomDirectory  # noqa: E402
from signaling.tokens import TokenService  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.node_process import TOKEN_SECRET  # noqa: E402
from tests.support.redis_process import RedisProcess  # noqa: E402
from tests.support.routed_client import RoutedParticipant  # noqa: E402


async def _join_step(
    http: aiohttp.ClientSession, base: str, room: str, token: str
) -> tuple[int, str, float]:
    query = urllib.parse.urlencode({"room": room, "t": token})
    started = time.perf_counter()
    async with http.get(f"{base}/api/join-info?{query}") as reply:
        body = await reply.json()
    took = time.perf_counter() - started
    if reply.status == 200:
        return 200, str(body["node"]["id"]), took
    return reply.status, str(body.get("error", {}).get("code")), took


async def _rooms(cluster: Cluster, count: int) -> list[tuple[str, str]]:
    """``count`` rooms in the cluster's Redis, with one resident link each."""
    client = aioredis.Redis.from_url(cluster.redis_url)
    tokens = TokenService(TOKEN_SECRET)
    try:
        made = []
        for _ in range(count):
            record = await RoomDirectory(client).create(title="bench")
            token = tokens.issue_join(
                room_id=record.id, role=Role.RESIDENT, name="Bench", language="ja", ttl_s=3600
            )
            made.append((record.id, token))
        return made
    finally:
        await client.aclose()


async def _flush(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


async def placement(cluster: Cluster, limit: int, *, burst: bool) -> None:
    nodes = len(cluster.nodes)
    rooms = await _rooms(cluster, nodes * limit + 3)
    urls = [n.base_url for n in cluster.nodes]
    async with aiohttp.ClientSession() as http:
        if burst:
            results = await asyncio.gather(
                *(_join_step(http, urls[i % nodes], r, t) for i, (r, t) in enumerate(rooms))
            )
        else:
            results = [
                await _join_step(http, urls[i % nodes], r, t) for i, (r, t) in enumerate(rooms)
            ]
    placed = Counter(where for status, where, _ in results if status == 200)
    refused = Counter(where for status, where, _ in results if status != 200)
    took = sorted(t * 1000 for *_, t in results)
    print(
        f"  {'burst' if burst else 'one by one':<10} {len(rooms)} rooms, limit {limit}: "
        + ", ".join(f"{n} {placed.get(n, 0)}" for n in sorted(placed))
        + f"; refused {dict(refused) or 0}; join step p50 {statistics.median(took):.0f} ms, "
        f"max {took[-1]:.0f} ms"
    )


async def balance(cluster: Cluster, rooms: int, *, burst: bool) -> None:
    made = await _rooms(cluster, rooms)
    urls = [n.base_url for n in cluster.nodes]
    async with aiohttp.ClientSession() as http:
        asks = [_join_step(http, urls[i % len(urls)], r, t) for i, (r, t) in enumerate(made)]
        results = await asyncio.gather(*asks) if burst else [await a for a in asks]
    placed = Counter(where for status, where, _ in results if status == 200)
    counts = [placed.get(f"node-{i}", 0) for i in range(len(urls))]
    print(
        f"  {len(urls)} nodes, {rooms} rooms {'at once' if burst else 'one by one'}: "
        f"{counts} (spread {max(counts) - min(counts)})"
    )


async def recovery(cluster: Cluster, kills: int) -> list[tuple[float, float]]:
    results: list[tuple[float, float]] = []
    for round_ in range(kills):
        room, tokens = await asyncio.to_thread(
            cluster.room, "counselor:Counselor:ko", "interpreter:Sato:ja"
        )
        urls = [n.base_url for n in cluster.nodes]
        a = RoutedParticipant(urls, room, tokens["counselor"])
        b = RoutedParticipant(urls[::-1], room, tokens["interpreter"])
        try:
            for p in (a, b):
                await p.connect()
                await p.wait_for("welcome")
                await p.send({"type": "join"})
                await p.wait_for("joined")
            assert a.you and b.you
            await a.wait_frames(b.you["id"], "video", 10, timeout=30)
            await b.wait_frames(a.you["id"], "video", 10, timeout=30)
            a.auto_rejoin = b.auto_rejoin = True
            assert a.node is not None
            victim = cluster.by_id(a.node["id"])
            killed = time.monotonic()
            await asyncio.to_thread(victim.kill)
            while not (a.reconnected_at and b.reconnected_at):
                if time.monotonic() - killed > 60:
                    raise RuntimeError("no reconnection within 60 s")
                await asyncio.sleep(0.02)
            sockets = max(a.reconnected_at[-1], b.reconnected_at[-1]) - killed
            fa, fb = a.frames[b.you["id"]]["video"], b.frames[a.you["id"]]["video"]
            await a.wait_frames(b.you["id"], "video", fa + 5, timeout=60)
            await b.wait_frames(a.you["id"], "video", fb + 5, timeout=60)
            media = time.monotonic() - killed
            results.append((sockets, media))
            print(
                f"  kill {round_ + 1}: {victim.env['SEOULBRIDGE_NODE_ID']} -> "
                f"{a.node['id']}: sockets back {sockets:.2f} s, media {media:.2f} s"
            )
            await asyncio.to_thread(victim.start)
        finally:
            for p in (a, b):
                with contextlib.suppress(Exception):
                    await p.close()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--limit", type=int, default=8, help="room limit per node")
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")
    with tempfile.TemporaryDirectory(prefix="sb-bench-cluster-") as tmp:
        root = Path(tmp)
        redis = RedisProcess(root / "redis")
        redis.start()
        try:
            print(f"\n1. rooms per node at the limit ({args.nodes} nodes, limit {args.limit})")
            for burst in (False, True):
                cluster = Cluster(
                    root / f"limit-{burst}", redis.url, size=args.nodes,
                    extra_env={"SEOULBRIDGE_ROOM_LIMIT": str(args.limit)},
                )  # fmt: skip
                await asyncio.gather(*(asyncio.to_thread(n.start) for n in cluster.nodes))
                try:
                    await placement(cluster, args.limit, burst=burst)
                finally:
                    await asyncio.to_thread(cluster.kill_all)
                await _flush(redis.url)
            print("\n2. placement balance (limit 100)")
            for size in (2, 3):
                cluster = Cluster(root / f"balance-{size}", redis.url, size=size)
                await asyncio.gather(*(asyncio.to_thread(n.start) for n in cluster.nodes))
                try:
                    await balance(cluster, 12, burst=False)
                    await balance(cluster, 12, burst=True)
                finally:
                    await asyncio.to_thread(cluster.kill_all)
                await _flush(redis.url)
            print(f"\n3. recovery after SIGKILL of the media node ({args.kills} kills, 3 nodes)")
            cluster = Cluster(root / "recovery", redis.url, size=3)
            await asyncio.gather(*(asyncio.to_thread(n.start) for n in cluster.nodes))
            try:
                times = await recovery(cluster, args.kills)
            finally:
                await asyncio.to_thread(cluster.kill_all)
            sockets = [s for s, _ in times]
            media = [m for _, m in times]
            print(
                f"  sockets on a survivor: median {statistics.median(sockets):.2f} s, "
                f"max {max(sockets):.2f} s"
            )
            print(
                f"  media again on every side: median {statistics.median(media):.2f} s, "
                f"max {max(media):.2f} s"
            )
        finally:
            redis.kill()
    print(f"\nload after: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
