"""Where a room's recording lives on disk, and the one seam for how its bytes get there.

``DATA_DIR/recordings/<room id>/`` holds ``manifest.json`` and one file per track
and segment, named ``rec<R>-seg<SSSS>-<participant>-<kind>[-<part>].webm``:
recording ``R`` of the room, segment ``S`` (numbered across restarts, never
reused), ``part`` when a publication came back within one segment.

``RecordingStorage`` creates track files exclusively (an existing file is never
overwritten), replaces the manifest atomically (fsynced temp file, rename) and
reads it back. Everything here blocks: call it from a thread. Encryption at rest
(a later issue) belongs here: wrap the file object ``create_track`` returns and
the manifest text, and the writer and recorder need not change. Tests subclass it
to make writes fail on purpose.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import av

from media.errors import MediaError
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
    """Blocking file operations of recordings (one instance serves every room)."""

    def create_track(self, path: Path) -> BinaryIO:
        """A new, empty track file; ``FileExistsError`` rather than overwrite one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "xb", buffering=0)  # the writer thread closes it

    def write_manifest(self, directory: Path, text: str) -> None:
        """Atomically replace the manifest: a private temp file, fsynced, then renamed."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / MANIFEST
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{MANIFEST}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def read_manifest(self, directory: Path) -> Manifest | None:
        path = directory / MANIFEST
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return parse_manifest(text)

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
            with av.open(str(path)) as container:
                stream = container.streams[0]
                base = float(stream.time_base) if stream.time_base else 0.001
                for packet in container.demux(stream):
                    if packet.pts is None:
                        continue
                    packets += 1
                    end = max(end, (packet.pts + (packet.duration or 0)) * base)
        except (OSError, av.FFmpegError, IndexError) as exc:
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
