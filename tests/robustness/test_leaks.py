"""Join/leave cycles in a room that stays open, with a publisher present, leave nothing behind:
no peer connection, no task, no forwarder record, and < 1 MB of memory per 100 cycles.

500 socket.io re-joins (the server builds a peer connection and offers each time), then
aiortc clients that answer and receive media before they go. The publisher speaks a
language with no speech model installed, so no recogniser runs: the figures are the
SFU's and signaling's alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from signaling.protocol import Role
from tests.robustness.leaks import Census, census, cycles, pings_wound_down, settled
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server

# solo: the Makefile runs this alone (memory per cycle
# would measure another test process as well)
pytestmark = [pytest.mark.timeout(300), pytest.mark.solo]

SOCKET_CYCLES = int(os.environ.get("SEOULBRIDGE_LEAK_CYCLES", "500"))
RTC_CYCLES = int(os.environ.get("SEOULBRIDGE_LEAK_RTC_CYCLES", "12"))
MIB = 2**20


def _report(label: str, start: Census, end: Census, cycles_run: int) -> float:
    per_100 = (end.rss_bytes - start.rss_bytes) / MIB / cycles_run * 100
    print(f"{label}: before: {start.line()}")
    print(f"{label}: after {cycles_run} cycles: {end.line()}; {per_100:+.2f} MiB per 100 cycles")
    return per_100


def _assert_nothing_left(start: Census, end: Census) -> None:
    assert end.media_peers == 1, end  # the publisher's
    assert end.peer_connections == start.peer_connections, (start, end)
    assert end.forwarder == start.forwarder, (start, end)
    assert end.media_tasks == start.media_tasks, (start, end)
    assert end.tasks <= start.tasks, (start, end)
    assert end.ping_tasks <= start.ping_tasks, (start, end)


async def test_join_leave_cycles_with_a_publisher_leave_nothing(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        room_id, (publisher_token, guest) = await server.room_with(
            (Role.COUNSELOR, "Publisher", "en"), (Role.INTERPRETER, "Comes and goes", "ja")
        )
        # It stays through every cycle: what it keeps of them would be counted as the
        # server's (the same process).
        publisher = RtcParticipant(server.base_url, room_id, publisher_token, keep=100)
        try:
            await publisher.connect()
            await publisher.send({"type": "join"})
            await publisher.wait_for("joined")
            warm = max(2, SOCKET_CYCLES // 10)
            await cycles(server, room_id, guest, warm, rtc=False)
            await cycles(server, room_id, guest, 2, rtc=True, first=warm)
            start = await settled(server, room_id)
            start = await pings_wound_down(server, room_id, 1)

            began = time.monotonic()
            await cycles(server, room_id, guest, SOCKET_CYCLES - warm, rtc=False, first=warm + 2)
            print(f"{SOCKET_CYCLES - warm} socket.io cycles in {time.monotonic() - began:.1f} s")
            # engine.io's ping task of a closed socket ends within its ping interval (25 s).
            end = await pings_wound_down(server, room_id, start.ping_tasks)
            per_100 = _report("socket.io re-joins", start, end, SOCKET_CYCLES - warm)
            _assert_nothing_left(start, end)
            assert per_100 < 1.0

            await cycles(server, room_id, guest, RTC_CYCLES, rtc=True, first=SOCKET_CYCLES + 2)
            after_rtc = await census(server, room_id)
            # Counts only: this process also runs the clients' VP8 encoders and decoders,
            # whose native memory is not the server's (bench/leak.py reports RSS).
            _report("aiortc clients", end, after_rtc, RTC_CYCLES)
            assert after_rtc.peer_connections == end.peer_connections, (end, after_rtc)
            assert after_rtc.forwarder == {**end.forwarder, "outbound": 2}, (end, after_rtc)
            assert after_rtc.tasks <= end.tasks and after_rtc.media_peers == 1, after_rtc
        finally:
            await publisher.close()
