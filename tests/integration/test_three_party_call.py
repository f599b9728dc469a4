"""Three aiortc participants through the real server: lobby, admit, media both ways, release."""

from __future__ import annotations

import asyncio
import gc
import re
import weakref
from pathlib import Path

import pytest

from signaling.protocol import Role
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server
from web.appkeys import MEDIA_ROOMS, ROOMS

pytestmark = pytest.mark.timeout(90)


async def test_lobby_admit_and_media_between_all_three(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url, empty_room_grace_s=0.5) as server:
        room_id, counselor, interpreter, resident = await server.consultation()
        people = [counselor, interpreter, resident]
        try:
            for p in people:
                await p.connect()
                await p.wait_for("welcome")
            await counselor.send({"type": "join"})
            await counselor.wait_for("joined")
            await interpreter.send({"type": "join"})
            await interpreter.wait_for("joined")

            await resident.send({"type": "join"})
            await resident.wait_for("lobby")
            knock = await counselor.wait_for("knock")
            assert resident.you is not None
            assert knock["participant"]["id"] == resident.you["id"]

            # The resident gets no media and no room events until admitted.
            await asyncio.sleep(0.5)
            assert not resident.received("offer")
            assert not resident.received("participant_joined")

            # Only a counselor may admit.
            await interpreter.send({"type": "admit", "participant_id": resident.you["id"]})
            error = await interpreter.wait_for("error")
            assert error["code"] == "not_allowed"

            await counselor.send({"type": "admit", "participant_id": resident.you["id"]})
            joined = await resident.wait_for("joined")
            assert {p["role"] for p in joined["participants"]} == {"counselor", "interpreter"}
            assert joined["room"]["state"] == "live"

            ids = {p: p.you["id"] for p in people if p.you}
            for viewer in people:
                for other in people:
                    if other is viewer:
                        continue
                    await viewer.wait_frames(ids[other], "video", 10, timeout=30)
                    await viewer.wait_frames(ids[other], "audio", 10, timeout=30)

            # Chat reaches everyone in the room.
            await interpreter.send({"type": "chat", "text": "안녕하세요"})
            for p in people:
                line = await p.wait_for("chat")
                assert line["text"] == "안녕하세요"

            # The resident leaves: the others are told and the server lets go of its peer.
            sfu_room = server.app[MEDIA_ROOMS].get(room_id)
            assert sfu_room is not None
            live = sfu_room.media
            resident_pc = weakref.ref(live.peers[ids[resident]].pc)
            await resident.send({"type": "leave"})
            left = await counselor.wait_for("participant_left", participant_id=ids[resident])
            assert left["reason"] == "left"
            await resident.close()
            assert set(live.peers) == {ids[counselor], ids[interpreter]}
            assert set(live.publications) == {
                f"{ids[counselor]}/audio",
                f"{ids[counselor]}/video",
                f"{ids[interpreter]}/audio",
                f"{ids[interpreter]}/video",
            }
            # Each remaining peer now carries exactly one other's audio and video.
            assert [
                sum(1 for s in peer.slots if s.publication_id) for peer in live.peers.values()
            ] == [2, 2]

            # Everyone leaves: the live room closes and every peer connection is released.
            pcs = [weakref.ref(p.pc) for p in live.peers.values()]
            for p in (counselor, interpreter):
                await p.close()
            for _ in range(50):
                if room_id not in server.signaling.live_rooms:
                    break
                await asyncio.sleep(0.1)
            assert room_id not in server.signaling.live_rooms
            record = await server.app[ROOMS].get(room_id)
            assert record is not None and record.state.value == "ended"
            del live, sfu_room
            # aiortc's transport tasks finish their shutdown shortly after close(); a leak
            # would keep the connections reachable for good.
            refs = [resident_pc, *pcs]
            for _ in range(50):
                gc.collect()
                if all(ref() is None for ref in refs):
                    break
                await asyncio.sleep(0.1)
            assert [ref() for ref in refs] == [None, None, None]
            lingering = [
                t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("room ")
            ]
            assert lingering == []
        finally:
            for p in people:
                await p.close()


async def test_refused_tokens_get_a_reason(data_dir: Path, redis_url: str, redis: object) -> None:
    import socketio

    async with running_server(data_dir, redis_url) as server:
        room_id, (token,) = await server.room_with((Role.RESIDENT, "Kim", "ko"))
        other_room, _ = await server.room_with()
        cases = {
            "no token": (None, room_id, "No access token"),
            "forged": (token[:-4] + "abcd", room_id, "not valid"),
            "other room": (token, other_room, "different consultation"),
        }
        for label, (tok, room, reason) in cases.items():
            client = socketio.AsyncClient(reconnection=False)
            refusals: list[object] = []
            client.on("connect_error", refusals.append)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await client.connect(
                    server.base_url,
                    auth={"token": tok, "room": room},
                    transports=["websocket"],
                    wait_timeout=5,
                )
            assert len(refusals) == 1 and reason in str(refusals[0]), (label, refusals)
            await client.disconnect()


async def test_health_and_metrics(data_dir: Path, redis_url: str, redis: object) -> None:
    import aiohttp

    async with running_server(data_dir, redis_url, metrics_token="m" * 32) as server:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer " + "m" * 32}) as http:
            async with http.get(server.base_url + "/healthz") as resp:
                assert resp.status == 200
                assert (await resp.json())["status"] == "ok"
            async with http.get(server.base_url + "/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
            assert "seoulbridge_live_rooms" in text and "seoulbridge_peer_connections" in text


def _without_video(answer: str) -> str:
    """An answer from a browser that cannot decode the room's video codec: m=video rejected."""
    return re.sub(r"^m=video \d+ ", "m=video 0 ", answer, flags=re.MULTILINE)


async def test_a_browser_without_the_room_codec_is_told_why(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        room_id, (token,) = await server.room_with((Role.COUNSELOR, "Kim", "ko"))
        counselor = RtcParticipant(server.base_url, room_id, token, answer_filter=_without_video)
        try:
            await counselor.connect()
            await counselor.send({"type": "join"})
            error = await counselor.wait_for("error")
            assert error["code"] == "codec_unsupported"
            assert "VP8" in error["message"] and "Chrome, Firefox" in error["message"]
        finally:
            await counselor.close()
