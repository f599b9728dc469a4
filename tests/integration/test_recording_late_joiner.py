"""A late joiner is recorded from their consent on; every request keeps its own consent log;
a room recorded twice exports each recording on its own, one tile per person, A/V in step."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime
from pathlib import Path

import pytest

from media.errors import MediaError
from media.recorder import session_directory
from tests.integration.rec_helpers import (
    enter,
    indicator,
    manifest,
    media_files,
    probe,
    stream_durations,
)
from tests.support.server import running_server
from web.cli_recording import register

# Two servers (or several recordings) and an ffmpeg export: slow on a busy 2-core machine.
pytestmark = pytest.mark.timeout(300)


def _export(data_dir: Path, room_id: str, number: int, output: Path) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "recording",
            "export",
            room_id,
            "--recording",
            str(number),
            "-o",
            str(output),
            "--data-dir",
            str(data_dir),
        ]
    )
    result: int = args.func(args)
    return result


#: Seconds each of the late joiner's tracks records in each recording before it stops.
LATE_S = 2.2


async def _until_their_tracks_hold(directory: Path, participant_id: str, seconds: float) -> None:
    """Poll the manifest (rewritten about once a second while recording) until every track
    of ``participant_id`` in the current recording is longer than ``seconds``."""
    deadline = time.monotonic() + 60
    while True:
        lengths = await asyncio.to_thread(_their_lengths, directory, participant_id)
        if len(lengths) == 2 and min(lengths.values()) > seconds:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{participant_id}'s tracks after 60 s: {lengths}")
        await asyncio.sleep(0.5)


def _their_lengths(directory: Path, participant_id: str) -> dict[str, float]:
    try:
        data = manifest(directory)  # decrypted: the server seals it
    except (OSError, ValueError, AssertionError, MediaError):
        return {}
    if not data.get("recordings"):
        return {}
    segments = data["recordings"][-1]["segments"]
    return {
        t["file"]: float(t["duration_s"])
        for seg in segments
        for t in seg["tracks"]
        if t["participant_id"] == participant_id
    }


async def test_a_late_joiner_is_recorded_and_each_request_has_its_consent_log(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        room_id, counselor, interpreter, resident = await server.consultation()
        directory = session_directory(data_dir, room_id)
        try:
            ids = await enter(counselor, resident)
            await resident.wait_frames(ids[counselor], "video", 5, timeout=30)

            # Recording 1: the counselor and the resident agree.
            await counselor.send({"type": "record_start"})
            await resident.wait_for("record_consent_request")
            await resident.send({"type": "record_consent"})
            await indicator(counselor, "recording")
            await asyncio.sleep(2.0)

            # The interpreter joins late: paused, asked, agrees, and is recorded from then on.
            seen = len(counselor.received("record_indicator"))
            ids |= await enter(interpreter)
            await interpreter.wait_for("record_consent_request")
            shown = await indicator(interpreter, "paused")
            assert shown["pending"] == [ids[interpreter]]
            await indicator(counselor, "paused", seen)
            await asyncio.sleep(1.0)  # the interpreter's media is up by now; none is written
            await interpreter.send({"type": "record_consent"})
            await indicator(counselor, "recording", seen)
            await indicator(interpreter, "recording")
            # Record until both of the late joiner's tracks hold a while (a busy machine
            # can delay their first packets), not for a fixed time.
            await _until_their_tracks_hold(directory, ids[interpreter], LATE_S)
            seen = len(counselor.received("record_indicator"))
            await counselor.send({"type": "record_stop"})
            await indicator(counselor, "stopped", seen)

            # Recording 2: asked again, everyone agrees (each page's own count: they
            # entered at different times, so their lists differ).
            counts = {
                p: len(p.received("record_indicator")) for p in (counselor, interpreter, resident)
            }
            await counselor.send({"type": "record_start"})
            for p in (resident, interpreter):
                await indicator(p, "asking", counts[p])
                await p.send({"type": "record_consent"})
            await indicator(counselor, "recording", counts[counselor])
            await _until_their_tracks_hold(directory, ids[interpreter], LATE_S)
            seen = len(counselor.received("record_indicator"))
            await counselor.send({"type": "record_stop"})
            await indicator(counselor, "stopped", seen)
        finally:
            for p in (counselor, interpreter, resident):
                await p.close()

    late = media_files(directory, ids[interpreter])
    assert late, f"the late joiner was never recorded: {[f.name for f in media_files(directory)]}"
    late_seconds = {
        kind: sum(
            float(probe(f)["format"]["duration"]) for f in late if f"-{kind}" in f.name.lower()
        )
        for kind in ("audio", "video")
    }
    # more than LATE_S after consent in recording 1 and again in recording 2
    assert late_seconds["audio"] > 4.0 and late_seconds["video"] > 4.0, late_seconds

    data = manifest(directory)
    recordings = data["recordings"]
    assert [r["number"] for r in recordings] == [1, 2]
    first, second = recordings
    log1 = [(c["participant_id"], c["answer"]) for c in first["consents"]]
    assert log1 == [
        (ids[counselor], "agreed"),
        (ids[resident], "agreed"),
        (ids[interpreter], "agreed"),
    ], log1
    times = [datetime.fromisoformat(c["at"]) for c in first["consents"]]
    assert times == sorted(times) and (times[2] - times[1]).total_seconds() > 2.0
    assert {c["participant_id"] for c in second["consents"]} == set(ids.values())
    assert first["people"][ids[resident]]["name"] == "Kim Yui"
    # Recording 1 ran, paused for the late joiner, ran again: two segments; recording 2: one.
    assert [len(r["segments"]) for r in recordings] == [2, 1]
    late_tracks = [t for s in first["segments"] for t in s["tracks"]]
    assert {t["participant_id"] for t in late_tracks} == set(ids.values())
    assert all(t["frames"] > 0 for s in first["segments"] for t in s["tracks"])

    # Each recording exports on its own: one tile per person, audio as long as video.
    for number, length in ((1, 6.5), (2, 3.0)):
        output = data_dir / f"export-{number}.webm"
        assert await asyncio.to_thread(_export, data_dir, room_id, number, output) == 0
        video = next(s for s in probe(output)["streams"] if s["codec_type"] == "video")
        assert (video["width"], video["height"]) == (1280, 960), video  # three tiles in a 2x2 grid
        spans = await asyncio.to_thread(stream_durations, output)
        assert abs(spans["audio"] - spans["video"]) < 0.5, (number, spans)
        assert spans["video"] > length - 1.0, (number, spans)
