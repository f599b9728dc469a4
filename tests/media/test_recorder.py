"""Consent-gated recording by remux, with real peers on loopback."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from pathlib import Path

import probe
import pytest
import sfu_loopback

from media.consent import RecordingState
from media.recorder import RecordingSession, read_manifest
from media.recording_model import track_end
from media.rtp_forwarder import RtpForwarder
from web.cli_recording import register

pytestmark = pytest.mark.timeout(120)  # several ffmpeg exports


async def _wait_publications(room: sfu_loopback.Room, count: int) -> None:
    for _ in range(100):
        if len(room.publications) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"publications: {sorted(room.publications)}")


async def _room_with_alice() -> sfu_loopback.Room:
    room = sfu_loopback.Room(RtpForwarder(keyframe_min_interval=0.2))
    await room.add_publisher("alice", sfu_loopback.SyntheticVideo(), sfu_loopback.SineAudio())
    await _wait_publications(room, 2)
    assert set(room.publications) == {"alice/video", "alice/audio"}
    return room


def _add_all(session: RecordingSession, room: sfu_loopback.Room) -> None:
    for publication in room.publications.values():
        session.add_publication(publication.id, publication.participant_id, publication.kind)


def _export(data_dir: Path, session: str, output: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["recording", "export", session, "-o", str(output), "--data-dir", str(data_dir), *extra]
    )
    result: int = args.func(args)
    return result


async def test_nothing_written_before_consent_and_decline_stops(tmp_path: Path) -> None:
    room = await _room_with_alice()
    assert isinstance(room.forwarder, RtpForwarder)
    directory = tmp_path / "recordings" / "s1"
    session = RecordingSession("room-1", "s1", directory, room.forwarder)
    try:
        _add_all(session, room)
        await session.start("counselor", ["alice", "bob"])
        await session.agree("alice")
        await asyncio.sleep(1.0)  # media flows, bob has not answered
        assert session.state is RecordingState.ASKING
        assert not directory.exists(), "files were written before everyone consented"
        await session.decline("bob")
        await asyncio.sleep(0.5)
        assert session.state is RecordingState.STOPPED
        assert not directory.exists()
    finally:
        await session.aclose()
        await room.aclose()


async def test_recording_is_remuxed_playable_and_described(tmp_path: Path) -> None:
    room = await _room_with_alice()
    assert isinstance(room.forwarder, RtpForwarder)
    directory = tmp_path / "recordings" / "s2"
    session = RecordingSession("room-1", "s2", directory, room.forwarder)
    try:
        _add_all(session, room)
        await session.start("counselor", ["alice"])
        await session.agree("alice")
        assert session.state is RecordingState.RECORDING
        await asyncio.sleep(2.5)
        await session.stop("counselor")
    finally:
        await session.aclose()
        await room.aclose()
    manifest = read_manifest(directory)
    (recording,) = manifest.recordings
    assert recording.stop_reason == "stopped by counselor"
    assert [(c.participant_id, c.answer) for c in recording.consents] == [
        ("counselor", "agreed"),
        ("alice", "agreed"),
    ]
    (segment,) = recording.segments
    assert segment.end_reason == "stopped by counselor"
    by_kind = {t.kind: t for t in segment.tracks}
    assert by_kind["video"].codec == "VP8" and by_kind["audio"].codec == "opus"
    for track in segment.tracks:
        offset = (track.started_at - recording.started_at).total_seconds()
        assert 0 <= offset < 1.5
        codecs, last, count = probe.streams_and_last_pts(directory / track.file)
        assert codecs == (["vp8"] if track.kind == "video" else ["opus"])
        assert 1.5 < last < 3.0, (track.file, last)
        assert count == track.frames
        assert probe.decodes_cleanly(directory / track.file), track.file
    assert json.loads((directory / "manifest.json").read_text())["session_id"] == "s2"

    # seoulbridge recording export s2 (the CLI entry; transcodes offline)
    output = tmp_path / "s2.webm"
    assert await asyncio.to_thread(_export, tmp_path, "s2", output) == 0
    codecs, last, _ = probe.streams_and_last_pts(output)
    assert sorted(codecs) == ["opus", "vp8"]
    assert 1.5 < last < 3.5


async def test_a_late_joiner_pauses_recording_and_is_recorded_once_they_agree(
    tmp_path: Path,
) -> None:
    room = await _room_with_alice()
    assert isinstance(room.forwarder, RtpForwarder)
    directory = tmp_path / "recordings" / "s3"
    session = RecordingSession("room-1", "s3", directory, room.forwarder)
    try:
        _add_all(session, room)
        await session.start("counselor", ["alice"])
        await session.agree("alice")
        await asyncio.sleep(1.0)
        await session.join("bob")
        assert session.state is RecordingState.PAUSED
        assert session.writer_counts() == {}, "a paused recording has no open files"
        # bob's tracks arrive while paused: nothing of anyone is written
        await room.add_publisher("bob", sfu_loopback.SyntheticVideo(160, 120))
        await _wait_publications(room, 3)
        session.add_publication("bob/video", "bob", "video")
        await asyncio.sleep(1.0)
        assert session.writer_counts() == {}, "wrote while paused"
        await session.agree("bob")
        assert session.state is RecordingState.RECORDING
        await asyncio.sleep(1.5)
        counts = session.writer_counts()
        assert counts.get("alice/audio", 0) > 20 and counts.get("bob/video", 0) > 10, counts
        await session.stop("counselor")
    finally:
        await session.aclose()
        await room.aclose()
    (recording,) = read_manifest(directory).recordings
    first, second = recording.segments
    assert first.end_reason == "paused" and second.number == first.number + 1
    assert {t.publication_id for t in first.tracks} == {"alice/audio", "alice/video"}
    assert {t.publication_id for t in second.tracks} == {"alice/audio", "alice/video", "bob/video"}
    gap = (second.started_at - first.ended_at).total_seconds() if first.ended_at else 0
    assert gap > 0.9, "the pause is a gap between segments"
    bob = next(t for t in second.tracks if t.participant_id == "bob")
    codecs, last, count = probe.streams_and_last_pts(directory / bob.file)
    assert codecs == ["vp8"] and last > 0.8 and count == bob.frames


async def test_export_of_a_paused_recording_keeps_audio_and_video_in_step(
    tmp_path: Path,
) -> None:
    room = await _room_with_alice()
    assert isinstance(room.forwarder, RtpForwarder)
    directory = tmp_path / "recordings" / "s4"
    session = RecordingSession("room-1", "s4", directory, room.forwarder)
    try:
        _add_all(session, room)
        await session.start("counselor", ["alice"])
        await session.agree("alice")
        await asyncio.sleep(2.0)
        await session.join("bob")  # paused for 2 s
        await asyncio.sleep(2.0)
        await session.agree("bob")
        await asyncio.sleep(2.0)
        await session.stop("counselor")
    finally:
        await session.aclose()
        await room.aclose()
    output = tmp_path / "s4.webm"
    assert await asyncio.to_thread(_export, tmp_path, "s4", output) == 0
    spans = probe.stream_ends(output)
    # Recorded, paused (black, silence), recorded: the export spans the recording's
    # whole wall-clock length as the manifest has it (a busy machine stretches the
    # sleeps above), with audio and video in step.
    (recording,) = read_manifest(directory).recordings
    tracks = recording.tracks()
    expected = (
        max(track_end(t) for t in tracks) - min(t.started_at for t in tracks)
    ).total_seconds()
    assert expected > 4.0, "two segments of about 2 s with a pause between them"
    assert abs(spans["video"] - expected) < 0.5, (spans, expected)
    assert abs(spans["audio"] - spans["video"]) < 0.3, spans


def _fingerprints(directory: Path) -> dict[str, tuple[int, int, str]]:
    out = {}
    for path in sorted(directory.iterdir()):
        if path.suffix == ".webm":
            stat = path.stat()
            out[path.name] = (
                stat.st_ino,
                stat.st_size,
                hashlib.sha256(path.read_bytes()).hexdigest(),
            )
    return out


async def test_a_second_recording_after_a_restart_never_overwrites_the_first(
    tmp_path: Path,
) -> None:
    room = await _room_with_alice()
    assert isinstance(room.forwarder, RtpForwarder)
    directory = tmp_path / "recordings" / "s5"
    try:
        first = RecordingSession("room-1", "s5", directory, room.forwarder)
        _add_all(first, room)
        await first.start("counselor", ["alice"])
        await first.agree("alice")
        await asyncio.sleep(1.5)
        await first.stop("counselor")
        await first.aclose()
        before = _fingerprints(directory)
        assert len(before) == 2
        # A new process (no state store): a new session object on the same directory.
        second = RecordingSession("room-1", "s5", directory, room.forwarder)
        _add_all(second, room)
        await second.start("counselor", ["alice"])
        await second.agree("alice")
        await asyncio.sleep(1.5)
        await second.stop("counselor")
        await second.aclose()
    finally:
        await room.aclose()
    after = _fingerprints(directory)
    assert {name: after.get(name) for name in before} == before, "a file was overwritten"
    assert len(after) == 4, sorted(after)
    manifest = read_manifest(directory)
    assert [r.number for r in manifest.recordings] == [1, 2]
    numbers = [s.number for r in manifest.recordings for s in r.segments]
    assert numbers == sorted(set(numbers)), numbers
    for number in (1, 2):
        output = tmp_path / f"s5-{number}.webm"
        assert await asyncio.to_thread(_export, tmp_path, "s5", output, "-r", str(number)) == 0
        spans = probe.stream_ends(output)
        assert 1.0 < spans["video"] < 2.5 and abs(spans["audio"] - spans["video"]) < 0.3, spans
    # One -o for two recordings is refused; without it each goes next to its files.
    assert await asyncio.to_thread(_export, tmp_path, "s5", tmp_path / "both.webm") == 2
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["recording", "export", "s5", "--data-dir", str(tmp_path)])
    assert await asyncio.to_thread(args.func, args) == 0
    assert (directory / "recording-1.webm").exists() and (directory / "recording-2.webm").exists()
