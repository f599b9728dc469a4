"""When the disk fails mid-recording, the recording stops with a reason its owner hears.

A storage that fails on purpose (a full disk after some bytes, a manifest that
cannot be replaced, a disk that hangs) under the real writer, PyAV and recorder.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import probe
import pytest
import sfu_loopback

from media.consent import RecordingState, Transition
from media.depacketize import EncodedFrame
from media.recorder import FAILED_REASON, RecordingSession, RecordingWriteError, read_manifest
from media.recording_files import RecordingStorage
from media.rtp_forwarder import RtpForwarder
from media.track_writer import MAX_QUEUED, TrackWriter
from tests.support.failing_storage import FailingStorage

pytestmark = pytest.mark.timeout(40)


class _Owner:
    """What RoomRecording is to a session: hears every failure."""

    def __init__(self) -> None:
        self.failures: list[tuple[RecordingWriteError, Transition | None]] = []
        self.told = asyncio.Event()

    async def on_failure(self, error: RecordingWriteError, transition: Transition | None) -> None:
        self.failures.append((error, transition))
        self.told.set()


async def _recording(
    tmp_path: Path, storage: RecordingStorage, owner: _Owner
) -> tuple[sfu_loopback.Room, RecordingSession]:
    room = sfu_loopback.Room(RtpForwarder(keyframe_min_interval=0.2))
    await room.add_publisher("alice", sfu_loopback.SyntheticVideo(), sfu_loopback.SineAudio())
    for _ in range(100):
        if len(room.publications) == 2:
            break
        await asyncio.sleep(0.05)
    assert isinstance(room.forwarder, RtpForwarder)
    session = RecordingSession(
        "room-f",
        "room-f",
        tmp_path / "room-f",
        room.forwarder,
        storage=storage,
        on_failure=owner.on_failure,
        flush_interval_s=0.2,
    )
    for publication in room.publications.values():
        session.add_publication(publication.id, publication.participant_id, publication.kind)
    await session.start("counselor", ["alice"])
    await session.agree("alice")
    assert session.state is RecordingState.RECORDING
    return room, session


async def test_a_full_disk_stops_the_recording_and_tells_its_owner(tmp_path: Path) -> None:
    owner = _Owner()
    storage = FailingStorage(track_bytes=30_000, track_kind="video")
    room, session = await _recording(tmp_path, storage, owner)
    try:
        await asyncio.wait_for(owner.told.wait(), 15)
        assert session.state is RecordingState.STOPPED
        assert session.consent.stop_reason == FAILED_REASON
        await asyncio.sleep(0.5)  # later frames and writers must not report it again
    finally:
        await session.aclose()
        await room.aclose()
    ((error, transition),) = owner.failures
    assert "No space left on device" in str(error)
    assert transition is not None and transition.new is RecordingState.STOPPED
    assert transition.reason == FAILED_REASON
    assert session.failure is error

    (recording,) = read_manifest(tmp_path / "room-f").recordings
    assert recording.stop_reason == FAILED_REASON
    (segment,) = recording.segments
    by_kind = {t.kind: t for t in segment.tracks}
    assert by_kind["video"].error and "No space" in by_kind["video"].error
    # The other track was finished properly, and what reached the disk before is kept.
    audio = by_kind["audio"]
    assert audio.error is None and audio.frames > 0
    _, _, count = probe.streams_and_last_pts(tmp_path / "room-f" / audio.file)
    assert count == audio.frames
    assert probe.decodes_cleanly(tmp_path / "room-f" / audio.file)
    assert (tmp_path / "room-f" / by_kind["video"].file).stat().st_size <= 30_000


async def test_a_manifest_that_cannot_be_written_stops_the_recording(tmp_path: Path) -> None:
    owner = _Owner()
    storage = FailingStorage(manifest_writes=1)  # the first write (at start) lands, no other
    room, session = await _recording(tmp_path, storage, owner)
    try:
        await asyncio.wait_for(owner.told.wait(), 15)
        assert session.state is RecordingState.STOPPED
        assert session.consent.stop_reason == FAILED_REASON
    finally:
        await session.aclose()
        await room.aclose()
    ((error, _),) = owner.failures
    assert "manifest could not be written" in str(error) and "Input/output error" in str(error)
    # The track files were finished all the same: playable, though the manifest is behind.
    files = sorted((tmp_path / "room-f").glob("*.webm"))
    assert files  # the first file's manifest write is the one that fails
    for path in files:
        assert probe.decodes_cleanly(path), path.name


async def test_a_writer_that_cannot_keep_up_fails_instead_of_queueing(tmp_path: Path) -> None:
    gate = threading.Event()  # the disk hangs: the writer thread cannot even open its file
    storage = FailingStorage(open_gate=gate)
    errors: list[BaseException] = []
    writer = TrackWriter(
        tmp_path / "slow.webm",
        "opus",
        48_000,
        name="slow",
        open_file=storage.create_track,
        on_error=errors.append,
    )
    for n in range(MAX_QUEUED + 50):
        writer.write(EncodedFrame(n * 960, b"\xfc" + bytes(40), True))
    await asyncio.sleep(0.05)
    assert len(errors) == 1 and "does not keep up" in str(errors[0])
    assert writer.failed
    gate.set()
    await asyncio.wait_for(writer.aclose(), 10)
    assert len(errors) == 1


async def test_a_writer_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    existing = tmp_path / "taken.webm"
    existing.write_bytes(b"an earlier recording")
    errors: list[BaseException] = []
    writer = TrackWriter(
        existing,
        "opus",
        48_000,
        name="taken",
        open_file=RecordingStorage().create_track,
        on_error=errors.append,
    )
    writer.write(EncodedFrame(0, b"\xfc" + bytes(40), True))
    await asyncio.wait_for(writer.aclose(), 10)
    assert len(errors) == 1 and isinstance(errors[0], FileExistsError)
    assert existing.read_bytes() == b"an earlier recording"
