"""Consent-gated recording by remux, with real peers on loopback."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import probe
import pytest
import sfu_loopback

from media.consent import RecordingState
from media.recorder import RecordingSession, read_manifest
from media.rtp_forwarder import RtpForwarder
from web.cli_recording import register

pytestmark = pytest.mark.timeout(40)


async def _room_with_alice() -> sfu_loopback.Room:
    room = sfu_loopback.Room(RtpForwarder(keyframe_min_interval=0.2))
    await room.add_publisher("alice", sfu_loopback.SyntheticVideo(), sfu_loopback.SineAudio())
    for _ in range(50):
        if len(room.publications) == 2:
            break
        await asyncio.sleep(0.1)
    assert set(room.publications) == {"alice/video", "alice/audio"}
    return room


async def test_nothing_written_before_consent_and_decline_stops(tmp_path: Path) -> None:
    room = await _room_with_alice()
    assert isinstance(room.forwarder, RtpForwarder)
    directory = tmp_path / "recordings" / "s1"
    session = RecordingSession("room-1", "s1", directory, room.forwarder)
    try:
        for publication in room.publications.values():
            session.add_publication(publication.id, "alice", publication.kind)
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
        for publication in room.publications.values():
            session.add_publication(publication.id, "alice", publication.kind)
        await session.start("counselor", ["alice"])
        await session.agree("alice")
        assert session.state is RecordingState.RECORDING
        await asyncio.sleep(2.5)
        await session.stop("counselor")
    finally:
        await session.aclose()
        await room.aclose()
    manifest = read_manifest(directory)
    assert manifest.stop_reason == "stopped by counselor"
    assert set(manifest.consents) == {"counselor", "alice"}
    by_kind = {t.kind: t for t in manifest.tracks}
    assert by_kind["video"].codec == "VP8" and by_kind["audio"].codec == "opus"
    for track in manifest.tracks:
        assert 0 <= track.start_offset_s < 1.5
        codecs, last, count = probe.streams_and_last_pts(directory / track.file)
        assert codecs == (["vp8"] if track.kind == "video" else ["opus"])
        assert 1.5 < last < 3.0, (track.file, last)
        assert count == track.frames
        assert probe.decodes_cleanly(directory / track.file), track.file
    assert json.loads((directory / "manifest.json").read_text())["session_id"] == "s2"

    # seoulbridge recording export s2 (the CLI entry; transcodes offline)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["recording", "export", "s2", "--data-dir", str(tmp_path)])
    assert await asyncio.to_thread(args.func, args) == 0
    codecs, last, _ = probe.streams_and_last_pts(directory / "composite.webm")
    assert sorted(codecs) == ["opus", "vp8"]
    assert 1.5 < last < 3.5


async def test_late_joiner_pauses_recording_until_consent(tmp_path: Path) -> None:
    room = await _room_with_alice()
    assert isinstance(room.forwarder, RtpForwarder)
    directory = tmp_path / "recordings" / "s3"
    session = RecordingSession("room-1", "s3", directory, room.forwarder)
    try:
        for publication in room.publications.values():
            session.add_publication(publication.id, "alice", publication.kind)
        await session.start("counselor", ["alice"])
        await session.agree("alice")
        await asyncio.sleep(1.0)
        await session.join("bob")
        assert session.state is RecordingState.PAUSED
        await asyncio.sleep(0.3)  # let frames in flight land
        audio = next(t for t in session.manifest.tracks if t.kind == "audio")
        writer_frames = _written(session, "alice/audio")
        await asyncio.sleep(1.0)
        assert _written(session, "alice/audio") == writer_frames, "wrote while paused"
        await session.agree("bob")
        assert session.state is RecordingState.RECORDING
        await asyncio.sleep(1.0)
        assert _written(session, "alice/audio") > writer_frames + 20
        await session.stop("counselor")
    finally:
        await session.aclose()
        await room.aclose()
    assert audio.frames > 0
    codecs, _, _ = probe.streams_and_last_pts(directory / audio.file)
    assert codecs == ["opus"]


def _written(session: RecordingSession, publication_id: str) -> int:
    writer = session._tracks[publication_id].writer
    assert writer is not None
    return writer.frames_written
