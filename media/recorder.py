"""A room's recording: consent rules, one remuxed file per track, and a manifest.

Nothing is written — not a file, not a directory — until ``ConsentMachine``
says everyone agreed. Packets come from the forwarder's packet listeners
(encoded, exactly what subscribers get); frames go to one ``TrackWriter`` per
track. ``manifest.json`` (replaced atomically) says who, when, which codecs
and where each file starts relative to the recording's start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from aiortc.rtp import RtpPacket

from media.consent import ConsentMachine, RecordingState, Transition
from media.depacketize import FrameAssembler
from media.errors import MediaError
from media.forwarding import Kind
from media.track_writer import TrackWriter, suffix_for, supported

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: Recordings live in ``<data dir>/recordings/<session id>/``.
RECORDINGS_DIR = "recordings"


def session_directory(data_dir: Path, session_id: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", session_id) or session_id.startswith("."):
        raise MediaError(f"invalid recording session id {session_id!r}")
    return data_dir / RECORDINGS_DIR / session_id


class PacketSource(Protocol):
    """What a recording needs from the forwarder (``RtpForwarder`` provides it)."""

    def add_packet_listener(
        self, publication_id: str, listener: Callable[[RtpPacket, str], None]
    ) -> Callable[[], None]: ...

    def request_keyframe(self, publication_id: str) -> None: ...


@dataclass
class TrackRecord:
    """One file of the manifest."""

    file: str
    publication_id: str
    participant_id: str
    kind: str
    codec: str
    segment: int
    start_offset_s: float
    started_at: str
    ended_at: str | None = None
    frames: int = 0


@dataclass
class Manifest:
    session_id: str
    room_id: str
    requested_by: str | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    stop_reason: str | None = None
    consents: dict[str, str] = field(default_factory=dict)
    tracks: list[TrackRecord] = field(default_factory=list)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class _Track:
    def __init__(self, publication_id: str, participant_id: str, kind: Kind) -> None:
        self.publication_id = publication_id
        self.participant_id = participant_id
        self.kind = kind
        self.remove_listener: Callable[[], None] | None = None
        self.assembler: FrameAssembler | None = None
        self.writer: TrackWriter | None = None
        self.record: TrackRecord | None = None


class RecordingSession:
    """Consent-gated recording of one room into ``directory`` (one session id)."""

    def __init__(
        self,
        room_id: str,
        session_id: str,
        directory: Path,
        source: PacketSource,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.room_id = room_id
        self.session_id = session_id
        self.directory = directory
        self._source = source
        self._clock = clock
        self.consent = ConsentMachine(room_id)
        self.manifest = Manifest(session_id=session_id, room_id=room_id)
        self._tracks: dict[str, _Track] = {}
        self._segment = 0
        self._t0: float | None = None
        self._pending_writes: set[asyncio.Task[None]] = set()
        self._manifest_lock = asyncio.Lock()

    @property
    def state(self) -> RecordingState:
        """What every participant's indicator shows."""
        return self.consent.state

    # -- consent actions (the signaling layer calls these) ------------------------------

    async def start(self, by: str, participants: list[str]) -> Transition:
        transition = await self._apply(self.consent.start(by, participants))
        assert transition is not None
        return transition

    async def agree(self, participant: str) -> Transition | None:
        return await self._apply(self.consent.consent(participant))

    async def decline(self, participant: str) -> Transition:
        transition = await self._apply(self.consent.decline(participant))
        assert transition is not None
        return transition

    async def stop(self, by: str) -> Transition:
        transition = await self._apply(self.consent.stop(by))
        assert transition is not None
        return transition

    async def join(self, participant: str) -> Transition | None:
        return await self._apply(self.consent.join(participant))

    async def leave(self, participant: str) -> Transition | None:
        return await self._apply(self.consent.leave(participant))

    # -- publications -------------------------------------------------------------------

    def add_publication(self, publication_id: str, participant_id: str, kind: Kind) -> None:
        track = _Track(publication_id, participant_id, kind)
        self._tracks[publication_id] = track
        if self.consent.writing_allowed:
            self._listen(track)

    async def remove_publication(self, publication_id: str) -> None:
        track = self._tracks.pop(publication_id, None)
        if track is not None:
            await self._close_track(track)
            await self._write_manifest()

    # -- effects ------------------------------------------------------------------------

    async def _apply(self, transition: Transition | None) -> Transition | None:
        if transition is None:
            return None
        now = self._clock()
        for participant, answer in self.consent.answers.items():
            if answer.value == "agreed" and participant not in self.manifest.consents:
                self.manifest.consents[participant] = _iso(now)
        if transition.new is RecordingState.RECORDING and transition.old is RecordingState.ASKING:
            self._segment += 1
            self._t0 = now
            self.manifest.requested_by = self.consent.requested_by
            self.manifest.started_at = self.manifest.started_at or _iso(now)
            self.manifest.stopped_at = None
            for track in self._tracks.values():
                self._listen(track)
            await self._write_manifest()
        elif transition.new is RecordingState.RECORDING:  # resumed after a late joiner agreed
            for track in self._tracks.values():
                if track.assembler is not None:
                    track.assembler.reset()
        elif transition.new is RecordingState.STOPPED:
            for track in self._tracks.values():
                await self._close_track(track)
            if self.manifest.started_at is not None:
                self.manifest.stopped_at = _iso(now)
                self.manifest.stop_reason = transition.reason
                await self._write_manifest()
        if transition.new is RecordingState.ASKING:
            self.manifest.consents = {}
        return transition

    def _listen(self, track: _Track) -> None:
        if track.remove_listener is not None:
            return

        def on_packet(packet: RtpPacket, codec_name: str) -> None:
            if self.consent.writing_allowed:
                self._on_packet(track, packet, codec_name)

        track.remove_listener = self._source.add_packet_listener(track.publication_id, on_packet)
        if track.kind == "video":
            self._source.request_keyframe(track.publication_id)

    def _on_packet(self, track: _Track, packet: RtpPacket, codec_name: str) -> None:
        if track.writer is None:
            if not supported(codec_name) or self._t0 is None:
                return
            now = self._clock()
            file = (
                f"{_safe(track.participant_id)}-{track.kind}-{self._segment}"
                f"{suffix_for(codec_name)}"
            )
            track.assembler = FrameAssembler(
                codec_name, lambda: self._source.request_keyframe(track.publication_id)
            )
            clock_rate = 48_000 if track.kind == "audio" else 90_000
            track.writer = TrackWriter(
                self.directory / file, codec_name, clock_rate, name=f"{self.room_id} {file}"
            )
            track.record = TrackRecord(
                file=file,
                publication_id=track.publication_id,
                participant_id=track.participant_id,
                kind=track.kind,
                codec=codec_name,
                segment=self._segment,
                start_offset_s=round(now - self._t0, 3),
                started_at=_iso(now),
            )
            self.manifest.tracks.append(track.record)
            self._write_manifest_soon()
        assert track.assembler is not None
        for frame in track.assembler.push(packet):
            track.writer.write(frame)

    async def _close_track(self, track: _Track) -> None:
        if track.remove_listener is not None:
            track.remove_listener()
            track.remove_listener = None
        writer, record = track.writer, track.record
        track.writer = track.assembler = track.record = None
        if writer is not None and record is not None:
            await writer.aclose()
            record.ended_at = _iso(self._clock())
            record.frames = writer.frames_written

    # -- manifest -----------------------------------------------------------------------

    def _write_manifest_soon(self) -> None:
        # Called from a packet listener (sync); the write itself is done in a thread.
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._write_manifest(), name=f"manifest {self.session_id}")
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)

    async def _write_manifest(self) -> None:
        # One write at a time, each taking the manifest as it is when its turn comes,
        # so the file on disk always ends with the newest state.
        async with self._manifest_lock:
            text = json.dumps(asdict(self.manifest), indent=2, ensure_ascii=False)
            await asyncio.to_thread(_replace_file, self.directory / MANIFEST, text)

    async def aclose(self) -> None:
        if self.consent.state in (
            RecordingState.ASKING,
            RecordingState.RECORDING,
            RecordingState.PAUSED,
        ):
            await self.stop("server shutdown")
        for track in self._tracks.values():
            await self._close_track(track)
        if self._pending_writes:
            await asyncio.gather(*self._pending_writes)


def _replace_file(path: Path, text: str) -> None:
    """Atomically replace ``path``: a private temp file, fsynced, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def read_manifest(directory: Path) -> Manifest:
    """Load a session's manifest (for export and listing)."""
    path = directory / MANIFEST
    if not path.exists():
        raise MediaError(f"{directory} has no {MANIFEST}: not a recording session")
    raw = json.loads(path.read_text(encoding="utf-8"))
    tracks = [TrackRecord(**t) for t in raw.pop("tracks", [])]
    return Manifest(**raw, tracks=tracks)
