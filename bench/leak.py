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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signaling.protocol import Role
from tests.robustness.leaks import census, cycles, settled
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
        publisher = RtcParticipant(server.base_url, room_id, pub_token)
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
            end = await census(server, room_id)
            n = count - warm
            print(f"{label}: after {warm} warm-up cycles: {start.line()}")
            print(f"{label}: after {n} more ({took:.1f} s): {end.line()}")
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socketio", type=int, default=500, help="socket.io re-join cycles")
    parser.add_argument("--rtc", type=int, default=50, help="aiortc client cycles")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, redis_url_for_tests(Path(tmp)) as url:
        for label, count, rtc in (("socket.io", args.socketio, False), ("aiortc", args.rtc, True)):
            data_dir = Path(tmp) / label
            data_dir.mkdir()
            await run(label, data_dir, url, count, rtc=rtc)
    print(f"load after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
