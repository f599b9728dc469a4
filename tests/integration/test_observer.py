"""An observer through the real server, with aiortc peers on loopback.

The observer joins through the lobby, receives everyone's audio and video, is
listed to everyone with the role ``observer``, and is asked for recording consent
like anyone. And they publish nothing: their offer names nothing to publish, and an
answer that claims to send anyway (``a=sendonly`` written into it) changes nothing
on the server and reaches nobody.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from signaling.protocol import Role
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server
from web.appkeys import MEDIA_ROOMS

pytestmark = pytest.mark.timeout(120)


def _claims_to_send(sdp: str) -> str:
    """What a hostile observer would answer: every inactive m-line 'sendonly'."""
    return sdp.replace("a=inactive", "a=sendonly")


async def _indicator(p: RtcParticipant, state: str) -> dict[str, Any]:
    for _ in range(200):
        found = [m for m in p.received("record_indicator") if m["state"] == state]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {state} indicator: {p.received('record_indicator')}")


async def test_an_observer_receives_is_seen_is_asked_and_publishes_nothing(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        room_id, (t_cou, t_res, t_obs) = await server.room_with(
            (Role.COUNSELOR, "Counselor Kim", "ko"),
            (Role.RESIDENT, "Kim Yui", "ja"),
            (Role.OBSERVER, "Embassy Lee", "ko"),
        )
        counselor = RtcParticipant(server.base_url, room_id, t_cou)
        resident = RtcParticipant(server.base_url, room_id, t_res)
        observer = RtcParticipant(server.base_url, room_id, t_obs, answer_filter=_claims_to_send)
        people = [counselor, resident, observer]
        try:
            for p in people:
                await p.connect()
                await p.wait_for("welcome")
            await counselor.send({"type": "join"})
            await counselor.wait_for("joined")

            # Through the lobby, like a resident; the counselor is told who knocks.
            await observer.send({"type": "join"})
            await observer.wait_for("lobby")
            knock = await counselor.wait_for("knock")
            assert knock["participant"]["role"] == "observer"
            assert observer.you is not None
            await counselor.send({"type": "admit", "participant_id": observer.you["id"]})
            joined = await observer.wait_for("joined")
            assert joined["you"]["role"] == "observer"
            await resident.send({"type": "join"})
            await resident.wait_for("lobby")
            assert resident.you is not None
            await counselor.send({"type": "admit", "participant_id": resident.you["id"]})
            resident_joined = await resident.wait_for("joined")
            ids = {id(p): p.you["id"] for p in people if p.you}
            obs_id, cou_id, res_id = ids[id(observer)], ids[id(counselor)], ids[id(resident)]

            # Nobody watches unseen: everyone lists the observer, with the role.
            listed = {p["id"]: p["role"] for p in resident_joined["participants"]}
            assert listed[obs_id] == "observer"
            seen = await counselor.wait_for("participant_joined", participant=joined["you"])
            assert seen["participant"]["role"] == "observer"

            # The observer receives everyone's audio and video ...
            for other in (cou_id, res_id):
                for kind in ("audio", "video"):
                    await observer.wait_frames(other, kind, 5, timeout=45)
            # ... and is offered nothing to publish, whatever it answers.
            offers = observer.received("offer")
            assert offers and all(o["publish"] == {} for o in offers)
            assert any("a=inactive" in o["sdp"] for o in offers)
            await asyncio.sleep(2.0)
            media = server.app[MEDIA_ROOMS].get(room_id)
            assert media is not None
            published = {p.participant_id for p in media.publications()}
            assert published == {cou_id, res_id}
            for p in (counselor, resident):
                assert p.frames[obs_id]["audio"] == 0 and p.frames[obs_id]["video"] == 0
                for offer in p.received("offer"):
                    assert all(t["participant_id"] != obs_id for t in offer["tracks"])

            # Recording consent covers the observer like everyone else.
            await counselor.send({"type": "record_start"})
            asking = await _indicator(counselor, "asking")
            assert set(asking["pending"]) == {obs_id, res_id}
            await observer.wait_for("record_consent_request")
            await resident.send({"type": "record_consent"})
            await asyncio.sleep(1.0)
            assert not counselor.received("record_indicator")[-1]["state"] == "recording"
            await observer.send({"type": "record_consent"})
            await _indicator(counselor, "recording")
            await counselor.send({"type": "record_stop"})
            await _indicator(counselor, "stopped")

            # Captions: the observer reads them, but is no speaker.
            status = next(m for m in reversed(observer.messages) if m["type"] == "caption_status")
            assert obs_id not in {s["participant_id"] for s in status["speakers"]}
        finally:
            for p in people:
                await p.close()
