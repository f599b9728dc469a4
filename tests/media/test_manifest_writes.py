"""Manifest writes never collide, the newest state wins, and a cancelled write cannot land late."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

from media.recorder import RecordingSession
from media.recording_files import RecordingStorage
from media.recording_model import Recording, Segment


class _NoPackets:
    def add_packet_listener(self, publication_id: str, listener: object) -> object:
        return lambda: None

    def request_keyframe(self, publication_id: str) -> None:
        return None


def _session(directory: Path, storage: RecordingStorage | None = None) -> RecordingSession:
    session = RecordingSession("r-1", "r-1", directory, _NoPackets(), storage=storage)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    session.manifest.recordings.append(
        Recording(number=1, started_at=now, segments=[Segment(number=1, started_at=now)])
    )
    return session


def _stop_reason(directory: Path) -> str:
    data = json.loads((directory / "manifest.json").read_text())
    reason: str = data["recordings"][0]["stop_reason"]
    return reason


async def test_concurrent_manifest_writes_keep_the_newest(tmp_path: Path) -> None:
    session = _session(tmp_path / "r-1")
    writes = []
    for n in range(40):
        session.manifest.recordings[0].stop_reason = f"write {n}"
        writes.append(asyncio.create_task(session._write_manifest()))
        await asyncio.sleep(0)
    await asyncio.gather(*writes)
    assert _stop_reason(tmp_path / "r-1") == "write 39"
    assert [p.name for p in (tmp_path / "r-1").iterdir()] == ["manifest.json"]  # no temp files


class _SlowFirstWrite(RecordingStorage):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.first_started = threading.Event()
        self.first_landed = threading.Event()
        self.calls = 0

    def write_manifest(self, directory: Path, text: str) -> None:
        self.calls += 1
        first = self.calls == 1
        if first:
            self.first_started.set()
            self.release.wait(10)  # a disk that stalls on this one write
        super().write_manifest(directory, text)
        if first:
            self.first_landed.set()


async def test_a_cancelled_write_lands_before_the_next_one(tmp_path: Path) -> None:
    storage = _SlowFirstWrite()
    session = _session(tmp_path / "r-1", storage)
    session.manifest.recordings[0].stop_reason = "older"
    first = asyncio.create_task(session._write_manifest())
    assert await asyncio.to_thread(storage.first_started.wait, 10)
    first.cancel()  # e.g. the flush task stopped at a pause, mid-write
    session.manifest.recordings[0].stop_reason = "newer"
    second = asyncio.create_task(session._write_manifest())
    await asyncio.sleep(0.2)
    storage.release.set()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await second
    assert await asyncio.to_thread(storage.first_landed.wait, 10)
    assert _stop_reason(tmp_path / "r-1") == "newer"
