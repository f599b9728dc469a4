"""Join/leave cycles in a room that stays open, with a publisher present: what is left behind.

``cycles(server, room_id, tokens, n, rtc=...)`` makes a participant come and go ``n``
times while a publisher stays: either a socket.io client that joins (the server builds
a peer connection and offers) and leaves or drops, or a real aiortc client that answers
and receives media before it leaves. ``census(server, room_id)`` counts what the process
holds: live ``RTCPeerConnection`` objects, asyncio tasks, the room's media peers and
tasks, the forwarder's records (``RtpForwarder.held()``), and resident memory after a
full collection. Used by ``tests/robustness/test_leaks.py`` and ``bench/leak.py``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from typing import Any

import psutil
import socketio
from aiortc import RTCPeerConnection

from tests.support.rtc_client import RtcParticipant
from tests.support.server import RunningServer

try:
    from web.appkeys import MEDIA_ROOMS
except ImportError:  # an older checkout (bench/leak.py measures those too): counts only
    MEDIA_ROOMS = None  # type: ignore[assignment]

#: engine.io's per-socket ping task: it sleeps ``ping_interval`` (25 s) before it sees its
#: socket closed and ends. Counted apart: bounded by the connections of the last 25 s.
PING_TASK = "AsyncSocket._send_ping"


def _task_kind(task: asyncio.Task[object]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", task.get_name())


@dataclass(frozen=True)
class Census:
    peer_connections: int
    tasks: int
    ping_tasks: int
    media_peers: int
    media_tasks: int
    forwarder: dict[str, int]
    rss_bytes: int

    def line(self) -> str:
        return (
            f"{self.peer_connections} RTCPeerConnection, {self.tasks} tasks "
            f"(+{self.ping_tasks} engine.io ping tasks winding down), "
            f"{self.media_peers} media peers, {self.media_tasks} room media tasks, "
            f"forwarder {self.forwarder}, RSS {self.rss_bytes / 2**20:.1f} MiB"
        )


async def census(server: RunningServer, room_id: str) -> Census:
    await asyncio.sleep(0.3)  # closes in flight finish
    gc.collect()
    pcs = sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))
    room = server.app[MEDIA_ROOMS].get(room_id) if MEDIA_ROOMS is not None else None
    media = room.media if room is not None else None
    held = getattr(media.forwarder, "held", None) if media is not None else None
    kinds = [_task_kind(t) for t in asyncio.all_tasks()]
    return Census(
        peer_connections=pcs,
        tasks=sum(1 for k in kinds if k != PING_TASK),
        ping_tasks=sum(1 for k in kinds if k == PING_TASK),
        media_peers=len(media.peers) if media is not None else 0,
        media_tasks=len(media.task_names()) if hasattr(media, "task_names") else 0,
        forwarder=dict(held()) if callable(held) else {},
        rss_bytes=psutil.Process().memory_info().rss,
    )


async def settled(server: RunningServer, room_id: str, *, within_s: float = 40.0) -> Census:
    """A census once memory stops moving (the speech model loads lazily, ~300 MB, seconds
    after the first speaker): two in a row 2 s apart within 1 MiB, or after ``within_s``."""
    deadline = time.monotonic() + within_s
    last = await census(server, room_id)
    while time.monotonic() < deadline:
        await asyncio.sleep(2.0)
        now = await census(server, room_id)
        if abs(now.rss_bytes - last.rss_bytes) < 2**20:
            return now
        last = now
    return last


async def pings_wound_down(server: RunningServer, room_id: str, at_most: int) -> Census:
    """Wait (at most engine.io's ping interval and a bit) for the ping tasks to end."""
    deadline = time.monotonic() + 30
    while True:
        now = await census(server, room_id)
        if now.ping_tasks <= at_most or time.monotonic() > deadline:
            return now
        await asyncio.sleep(1.0)


async def _socketio_cycle(server: RunningServer, room_id: str, token: str, n: int) -> None:
    """A page that joins (the server builds a peer and offers) and goes before answering."""
    offered = asyncio.Event()
    sio = socketio.AsyncClient(reconnection=False)

    async def on_message(data: dict[str, Any]) -> None:
        if data.get("type") == "offer":
            offered.set()

    sio.on("message", on_message)
    try:
        await sio.connect(
            server.base_url,
            auth={"token": token, "room": room_id},
            transports=["websocket"],
            wait_timeout=10,
        )
        await sio.emit("message", {"type": "join"})
        await asyncio.wait_for(offered.wait(), 15)
        if n % 2 == 0:
            await sio.emit("message", {"type": "leave"})
            await asyncio.sleep(0.02)
    finally:
        if sio.connected:
            await sio.disconnect()


async def _rtc_cycle(server: RunningServer, room_id: str, token: str, n: int) -> None:
    """A real aiortc participant that answers, receives media, then goes."""
    person = RtcParticipant(server.base_url, room_id, token)
    try:
        await person.connect()
        await person.wait_for("welcome")
        await person.send({"type": "join"})
        await person.wait_for("joined")
        deadline = time.monotonic() + 45  # a loaded machine may need a re-offer (10 s)
        while not any(v.get("video") for v in person.frames.values()):
            assert time.monotonic() < deadline, f"cycle {n}: no media"
            await asyncio.sleep(0.05)
        if n % 2 == 0:
            await person.send({"type": "leave"})
            await asyncio.sleep(0.02)
    finally:
        await person.close()


async def one_cycle(server: RunningServer, room_id: str, token: str, *, rtc: bool, n: int) -> None:
    """One come-and-go of the participant with ``token``."""
    if rtc:
        await _rtc_cycle(server, room_id, token, n)
    else:
        await _socketio_cycle(server, room_id, token, n)


async def cycles(
    server: RunningServer, room_id: str, token: str, count: int, *, rtc: bool, first: int = 0
) -> None:
    for n in range(first, first + count):
        await one_cycle(server, room_id, token, rtc=rtc, n=n)
