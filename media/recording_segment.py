"""One segment of a recording: a continuous run of writing, one file per publication.

A segment opens when writing is allowed (everyone agreed, a pause ended, another
process took the room over while it recorded) and closes when it no longer is
(a pause, a stop, the node letting go, a failure). While open it listens to
every publication's packets — only then: a paused room sends the recorder
nothing. Packets become frames (``FrameAssembler``); a publication's file is
created at its first whole frame, which is the file's time zero
(``TrackFile.started_at``), so a pause is a gap between files, never a jump in
one file's timestamps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiortc.rtp import RtpPacket

from kernel.media_types import Kind
from media.depacketize import FrameAssembler
from media.errors import MediaError
from media.forwarding import PacketSource
from media.recording_files import RecordingStorage, track_file_name
from media.recording_model import Segment, TrackFile, utc
from media.track_writer import TrackWriter, suffix_for, supported

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublicationInfo:
    publication_id: str
    participant_id: str
    kind: Kind


class _Run:
    """One publication within one segment."""

    def __init__(self, publication: PublicationInfo) -> None:
        self.publication = publication
        self.remove_listener: Callable[[], None] | None = None
        self.assembler: FrameAssembler | None = None
        self.writer: TrackWriter | None = None
        self.record: TrackFile | None = None
        self.unsupported = False

    def refresh(self) -> None:
        if self.writer is not None and self.record is not None:
            self.record.frames = self.writer.frames_written
            self.record.duration_s = self.writer.duration_s


class SegmentRecorder:
    """Writes one segment of recording ``recording`` of a room into ``directory``."""

    def __init__(
        self,
        *,
        room_id: str,
        recording: int,
        number: int,
        directory: Path,
        source: PacketSource,
        storage: RecordingStorage,
        clock: Callable[[], float],
        on_error: Callable[[BaseException], None],
        on_new_file: Callable[[], None],
    ) -> None:
        self.room_id = room_id
        self.recording = recording
        self.directory = directory
        self._source = source
        self._storage = storage
        self._clock = clock
        self._on_error = on_error
        self._on_new_file = on_new_file
        self.segment = Segment(number=number, started_at=utc(clock()))
        self._runs: dict[str, _Run] = {}
        self._parts: dict[str, int] = {}
        self._open = True

    @property
    def number(self) -> int:
        return self.segment.number

    def listen(self, publication: PublicationInfo) -> None:
        """Record ``publication`` from its next whole frame (video: from a keyframe)."""
        if not self._open or publication.publication_id in self._runs:
            return
        run = _Run(publication)

        def on_packet(packet: RtpPacket, codec_name: str) -> None:
            if self._open and self._runs.get(publication.publication_id) is run:
                self._on_packet(run, packet, codec_name)

        try:
            run.remove_listener = self._source.add_packet_listener(
                publication.publication_id, on_packet
            )
        except MediaError as exc:  # gone meanwhile, or a forwarder without encoded packets
            logger.warning(
                "room %s: cannot record %s: %s", self.room_id, publication.publication_id, exc
            )
            return
        self._runs[publication.publication_id] = run
        if publication.kind == "video":
            self._source.request_keyframe(publication.publication_id)

    async def drop(self, publication_id: str) -> None:
        """The publication went away: finish its file (a return gets a new part)."""
        run = self._runs.pop(publication_id, None)
        if run is not None:
            await self._finish(run)

    def refresh(self) -> None:
        """Copy the writers' counts into the segment's records (for the manifest)."""
        for run in self._runs.values():
            run.refresh()

    def halt(self) -> None:
        """Take no packet from now on (sync: the moment writing stops being allowed)."""
        self._open = False
        for run in self._runs.values():
            if run.remove_listener is not None:
                run.remove_listener()
                run.remove_listener = None

    async def aclose(self, reason: str) -> Segment:
        """Stop listening, finish every file; the segment as it ends."""
        self.halt()
        runs, self._runs = list(self._runs.values()), {}
        await asyncio.gather(*(self._finish(run) for run in runs))
        self.segment.ended_at = utc(self._clock())
        self.segment.end_reason = reason
        return self.segment

    # -- packets ------------------------------------------------------------------------

    def _on_packet(self, run: _Run, packet: RtpPacket, codec_name: str) -> None:
        if run.assembler is None:
            if not supported(codec_name):
                if not run.unsupported:
                    run.unsupported = True
                    logger.warning(
                        "room %s: %s uses %s, which cannot be recorded",
                        self.room_id,
                        run.publication.publication_id,
                        codec_name,
                    )
                return
            publication_id = run.publication.publication_id
            run.assembler = FrameAssembler(
                codec_name, lambda: self._source.request_keyframe(publication_id)
            )
        for frame in run.assembler.push(packet):
            if run.writer is None:
                self._start_file(run, codec_name)
            assert run.writer is not None
            run.writer.write(frame)

    def _start_file(self, run: _Run, codec_name: str) -> None:
        publication = run.publication
        part = self._parts.get(publication.publication_id, 0) + 1
        self._parts[publication.publication_id] = part
        name = track_file_name(
            self.recording,
            self.number,
            publication.participant_id,
            publication.kind,
            part,
            suffix_for(codec_name),
        )
        record = TrackFile(
            file=name,
            publication_id=publication.publication_id,
            participant_id=publication.participant_id,
            kind=publication.kind,
            codec=codec_name,
            started_at=utc(self._clock()),
        )

        def failed(exc: BaseException) -> None:
            record.error = str(exc) or type(exc).__name__
            self._on_error(exc)

        run.writer = TrackWriter(
            self.directory / name,
            codec_name,
            48_000 if publication.kind == "audio" else 90_000,
            name=f"{self.room_id} {name}",
            open_file=self._storage.create_track,
            on_error=failed,
        )
        run.record = record
        self.segment.tracks.append(record)
        logger.info("room %s: recording %s into %s", self.room_id, publication.publication_id, name)
        self._on_new_file()

    async def _finish(self, run: _Run) -> None:
        if run.remove_listener is not None:
            run.remove_listener()
            run.remove_listener = None
        writer, record = run.writer, run.record
        run.writer = run.assembler = None
        if writer is not None and record is not None:
            await writer.aclose()
            record.frames = writer.frames_written
            record.duration_s = writer.duration_s
            record.ended_at = utc(self._clock())
