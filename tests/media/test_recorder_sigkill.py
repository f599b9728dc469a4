"""A recording stays usable when the server process is killed mid-session, encrypted too.

After SIGKILL the files decrypt and decode up to the last written cluster, the
manifest's frame counts are at most about a second behind the files (written as
the recording goes), export works from the files themselves, and the next process
that takes the directory over recovers the counts and never overwrites a file.
With encryption on, nothing in the room's directory — track files, the manifest,
temporary files — holds a byte of plain media or a participant's id.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import probe
import pytest
import sfu_loopback

from media.recorder import RecordingSession, read_manifest
from media.recording_crypto import MAGIC
from media.recording_files import RecordingStorage
from media.rtp_forwarder import RtpForwarder
from web.cli_recording import register
from web.recording_keys import KEYRING_FILE, KeySource, load_keyring

pytestmark = pytest.mark.timeout(90)

CHILD = Path(__file__).with_name("record_child.py")
FRAMES_PER_S = {"audio": 50, "video": 30}


#: what plain Matroska, Opus or the manifest would show: none of it may be on disk
PLAIN_MARKERS = (b"\x1a\x45\xdf\xa3", b"webm", b"OpusHead", b"V_VP8", b"alice", b"counselor")


def _storage(data_dir: Path, encrypted: bool) -> RecordingStorage:
    if not encrypted:
        return RecordingStorage()
    return RecordingStorage(load_keyring(KeySource(path=data_dir / KEYRING_FILE, managed=True)))


def _record_then_kill(directory: Path, seconds: float, *, encrypted: bool = True) -> float:
    """Run the child until it records, let it record ``seconds``, SIGKILL it; when it died.

    Encrypted under the keyring of the data directory two levels up (the CLI's default).
    """
    keyring = [str(directory.parent.parent / KEYRING_FILE)] if encrypted else []
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(directory), *keyring],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "RECORDING", child.stderr.read() if child.stderr else line
        time.sleep(seconds)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        killed_at = time.time()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    return killed_at


def _export(data_dir: Path, session: str, output: Path) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["recording", "export", session, "-o", str(output), "--data-dir", str(data_dir)]
    )
    result: int = args.func(args)
    return result


def _assert_nothing_plain(directory: Path) -> None:
    files = [p for p in directory.iterdir() if p.is_file()]
    assert len(files) >= 3, files
    for path in files:
        data = path.read_bytes()
        assert data.startswith(MAGIC), f"{path.name} is not sealed"
        for marker in PLAIN_MARKERS:
            assert marker not in data, f"{path.name} holds plain {marker!r}"


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
def test_files_and_counts_survive_sigkill_and_export(tmp_path: Path, encrypted: bool) -> None:
    directory = tmp_path / "recordings" / "killed"
    killed_at = _record_then_kill(directory, 4.0, encrypted=encrypted)
    storage = _storage(tmp_path, encrypted)
    if encrypted:
        _assert_nothing_plain(directory)
    manifest = read_manifest(directory, storage)
    (recording,) = manifest.recordings
    (segment,) = recording.segments
    assert segment.ended_at is None  # nobody finished it
    assert {t.kind for t in segment.tracks} == {"video", "audio"}
    for track in segment.tracks:
        started = track.started_at.timestamp()
        expected = killed_at - started
        codecs, last, count = probe.streams_and_last_pts(directory / track.file, storage)
        assert codecs == (["vp8"] if track.kind == "video" else ["opus"])
        assert count > 0
        assert abs(last - expected) < 2.0, (track.file, last, expected)
        assert probe.decodes_cleanly(directory / track.file, storage), track.file
        # Written as the recording went: about a second behind the file (flushed once a
        # second; more on a busy machine), and the file may lose its last half-second cluster.
        per_s = FRAMES_PER_S[track.kind]
        assert count - 2.5 * per_s <= track.frames <= count + 0.6 * per_s, (
            track.file,
            track.frames,
            count,
        )

    output = tmp_path / "killed.webm"
    assert _export(tmp_path, "killed", output) == 0
    spans = probe.stream_ends(output)
    assert abs(spans["audio"] - spans["video"]) < 0.5, spans
    assert spans["video"] > 3.0, spans
    if encrypted:
        _assert_nothing_plain(directory)  # the export fed ffmpeg through pipes


def _fingerprint(path: Path) -> tuple[int, int, str]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, hashlib.sha256(path.read_bytes()).hexdigest()


async def test_the_next_process_recovers_the_counts_and_never_overwrites(tmp_path: Path) -> None:
    directory = tmp_path / "recordings" / "killed"
    await asyncio.to_thread(_record_then_kill, directory, 2.5)
    killed = {p.name: _fingerprint(p) for p in directory.glob("*.webm")}
    assert len(killed) == 2

    storage = _storage(tmp_path, True)
    room = sfu_loopback.Room(RtpForwarder(keyframe_min_interval=0.2))
    session = RecordingSession("room-k", "killed", directory, room.forwarder, storage=storage)
    try:
        await room.add_publisher("alice", sfu_loopback.SyntheticVideo(), sfu_loopback.SineAudio())
        for _ in range(100):
            if len(room.publications) == 2:
                break
            await asyncio.sleep(0.05)
        for publication in room.publications.values():
            session.add_publication(publication.id, "alice", publication.kind)
        await session.start("counselor", ["alice"])
        await session.agree("alice")
        await asyncio.sleep(1.5)
        await session.stop("counselor")
    finally:
        await session.aclose()
        await room.aclose()

    for name, fingerprint in killed.items():
        assert _fingerprint(directory / name) == fingerprint, f"{name} was overwritten"
    assert len(list(directory.glob("*.webm"))) == 4
    first, second = read_manifest(directory, storage).recordings
    assert (first.number, second.number) == (1, 2)
    assert first.stop_reason == "interrupted" and first.stopped_at is not None
    (old,) = first.segments
    (new,) = second.segments
    assert old.end_reason == "interrupted" and new.number == old.number + 1
    for track in old.tracks:
        _, last, count = probe.streams_and_last_pts(directory / track.file, storage)
        assert track.recovered and track.frames == count, (track.file, track.frames, count)
        assert abs(track.duration_s - last) < 0.1
        assert track.ended_at is not None and track.ended_at > track.started_at
    assert all(t.frames > 0 and not t.recovered for t in new.tracks)
    assert second.started_at > first.started_at
    _assert_nothing_plain(directory)
