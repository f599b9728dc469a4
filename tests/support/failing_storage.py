"""A ``RecordingStorage`` whose writes fail on purpose (imported by tests, not a fixture module).

The tests run as root, so permissions cannot make a directory unwritable; this
storage hands the real writer a real file that reports a full disk after a
number of bytes, or fails the manifest's replacement after a number of writes.
Everything else — PyAV, the writer thread, the recorder — is the real thing.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import BinaryIO, cast

from media.recording_crypto import KeyRing
from media.recording_files import RecordingStorage


class FullDisk:
    """A file that takes ``limit`` bytes, then says the disk is full (as write(2) would)."""

    def __init__(self, real: BinaryIO, limit: int) -> None:
        self.real, self.limit, self.written = real, limit, 0

    def write(self, data: bytes) -> int:
        if self.written + len(data) > self.limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        count = self.real.write(data)
        self.written += count
        return count

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.real.seek(offset, whence)

    def tell(self) -> int:
        return self.real.tell()

    def close(self) -> None:
        self.real.close()


class FailingStorage(RecordingStorage):
    def __init__(
        self,
        *,
        track_bytes: int | None = None,
        track_kind: str = "video",
        manifest_writes: int | None = None,
        open_gate: threading.Event | None = None,
        keys: KeyRing | None = None,
    ) -> None:
        self.keys = keys  # the server's keyring: the files are sealed, as in production
        self.track_bytes = track_bytes
        self.track_kind = track_kind
        self.manifest_writes = manifest_writes
        self.manifest_calls = 0
        self.open_gate = open_gate
        self.failed_tracks: list[str] = []

    def create_track(self, path: Path) -> BinaryIO:
        if self.open_gate is not None:
            self.open_gate.wait(10)  # a disk that hangs
        real = super().create_track(path)
        if self.track_bytes is not None and f"-{self.track_kind}" in path.name:
            self.failed_tracks.append(path.name)
            return cast(BinaryIO, FullDisk(real, self.track_bytes))
        return real

    def write_manifest(self, directory: Path, text: str) -> None:
        self.manifest_calls += 1
        if self.manifest_writes is not None and self.manifest_calls > self.manifest_writes:
            raise OSError(errno.EIO, "Input/output error")
        super().write_manifest(directory, text)
