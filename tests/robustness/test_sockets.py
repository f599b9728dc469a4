"""Sockets: one connection per participant wins, foreign origins are refused, every
malformed message gets ``error``, and a flood of failures logs a line, not a traceback each."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import socketio

from signaling.protocol import Role
from tests.support.server import RunningServer, running_server
from web.appkeys import PLACEMENT

pytestmark = pytest.mark.timeout(90)


class Client:
    """A bare python-socketio client that records messages and the refusal it got."""

    def __init__(self, server: RunningServer, room_id: str, token: str) -> None:
        self.server, self.room_id, self.token = server, room_id, token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.messages: list[dict[str, Any]] = []
        self.refusal: Any = None
        self.sio.on("message", self._message)
        self.sio.on("connect_error", self._refused)

    async def _message(self, data: dict[str, Any]) -> None:
        self.messages.append(data)

    async def _refused(self, data: Any) -> None:
        self.refusal = data

    async def connect(self, **headers: str) -> bool:
        try:
            await self.sio.connect(
                self.server.base_url,
                auth={"token": self.token, "room": self.room_id},
                transports=["websocket"],
                headers=headers,
                wait_timeout=20,
            )
        except socketio.exceptions.ConnectionError as exc:
            self.refusal = self.refusal or str(exc)
            return False
        return True

    def errors(self) -> list[str]:
        return [m["code"] for m in self.messages if m["type"] == "error"]

    async def wait(self, predicate: Any, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"messages: {self.messages}, refusal: {self.refusal}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


def _reason(client: Client) -> str | None:
    """The code a losing connection was told: in its refusal, or in an ``error`` message."""
    if isinstance(client.refusal, dict):
        return str(client.refusal.get("code"))
    codes = client.errors()
    return codes[-1] if codes else None


async def test_50_concurrent_connects_with_one_link_leave_exactly_one(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        room_id, (token,) = await server.room_with((Role.COUNSELOR, "Kim", "ko"))
        clients = [Client(server, room_id, token) for _ in range(50)]
        try:
            await asyncio.gather(*(c.connect() for c in clients))
            # Losers are closed by the server: wait until at most one is left connected.
            for _ in range(200):
                if sum(c.sio.connected for c in clients) <= 1:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            winners = [c for c in clients if c.sio.connected]
            assert len(winners) == 1, f"{len(winners)} connections still open"
            losers = [c for c in clients if c is not winners[0]]
            reasons = {_reason(c) for c in losers}
            assert reasons == {"replaced"}, reasons
            assert len(server.signaling.messenger.sids()) == 1
            winner = winners[0]
            await winner.sio.emit("message", {"type": "join"})
            await winner.wait(lambda: any(m["type"] == "joined" for m in winner.messages))
        finally:
            await asyncio.gather(*(c.close() for c in clients))


async def test_only_the_public_origin_and_configured_ones_may_connect(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(
        data_dir,
        redis_url,
        allowed_origins="https://node2.example.org, https://node3.example.org:8443",
    ) as server:
        room_id, tokens = await server.room_with(
            *[(Role.COUNSELOR, f"Kim {i}", "ko") for i in range(5)]
        )
        cases = [
            ("https://evil.example", False),
            ("null", False),
            (server.base_url, True),
            ("https://node2.example.org", True),
            ("https://node3.example.org:8443", True),
        ]
        for (origin, allowed), token in zip(cases, tokens, strict=True):
            client = Client(server, room_id, token)
            try:
                assert await client.connect(Origin=origin) is allowed, origin
            finally:
                await client.close()


async def _failing_broadcast(*args: object, **kwargs: object) -> None:
    raise RuntimeError("forced failure")


async def test_every_malformed_message_gets_an_error_and_floods_log_once(
    data_dir: Path,
    redis_url: str,
    redis: object,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    async with running_server(data_dir, redis_url) as server:
        room_id, (token, other) = await server.room_with(
            (Role.COUNSELOR, "Kim", "ko"), (Role.INTERPRETER, "Sato", "ja")
        )
        client = Client(server, room_id, token)
        try:
            assert await client.connect()
            await client.sio.emit("message", {"type": "join"})
            await client.wait(lambda: any(m["type"] == "joined" for m in client.messages))
            client.messages.clear()
            bad: list[Any] = [
                None,
                "join",
                [1, 2],
                {"type": "nope"},
                {"type": "chat"},
                {"type": "chat", "text": "x" * 3000},
                {"type": "mute", "audio_muted": "loud", "video_muted": False},
                {"type": "ice_candidate", "candidate": "candidate:1 1 udp", "sdp_mid": "0"},
                {"type": "ice_candidate", "candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host"},
                {"type": "ice_candidate", "candidate": "x" * 1999, "sdp_mline_index": 0},
                {"type": "answer", "sdp": "v=0"},
                {"type": "admit", "participant_id": "nobody"},
            ]
            for payload in bad:
                await client.sio.emit("message", payload)
            await client.sio.emit("message")  # no payload at all
            await client.sio.emit("message", ({"type": "join"}, "extra"))  # extra arguments
            expected = len(bad) + 2
            await client.wait(lambda: len(client.errors()) >= expected)
            assert all(client.errors()), client.messages

            # A failure nobody foresaw, 100 times: each gets ``error``, the log one traceback.
            monkeypatch.setattr(server.signaling.messenger, "broadcast", _failing_broadcast)
            caplog.clear()
            for _ in range(100):
                await client.sio.emit("message", {"type": "chat", "text": "hello"})
            await client.wait(lambda: len(client.errors()) >= expected + 100, timeout=30)
            assert client.errors()[-100:] == ["server_error"] * 100
            tracebacks = [r for r in caplog.records if r.exc_info]
            assert 1 <= len(tracebacks) <= 2, f"{len(tracebacks)} tracebacks for 100 failures"
        finally:
            await client.close()

        # A replaced connection that keeps talking is told so and closed, not ignored.
        first, second = Client(server, room_id, other), Client(server, room_id, other)
        try:
            assert await first.connect()
            assert await second.connect()
            await first.wait(lambda: not first.sio.connected or "replaced" in first.errors())
        finally:
            await first.close()
            await second.close()


async def _until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


async def test_a_reconnect_queued_behind_the_last_disconnect_gets_a_seat_in_a_live_room(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    """A page leaves its socket and connects again while the server is busy (measured: a
    5 s stall as a recording write failed). The old socket's disconnect empties the room,
    which closes; the new connection, which had found the room open, must not take a seat
    in the closed room (its ``join`` was answered ``not_in_room`` and the page gave up)."""
    async with running_server(data_dir, redis_url) as server:
        room_id, (token,) = await server.room_with((Role.COUNSELOR, "Kim", "ko"))
        messenger = server.signaling.messenger
        first, second = Client(server, room_id, token), Client(server, room_id, token)
        try:
            assert await first.connect()
            (old_sid,) = messenger.sids()
            room = server.signaling.live_rooms[room_id]
            async with room.lock:  # the server is busy in the room
                await first.sio.disconnect()
                await _until(lambda: messenger.session(old_sid) is None, "the disconnect")
                connecting = asyncio.create_task(second.connect())
                await _until(lambda: bool(messenger._connecting), "the new connect")
                await asyncio.sleep(0.5)  # it found the room open and waits for its lock
            assert await connecting, second.refusal
            await second.sio.emit("message", {"type": "join"})
            await second.wait(
                lambda: any(m["type"] in ("joined", "error") for m in second.messages)
            )
            assert second.errors() == [], second.messages
            live = server.signaling.live_rooms[room_id]
            assert list(live.participants) == [second.messages[0]["you"]["id"]]
        finally:
            await first.close()
            await second.close()


async def test_a_room_opened_again_while_it_closes_keeps_its_claim(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    """The last person leaves and comes straight back while the room's close is still
    letting go of its media: the close must not release the claim the reopened room holds
    (the join step would then place the consultation on another node, splitting it)."""
    async with running_server(data_dir, redis_url) as server:
        room_id, (token,) = await server.room_with((Role.COUNSELOR, "Kim", "ko"))
        placement = server.app[PLACEMENT]
        first, second = Client(server, room_id, token), Client(server, room_id, token)
        try:
            assert await first.connect()
            room = server.signaling.live_rooms[room_id]
            media_closed = room.media.aclose
            released = asyncio.Event()

            async def slow_media_close() -> None:
                await asyncio.sleep(0.5)
                await media_closed()
                released.set()

            room.media.aclose = slow_media_close  # type: ignore[method-assign]
            await first.close()
            await _until(lambda: room_id not in server.signaling.live_rooms, "the close")
            assert await second.connect(), second.refusal
            await asyncio.wait_for(released.wait(), 5.0)
            await asyncio.sleep(0.2)  # the old close's last step, the release, is done
            holder = await placement.holder(room_id)
            assert holder is not None and holder.claim.node_id == placement.node_id, holder
            assert room_id in placement.claims
            await second.sio.emit("message", {"type": "join"})
            await second.wait(
                lambda: any(m["type"] in ("joined", "error") for m in second.messages)
            )
            assert second.errors() == [], second.messages
        finally:
            await first.close()
            await second.close()
