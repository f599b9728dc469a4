"""A recording survives a server restart: state and consents in Redis, new segments."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from media.recorder import session_directory
from tests.integration.rec_helpers import (
    enter,
    indicator,
    manifest,
    media_files,
    stream_durations,
)
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server
from web.cli_recording import register
from web.recording_store import recording_key

# Two servers (or several recordings) and an ffmpeg export: slow on a busy 2-core machine.
pytestmark = pytest.mark.timeout(300)


def _fingerprint(path: Path) -> tuple[int, int, str]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_recording_goes_on_after_a_restart_in_new_files(
    data_dir: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    directory: Path
    first: tuple[RtcParticipant, ...] = ()
    try:
        async with running_server(data_dir, redis_url) as server:
            room_id, counselor, _interpreter, resident = await server.consultation()
            first = (counselor, resident)
            directory = session_directory(data_dir, room_id)
            ids = await enter(counselor, resident)
            await resident.wait_frames(ids[counselor], "video", 5, timeout=30)
            await counselor.send({"type": "record_start"})
            await resident.wait_for("record_consent_request")
            await resident.send({"type": "record_consent"})
            for p in first:
                await indicator(p, "recording")
            await asyncio.sleep(3.0)
        # The server stops with everyone connected: told to come back, the room let go.
        for p in first:
            assert p.received("server_restarting")
    finally:
        for p in first:
            await p.close()
    tokens = (counselor.token, resident.token)
    before = {f.name: _fingerprint(f) for f in media_files(directory)}
    assert len(before) == 4, sorted(before)
    # The recording state outlives the process, in Redis.
    state = json.loads(await redis.get(recording_key(room_id)) or "{}")
    assert state["state"] == "recording" and state["recording"] == 1
    assert state["answers"] == {ids[counselor]: "agreed", ids[resident]: "agreed"}
    assert [c["participant_id"] for c in state["consents"]] == [ids[counselor], ids[resident]]

    async with running_server(data_dir, redis_url) as server:
        again = [RtcParticipant(server.base_url, room_id, token) for token in tokens]
        counselor2, resident2 = again
        try:
            for p in again:
                await p.connect()
                await p.wait_for("welcome")
                await p.send({"type": "join"})
                await p.wait_for("joined")  # still admitted: no lobby
                # Everyone who comes back is shown the recording that goes on, and not asked.
                shown = await indicator(p, "recording")
                assert shown["pending"] == []
            await resident2.wait_frames(ids[counselor], "video", 5, timeout=30)
            await asyncio.sleep(3.0)
            assert not resident2.received("record_consent_request")
            seen = len(counselor2.received("record_indicator"))
            await counselor2.send({"type": "record_stop"})
            await indicator(counselor2, "stopped", seen)
        finally:
            for p in again:
                await p.close()

    # The first run's files are untouched; the second run wrote new ones.
    for name, fingerprint in before.items():
        assert _fingerprint(directory / name) == fingerprint, f"{name} was rewritten"
    after = media_files(directory)
    assert len(after) == 8, [f.name for f in after]

    data = manifest(directory)
    (recording,) = data["recordings"]
    segments = recording["segments"]
    assert len(segments) == 2 and segments[0]["number"] < segments[1]["number"]
    for segment in segments:
        assert {t["participant_id"] for t in segment["tracks"]} == set(ids.values())
        assert all(t["frames"] > 0 for t in segment["tracks"]), segment
    assert recording["stop_reason"] == f"stopped by {ids[counselor]}"
    assert [c["participant_id"] for c in recording["consents"]] == [ids[counselor], ids[resident]]

    # One export covers both runs, the restart's gap included.
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    output = data_dir / "restarted.webm"
    args = parser.parse_args(
        ["recording", "export", room_id, "-o", str(output), "--data-dir", str(data_dir)]
    )
    assert await asyncio.to_thread(args.func, args) == 0
    spans = await asyncio.to_thread(stream_durations, output)
    assert spans["video"] > 5.5 and abs(spans["audio"] - spans["video"]) < 0.5, spans
