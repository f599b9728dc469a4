"""Join/leave cycles in a room that stays open, with a publisher present, leave nothing behind:
no peer connection, no task, no forwarder record, and < 1 MB of memory per 100 cycles."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from signaling.protocol import Role
from tests.robustness.leaks import Census, census, cycles, pings_wound_down, settled
from tests.support.rtc_client import RtcParticipant
from tests.support.server import RunningServer, running_server

pytestmark = pytest.mark.timeout(240)

SOCKET_CYCLES = int(os.environ.get("SEOULBRIDGE_LEAK_CYCLES", "500"))
RTC_CYCLES = int(os.environ.get("SEOULBRIDGE_LEAK_RTC_CYCLES", "24"))
MIB = 2**20


async def _with_publisher(server: RunningServer) -> tuple[str, str, RtcParticipant]:
    room_id, (publisher_token, guest_token) = await server.room_with(
        (Role.COUNSELOR, "Publisher", "ko"), (Role.INTERPRETER, "Comes and goes", "ja")
    )
    publisher = RtcParticipant(server.base_url, room_id, publisher_token)
    await publisher.connect()
    await publisher.send({"type": "join"})
    await publisher.wait_for("joined")
    await publisher.wait_for("offer")
    return room_id, guest_token, publisher


def _assert_nothing_left(label: str, start: Census, end: Census, cycles_run: int) -> float:
    per_100 = (end.rss_bytes - start.rss_bytes) / MIB / cycles_run * 100
    print(f"{label}: after warm-up: {start.line()}")
    print(f"{label}: after {cycles_run} more: {end.line()}; {per_100:+.2f} MiB per 100 cycles")
    assert end.media_peers == 1, end  # the publisher's
    assert end.peer_connections == start.peer_connections, (start, end)
    assert end.forwarder == start.forwarder, (start, end)
    assert end.media_tasks == start.media_tasks, (start, end)
    assert end.tasks <= start.tasks, (start, end)
    return per_100


async def test_500_socketio_rejoins_leave_nothing(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        room_id, guest, publisher = await _with_publisher(server)
        try:
            warm = SOCKET_CYCLES // 10
            await cycles(server, room_id, guest, warm, rtc=False)
            start = await settled(server, room_id)
            began = time.monotonic()
            await cycles(server, room_id, guest, SOCKET_CYCLES - warm, rtc=False, first=warm)
            print(f"{SOCKET_CYCLES - warm} socket.io cycles in {time.monotonic() - began:.1f} s")
            end = await census(server, room_id)
            per_100 = _assert_nothing_left("socket.io", start, end, SOCKET_CYCLES - warm)
            assert per_100 < 1.0
            # engine.io's ping tasks of the closed sockets end within its ping interval.
            wound_down = await pings_wound_down(server, room_id, start.ping_tasks)
            print(f"socket.io: 30 s later: {wound_down.line()}")
            assert wound_down.ping_tasks <= start.ping_tasks, wound_down
        finally:
            await publisher.close()


async def test_aiortc_clients_coming_and_going_leave_nothing(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        room_id, guest, publisher = await _with_publisher(server)
        try:
            await cycles(server, room_id, guest, 4, rtc=True)
            start = await settled(server, room_id)
            await cycles(server, room_id, guest, RTC_CYCLES, rtc=True, first=4)
            end = await census(server, room_id)
            _assert_nothing_left("aiortc", start, end, RTC_CYCLES)
        finally:
            await publisher.close()
