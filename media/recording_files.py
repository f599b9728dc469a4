"""Where a room's recording lives on disk, and the one seam for how its bytes get there.

``DATA_DIR/recordings/<room id>/`` holds ``manifest.json`` and one file per track
and segment, named ``rec<R>-seg<SSSS>-<participant>-<kind>[-<part>].webm``:
recording ``R`` of the room, segment ``S`` (numbered across restarts, never
reused), ``part`` when a publication came back within one segment.

``RecordingStorage`` creates track files exclusively (an existing file is never
overwritten), replaces the manifest atomically (fsynced temp file, rename) and
reads it back. Everything here blocks: call it from a thread. Tests subclass it
to make writes fail on purpose.

Encryption at rest: given a ``KeyRing``, every track file is a log of sealed
records (``media.recording_crypto``: AES-GCM, a key per file wrapped by the
deployment key) and so is the manifest; nothing plain reaches the disk, not even
a temporary file. Names stay as they are. Reading (``open_track``,
``read_manifest``) tells sealed files from plain ones by their first bytes, so
recordings made before encryption was turned on, or under an older key that is
still in the keyring, read as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, cast

import av

from kernel.private_files import replace_file
from media.errors import MediaError
from media.recording_crypto import (
    MAGIC,
    DecryptionError,
    KeyRing,
    RecordingKeyError,
    SealedReader,
    SealedWriter,
    is_encrypted,
    open_sealed,
    seal_bytes,
)
from media.recording_model import Manifest, ManifestError, parse_manifest, utc

logger = logging.getLogger(__name__)

MANIFEST: Final = "manifest.json"
#: Recordings live in ``<data dir>/recordings/<room id>/``.
RECORDINGS_DIR: Final = "recordings"
_SEGMENT_IN_NAME: Final = re.compile(r"^rec\d+-seg(\d+)-")
#: why a segment or recording ended when its process was killed
INTERRUPTED: Final = "interrupted"


def session_directory(data_dir: Path, session_id: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", session_id) or session_id.startswith("."):
        raise MediaError(f"invalid recording session id {session_id!r}")
    return data_dir / RECORDINGS_DIR / session_id


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def track_file_name(
    recording: int, segment: int, participant_id: str, kind: str, part: int, suffix: str
) -> str:
    extra = f"-{part}" if part > 1 else ""
    return f"rec{recording}-seg{segment:04d}-{safe_name(participant_id)}-{kind}{extra}{suffix}"


@dataclass(frozen=True)
class TrackProbe:
    """What a track file holds, read back from the file itself."""

    packets: int
    duration_s: float


class RecordingStorage:
    """Blocking file operations of recordings (one instance serves every room).

    With ``keys``, what it writes is sealed under ``keys.current``; without, plain
    (tests of the muxing itself, and deployments from before encryption).
    """

    #: a class default, so subclasses that make writes fail need not call ``__init__``
    keys: KeyRing | None = None

    def __init__(self, keys: KeyRing | None = None) -> None:
        self.keys = keys

    @property
    def encrypted(self) -> bool:
        return self.keys is not None

    def create_track(self, path: Path) -> BinaryIO:
        """A new, empty track file; ``FileExistsError`` rather than overwrite one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = open(path, "xb", buffering=0)
        if self.keys is None:
            return raw
        try:
            return cast(BinaryIO, SealedWriter(raw, self.keys))
        except BaseException:
            raw.close()
            raise

    def open_track(self, path: Path) -> BinaryIO:
        """A track file's plain bytes to read (decrypted as read, never written out)."""
        if not is_encrypted(path):
            return open(path, "rb")
        return cast(BinaryIO, SealedReader(path, self._keys_for(path)))

    def _keys_for(self, path: Path) -> KeyRing:
        if self.keys is None:
            raise RecordingKeyError(
                f"{path.name} is encrypted and no recording keyring was given "
                "(run this on the data directory, or set SEOULBRIDGE_RECORDING_KEYS_FILE)"
            )
        return self.keys

    def write_manifest(self, directory: Path, text: str) -> None:
        """Atomically replace the manifest: a private temp file, fsynced, then renamed.

        Sealed before it is written, so the temp file holds no plain text either.
        """
        directory.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        if self.keys is not None:
            data = seal_bytes(data, self.keys)
        replace_file(directory / MANIFEST, data)

    def manifest_text(self, directory: Path) -> str | None:
        """The manifest as JSON text (decrypted), or None when there is none."""
        path = directory / MANIFEST
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.startswith(MAGIC):
            return raw.decode("utf-8", errors="replace")
        try:
            return open_sealed(path, self._keys_for(path)).decode("utf-8")
        except DecryptionError as exc:
            raise ManifestError(str(exc)) from None

    def read_manifest(self, directory: Path) -> Manifest | None:
        text = self.manifest_text(directory)
        return None if text is None else parse_manifest(text)

    def set_aside(self, directory: Path) -> Path | None:
        """Move an unreadable manifest out of the way (kept for a person to look at)."""
        path = directory / MANIFEST
        for n in range(1, 1000):
            target = directory / f"manifest.unreadable-{n}.json"
            if not target.exists():
                with contextlib.suppress(FileNotFoundError):
                    os.rename(path, target)
                    return target
                return None
        return None

    def last_segment_on_disk(self, directory: Path) -> int:
        """The highest segment number any file in ``directory`` is named with."""
        if not directory.is_dir():
            return 0
        numbers = [
            int(m.group(1)) for p in directory.iterdir() if (m := _SEGMENT_IN_NAME.match(p.name))
        ]
        return max(numbers, default=0)

    def probe_track(self, path: Path) -> TrackProbe:
        """Packets and duration of a track file, whether or not its writer finished it."""
        packets, end = 0, 0.0
        try:
            with self.open_track(path) as handle, av.open(handle, "r") as container:
                stream = container.streams[0]
                base = float(stream.time_base) if stream.time_base else 0.001
                for packet in container.demux(stream):
                    if packet.pts is None:
                        continue
                    packets += 1
                    end = max(end, (packet.pts + (packet.duration or 0)) * base)
        except (OSError, av.FFmpegError, IndexError, DecryptionError) as exc:
            logger.warning("recording file %s cannot be read back: %s", path, exc)
        return TrackProbe(packets, round(end, 3))

    def recover(self, directory: Path, manifest: Manifest) -> bool:
        """Fill in what a killed process could not: counts and ends from the files themselves.

        A track with no ``ended_at`` was being written when its process died; its
        file ends at the last complete cluster. Returns True when anything changed.
        """
        changed = False
        for recording in manifest.recordings:
            for segment in recording.segments:
                for track in segment.tracks:
                    if track.ended_at is not None:
                        continue
                    found = self.probe_track(directory / track.file)
                    track.frames, track.duration_s = found.packets, found.duration_s
                    track.ended_at = utc(track.started_at.timestamp() + found.duration_s)
                    track.recovered = changed = True
                if segment.ended_at is None and segment.tracks:
                    ends = [t.ended_at for t in segment.tracks if t.ended_at is not None]
                    segment.ended_at = max(ends, default=segment.started_at)
                    segment.end_reason = segment.end_reason or INTERRUPTED
                    changed = True
        return changed


def read_manifest(directory: Path, storage: RecordingStorage | None = None) -> Manifest:
    """A room's manifest (for export and listing); ``MediaError`` when there is none."""
    manifest = (storage or RecordingStorage()).read_manifest(directory)
    if manifest is None:
        raise ManifestError(f"{directory} has no {MANIFEST}: not a recording session")
    return manifest
