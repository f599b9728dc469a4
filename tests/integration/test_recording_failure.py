"""A recording whose disk writes fail stops, and every page is told; the state lives in Redis."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from media.recorder import FAILED_REASON, session_directory
from signaling.protocol import Role
from tests.integration.rec_helpers import enter, indicator, manifest
from tests.support.failing_storage import FailingStorage
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server
from web.appkeys import RECORDING
from web.recording_store import recording_key

pytestmark = pytest.mark.timeout(90)


async def test_a_failed_disk_write_stops_the_recording_on_every_page(
    data_dir: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    async with running_server(data_dir, redis_url) as server:
        # The disk fills up once a video file holds 8 kB (root ignores permissions).
        server.app[RECORDING].storage = FailingStorage(
            track_bytes=8_000, track_kind="video", keys=server.app[RECORDING].storage.keys
        )
        room_id, counselor, interpreter, resident = await server.consultation()
        people: tuple[RtcParticipant, ...] = (counselor, interpreter, resident)
        try:
            ids = await enter(counselor, interpreter, resident)
            await resident.wait_frames(ids[counselor], "video", 5, timeout=30)
            await counselor.send({"type": "record_start"})
            for p in (interpreter, resident):
                await p.wait_for("record_consent_request")
                await p.send({"type": "record_consent"})
            for p in people:
                await indicator(p, "recording")

            # Every page: stopped, with the reason and the code the page shows words for.
            for p in people:
                stopped = await indicator(p, "stopped")
                assert stopped["reason"] == FAILED_REASON
                assert stopped["error_code"] == "media_unavailable"
            # Staff who can act on it get the error too; the resident is not alarmed twice.
            error = await counselor.wait_for("error", code="media_unavailable")
            assert "could not write" in error["message"]
            await asyncio.sleep(0.5)
            assert not [e for e in resident.received("error")]
            state = json.loads(await redis.get(recording_key(room_id)) or "{}")
            assert state["state"] == "stopped" and state["stop_reason"] == FAILED_REASON
            assert [c["participant_id"] for c in state["consents"]] == [
                ids[counselor],
                ids[interpreter],
                ids[resident],
            ]

            # A page that connects again (a new network, or a page that missed the
            # message while it reconnected) is told again: the counselor why, everyone
            # that the recording stopped.
            again = {
                who: RtcParticipant(who.base_url, room_id, who.token, publish=False)
                for who in (counselor, resident)
            }
            people = (*people, *again.values())
            await enter(again[counselor], again[resident])
            error = await again[counselor].wait_for("error", code="media_unavailable")
            assert "could not write" in error["message"]
            for p in again.values():
                stopped = await indicator(p, "stopped")
                assert stopped["error_code"] == "media_unavailable"
            await asyncio.sleep(0.5)
            assert not again[resident].received("error")
            counselor = again[counselor]

            # The consultation ends: the live recording state goes with it.
            await counselor.send({"type": "end"})
            await again[resident].wait_for("ended")
            for _ in range(100):
                if await redis.get(recording_key(room_id)) is None:
                    break
                await asyncio.sleep(0.05)
            assert await redis.get(recording_key(room_id)) is None
        finally:
            for p in people:
                await p.close()

    (recording,) = manifest(session_directory(data_dir, room_id))["recordings"]
    assert recording["stop_reason"] == FAILED_REASON
    failed = [t for s in recording["segments"] for t in s["tracks"] if t["error"]]
    assert failed and all(t["kind"] == "video" for t in failed)


async def test_after_a_restart_staff_are_still_told_that_the_recording_failed(
    data_dir: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """The room closes on its node after the failure (a restart; or everyone's pages left
    at once when the server stalled): whoever comes back, to the next process, sees the
    recording stopped, and the counselor is told why. A page that comes back to a room
    with no recording at all is told so too, not left showing what it last saw."""
    async with running_server(data_dir, redis_url) as server:
        server.app[RECORDING].storage = FailingStorage(
            track_bytes=8_000, track_kind="video", keys=server.app[RECORDING].storage.keys
        )
        room_id, counselor, interpreter, resident = await server.consultation()
        people: tuple[RtcParticipant, ...] = (counselor, interpreter, resident)
        try:
            ids = await enter(counselor, interpreter, resident)
            await resident.wait_frames(ids[counselor], "video", 5, timeout=30)
            await counselor.send({"type": "record_start"})
            for p in (interpreter, resident):
                await p.wait_for("record_consent_request")
                await p.send({"type": "record_consent"})
            for p in people:
                await indicator(p, "stopped")
            await counselor.wait_for("error", code="media_unavailable")
        finally:
            for p in people:
                await p.close()
        other_room, (token,) = await server.room_with((Role.COUNSELOR, "Kim", "ko"))

    async with running_server(data_dir, redis_url) as server:
        again = {
            who: RtcParticipant(server.base_url, room_id, who.token, publish=False)
            for who in (counselor, resident)
        }
        fresh = RtcParticipant(server.base_url, other_room, token, publish=False)
        try:
            await enter(again[counselor], again[resident])
            error = await again[counselor].wait_for("error", code="media_unavailable")
            assert "could not write" in error["message"]
            for p in again.values():
                stopped = await indicator(p, "stopped")
                assert stopped["error_code"] == "media_unavailable"
            await asyncio.sleep(0.5)
            assert not again[resident].received("error")
            # A new request that is declined stopped for that, not for the old failure.
            seen = len(again[resident].received("record_indicator"))
            await again[counselor].send({"type": "record_start"})
            await again[resident].wait_for("record_consent_request")
            await again[resident].send({"type": "record_decline"})
            declined = await indicator(again[resident], "stopped", after=seen)
            assert declined["error_code"] is None, declined
            assert declined["reason"].startswith("declined"), declined
            await enter(fresh)
            await indicator(fresh, "idle")
        finally:
            for p in (*again.values(), fresh):
                await p.close()
