"""Join/leave cycles with a publisher present: what each cycle leaves behind.

    .venv/bin/python bench/leak.py [--socketio 500] [--rtc 50]

A counselor publishes audio and video; another participant comes and goes: first as a
socket.io page that joins and leaves before answering, then as a real aiortc client
that receives media. Prints the census (live RTCPeerConnections, tasks, engine.io ping
tasks, room media peers, forwarder records, RSS) after a warm-up and at the end, and the
growth per cycle, with the machine's load. Only stable interfaces are used
(``tests/robustness/leaks.py``), so copying this file and that one into an older
checkout measures it the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signaling.protocol import Role
from tests.robustness.leaks import cycles, pings_wound_down, settled
from tests.support.calls import tokens_from_cli
from tests.support.node_process import NodeProcess
from tests.support.redis_server import redis_url_for_tests
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server

MIB = 2**20


async def run(label: str, data_dir: Path, url: str, count: int, *, rtc: bool) -> None:
    if count <= 0:
        return
    async with running_server(data_dir, url) as server:
        room_id, (pub_token, guest) = await server.room_with(
            (Role.COUNSELOR, "Publisher", "ko"), (Role.INTERPRETER, "Guest", "ja")
        )
        publisher = RtcParticipant(server.base_url, room_id, pub_token, keep=100)
        await publisher.connect()
        await publisher.send({"type": "join"})
        await publisher.wait_for("joined")
        try:
            warm = max(2, count // 10)
            await cycles(server, room_id, guest, warm, rtc=rtc)
            start = await settled(server, room_id)
            began = time.monotonic()
            await cycles(server, room_id, guest, count - warm, rtc=rtc, first=warm)
            took = time.monotonic() - began
            end = await pings_wound_down(server, room_id, start.ping_tasks)
            n = count - warm
            print(f"{label}: after {warm} warm-up cycles: {start.line()}")
            print(f"{label}: {n} more ({took:.1f} s), then 25 s for engine.io: {end.line()}")
            print(
                f"{label}: per cycle: "
                f"{(end.peer_connections - start.peer_connections) / n:+.3f} RTCPeerConnection, "
                f"{(end.tasks - start.tasks) / n:+.3f} tasks, "
                f"{(end.rss_bytes - start.rss_bytes) / MIB / n:+.3f} MiB "
                f"({(end.rss_bytes - start.rss_bytes) / MIB / n * 100:+.1f} MiB per 100)",
                flush=True,
            )
        finally:
            await publisher.close()


async def run_on_process(tmp: Path, url: str, count: int) -> None:
    """aiortc cycles against a server *process*: its RSS alone (the clients' codecs are here)."""
    if count <= 0:
        return
    node = NodeProcess(tmp / "node", env={"REDIS_URL": url})
    node.data_dir.mkdir()
    try:
        await asyncio.to_thread(node.start)
        out = await asyncio.to_thread(
            node.cli, "room", "create", "--title", "Leak",
            "--participant", "counselor:Publisher:en", "--participant", "interpreter:Guest:ja",
        )  # fmt: skip
        room_id, tokens = tokens_from_cli(out)
        server = _Remote(node.base_url)
        publisher = RtcParticipant(node.base_url, room_id, tokens["counselor"])
        await publisher.connect()
        await publisher.send({"type": "join"})
        await publisher.wait_for("joined")
        server_process = psutil.Process(node.proc.pid)  # type: ignore[union-attr]
        try:
            warm = max(2, count // 10)
            await cycles(server, room_id, tokens["interpreter"], warm, rtc=True)  # type: ignore[arg-type]
            await asyncio.sleep(3)
            rss0 = server_process.memory_info().rss
            began = time.monotonic()
            await cycles(server, room_id, tokens["interpreter"], count - warm, rtc=True, first=warm)  # type: ignore[arg-type]
            took = time.monotonic() - began
            await asyncio.sleep(3)
            rss1 = server_process.memory_info().rss
            n = count - warm
            print(
                f"aiortc, server process: {n} cycles ({took:.1f} s): server RSS "
                f"{rss0 / MIB:.1f} -> {rss1 / MIB:.1f} MiB, {(rss1 - rss0) / MIB / n:+.3f} MiB "
                f"per cycle ({(rss1 - rss0) / MIB / n * 100:+.1f} MiB per 100)",
                flush=True,
            )
        finally:
            await publisher.close()
    finally:
        node.kill()


@dataclass
class _Remote:
    """What ``cycles`` needs of a server: its URL."""

    base_url: str


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socketio", type=int, default=500, help="socket.io re-join cycles")
    parser.add_argument("--rtc", type=int, default=50, help="aiortc client cycles")
    parser.add_argument(
        "--rtc-process", type=int, default=50, help="aiortc cycles against a server process"
    )
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, redis_url_for_tests(Path(tmp)) as url:
        for label, count, rtc in (("socket.io", args.socketio, False), ("aiortc", args.rtc, True)):
            data_dir = Path(tmp) / label
            data_dir.mkdir()
            await run(label, data_dir, url, count, rtc=rtc)
        await run_on_process(Path(tmp), url, args.rtc_process)
    print(f"load after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
