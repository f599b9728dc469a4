"""Recording with consent through the real server: ask, decline, agree, record, stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from media.recorder import session_directory
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
            await asyncio.sleep(3.0)
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


def _duration(path: Path) -> float:
    return rec_helpers.duration(path)
