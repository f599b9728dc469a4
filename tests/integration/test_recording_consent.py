"""Recording with consent through the real server: ask, decline, agree, record, stop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from media.errors import MediaError
from media.recorder import session_directory
from signaling.protocol import Role
from tests.integration import rec_helpers
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server

pytestmark = pytest.mark.timeout(90)


async def _indicator(p: RtcParticipant, state: str, after: int) -> dict[str, object]:
    for _ in range(100):
        found = [m for m in p.received("record_indicator")[after:] if m["state"] == state]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {state} indicator: {p.received('record_indicator')}")


async def test_nothing_is_written_until_everyone_agrees(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        room_id, counselor, interpreter, resident = await server.consultation()
        people = [counselor, interpreter, resident]
        directory = session_directory(data_dir, room_id)
        try:
            for p in people:
                await p.connect()
                await p.wait_for("welcome")
                await p.send({"type": "join"})
            await counselor.wait_for("joined")
            await resident.wait_for("lobby")
            assert resident.you is not None
            await counselor.send({"type": "admit", "participant_id": resident.you["id"]})
            await resident.wait_for("joined")
            ids = {p: p.you["id"] for p in people if p.you}
            for other in (counselor, interpreter):
                await resident.wait_frames(ids[other], "video", 5, timeout=30)

            # Only the counselor may ask.
            await interpreter.send({"type": "record_start"})
            error = await interpreter.wait_for("error")
            assert error["code"] == "not_allowed" and "counselor" in error["message"]

            # Asked: everyone sees "asking", the others are asked; nothing is written.
            await counselor.send({"type": "record_start"})
            for p in people:
                shown = await _indicator(p, "asking", 0)
                assert set(shown["pending"]) == {ids[interpreter], ids[resident]}  # type: ignore[arg-type]
            await interpreter.wait_for("record_consent_request")
            await resident.wait_for("record_consent_request")
            assert not counselor.received("record_consent_request")
            await interpreter.send({"type": "record_consent"})
            await asyncio.sleep(1.0)
            assert not directory.exists()

            # A decline stops it, for everyone.
            await resident.send({"type": "record_decline"})
            stopped = await _indicator(counselor, "stopped", 0)
            assert "declined" in str(stopped["reason"])
            await asyncio.sleep(0.5)
            assert not directory.exists()

            # Asked again and everyone agrees: recording runs, then stops.
            seen = len(counselor.received("record_indicator"))
            await counselor.send({"type": "record_start"})
            await _indicator(resident, "asking", 0)
            await interpreter.send({"type": "record_consent"})
            await resident.send({"type": "record_consent"})
            for p in people:
                await _indicator(p, "recording", 0)
            # Record until every track holds more than a second (video starts at the
            # publisher's next keyframe, which a busy machine can delay), then stop.
            await _until_each_track_longer_than(directory, 1.0, tracks=6)
            await counselor.send({"type": "record_stop"})
            await _indicator(counselor, "stopped", seen)
        finally:
            for p in people:
                await p.close()

    manifest = rec_helpers.manifest(directory)
    (recording,) = manifest["recordings"]  # the declined request recorded nothing
    recorded = {t["participant_id"] for s in recording["segments"] for t in s["tracks"]}
    assert recorded == set(ids.values())
    assert {c["participant_id"] for c in recording["consents"]} == set(ids.values())
    assert all(c["answer"] == "agreed" for c in recording["consents"])
    media_files = [f for f in directory.iterdir() if f.suffix in (".webm", ".mkv")]
    assert len(media_files) == 6
    for path in media_files:
        assert _duration(path) > 1.0, path.name


async def _until_each_track_longer_than(directory: Path, seconds: float, *, tracks: int) -> None:
    """Poll the manifest (rewritten about once a second while recording) for the tracks."""
    deadline = time.monotonic() + 60
    while True:
        lengths = await asyncio.to_thread(_track_lengths, directory)
        if len(lengths) == tracks and min(lengths.values()) > seconds:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"tracks after 60 s of recording: {lengths}")
        await asyncio.sleep(0.5)


def _track_lengths(directory: Path) -> dict[str, float]:
    try:
        manifest = rec_helpers.manifest(directory)  # decrypted: the server seals it
    except (OSError, ValueError, AssertionError, MediaError):
        return {}
    if not manifest.get("recordings"):
        return {}
    return {
        t["file"]: float(t["duration_s"])
        for s in manifest["recordings"][-1]["segments"]
        for t in s["tracks"]
    }


def _duration(path: Path) -> float:
    return rec_helpers.duration(path)


async def test_who_stopped_a_recording_is_still_said_to_a_page_that_comes_back(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    """A reconnecting page (a new socket, the same token) is told why the recording stopped,
    and its join does not blank the reason on the pages already in the room."""
    async with running_server(data_dir, redis_url) as server:
        room_id, (t_cou, t_res) = await server.room_with(
            (Role.COUNSELOR, "Counselor Kim", "ko"), (Role.RESIDENT, "Kim Yui", "ja")
        )
        counselor = RtcParticipant(server.base_url, room_id, t_cou, publish=False)
        resident = RtcParticipant(server.base_url, room_id, t_res, publish=False)
        back: RtcParticipant | None = None
        try:
            ids = await rec_helpers.enter(counselor, resident)
            await counselor.send({"type": "record_start"})
            await resident.wait_for("record_consent_request")
            await resident.send({"type": "record_consent"})
            await rec_helpers.indicator(counselor, "recording")
            await counselor.send({"type": "record_stop"})
            stopped = f"stopped by {ids[counselor]}"
            assert (await rec_helpers.indicator(resident, "stopped"))["reason"] == stopped

            await resident.close()
            seen = len(counselor.received("record_indicator"))
            back = RtcParticipant(server.base_url, room_id, t_res, publish=False)
            await back.connect()
            await back.wait_for("welcome")
            await back.send({"type": "join"})
            await back.wait_for("joined")  # still admitted: no lobby on the way back
            shown = await rec_helpers.indicator(back, "stopped")
            assert shown["reason"] == stopped, back.received("record_indicator")
            # The join's broadcast reaches the counselor too: it must say the same.
            await rec_helpers.indicator(counselor, "stopped", after=seen)
            after = counselor.received("record_indicator")[seen:]
            assert after and all(m["reason"] == stopped for m in after), after
        finally:
            for p in (counselor, resident, back):
                if p is not None:
                    await p._leave()
