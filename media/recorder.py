"""A room's recordings: consent rules, segments of remuxed files, the manifest, the live state.

Nothing is written — not a file, not a directory — until ``ConsentMachine`` says
everyone agreed. Every time writing becomes allowed a new ``SegmentRecorder``
starts (numbered across restarts, never reusing a file name) and every known
publication is hooked in, a late joiner's too; every time it stops being allowed
the segment's files are finished. ``manifest.json`` is rewritten atomically on
every change and about once a second while writing, so a killed process leaves
counts at most a second old (and the next session, or an export, reads the rest
back from the files).

The live state (consent answers, the open request's consent log, counters) goes
to a ``RecordingStateStore`` after every change, so another process can take the
room over: ``load()`` restores it, everyone counts as away until they return,
and a recording that was running goes on in a new segment.

A failed write (a track file, the manifest) stops the recording with
``FAILED_REASON``; the owner hears of it through ``on_failure``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final

from kernel.taskset import TaskSet
from media.consent import Answer, ConsentMachine, RecordingState, Transition
from media.errors import MediaError, RecordingWriteError
from media.forwarding import Kind, PacketSource
from media.manifest_writer import ManifestWriter
from media.recording_files import (
    MANIFEST,
    RECORDINGS_DIR,
    RecordingStorage,
    read_manifest,
    session_directory,
)
from media.recording_model import (
    ConsentAnswer,
    ConsentEntry,
    Manifest,
    ManifestError,
    Person,
    Recording,
    RecordingSnapshot,
    RecordingStateStore,
    utc,
)
from media.recording_restore import consent_from, read_disk
from media.recording_segment import PublicationInfo, SegmentRecorder

__all__ = [
    "MANIFEST",
    "RECORDINGS_DIR",
    "RecordingSession",
    "RecordingWriteError",
    "read_manifest",
    "session_directory",
]

logger = logging.getLogger(__name__)

FAILED_REASON: Final = "failed: the server could not write the recording"
RELEASED_REASON: Final = "the server let go of the room"
MAX_CONSENT_LOG: Final = 500
_ACTIVE: Final = (RecordingState.ASKING, RecordingState.RECORDING, RecordingState.PAUSED)


FailureHandler = Callable[[RecordingWriteError, Transition | None], Awaitable[None]]


class RecordingSession:
    """Consent-gated recordings of one room into ``directory``."""

    def __init__(
        self,
        room_id: str,
        session_id: str,
        directory: Path,
        source: PacketSource,
        *,
        store: RecordingStateStore | None = None,
        storage: RecordingStorage | None = None,
        clock: Callable[[], float] = time.time,
        on_failure: FailureHandler | None = None,
        flush_interval_s: float = 1.0,
    ) -> None:
        self.room_id = room_id
        self.session_id = session_id
        self.directory = directory
        self._source = source
        self._store = store
        self._storage = storage or RecordingStorage()
        self._clock = clock
        self._on_failure = on_failure
        self._flush_interval_s = flush_interval_s
        self.consent = ConsentMachine(room_id)
        self.manifest = Manifest(session_id=session_id, room_id=room_id)
        self._publications: dict[str, PublicationInfo] = {}
        self._people: dict[str, Person] = {}
        # the open request
        self._requested_at: float | None = None
        self._consents: list[ConsentEntry] = []
        self._recording: Recording | None = None
        # counters: never reuse a number
        self._last_recording = 0
        self._last_segment = 0
        self._segment: SegmentRecorder | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._manifest = ManifestWriter(room_id, directory, self._storage, self._fail)
        self.failure: RecordingWriteError | None = None
        self._loaded = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._tasks = TaskSet(f"recording {room_id}", on_error=self._task_failed)

    @property
    def state(self) -> RecordingState:
        """What every participant's indicator shows."""
        return self.consent.state

    def writer_counts(self) -> dict[str, int]:
        """Frames written so far in the open segment, per publication (for tests and metrics)."""
        if self._segment is None:
            return {}
        self._segment.refresh()
        counts: dict[str, int] = {}
        for track in self._segment.segment.tracks:
            counts[track.publication_id] = counts.get(track.publication_id, 0) + track.frames
        return counts

    # -- consent actions (the signaling layer calls these) ------------------------------

    async def start(self, by: str, participants: list[str]) -> Transition:
        async with self._acting():
            transition = self.consent.start(by, participants)
            self._requested_at = self._clock()
            self._recording = None
            self._consents = []
            self._log(by, "agreed")
            await self._apply(transition)
            return transition

    async def agree(self, participant: str) -> Transition | None:
        async with self._acting():
            before = self.consent.answers.get(participant)
            transition = self.consent.consent(participant)
            if before is not Answer.AGREED:
                self._log(participant, "agreed")
            await self._apply(transition)
            return transition

    async def decline(self, participant: str) -> Transition:
        async with self._acting():
            transition = self.consent.decline(participant)
            self._log(participant, "declined")
            await self._apply(transition)
            return transition

    async def stop(self, by: str) -> Transition:
        async with self._acting():
            transition = self.consent.stop(by)
            await self._apply(transition)
            return transition

    async def join(self, participant: str) -> Transition | None:
        async with self._acting():
            transition = self.consent.join(participant)
            await self._apply(transition)
            return transition

    async def leave(self, participant: str) -> Transition | None:
        async with self._acting():
            transition = self.consent.leave(participant)
            await self._apply(transition)
            return transition

    @contextlib.asynccontextmanager
    async def _acting(self) -> AsyncIterator[None]:
        """One consent action at a time, on a loaded, open session."""
        async with self._lock:
            if self._closed:
                raise MediaError(f"room {self.room_id}: this recording session is closed")
            await self._load()
            yield

    def introduce(self, participant_id: str, *, name: str, role: str) -> None:
        """Who a participant id is, for the manifest's ``people`` (stored with the next change)."""
        self._people[participant_id] = Person(name=name, role=role)

    # -- publications -------------------------------------------------------------------

    def add_publication(self, publication_id: str, participant_id: str, kind: Kind) -> None:
        publication = PublicationInfo(publication_id, participant_id, kind)
        self._publications[publication_id] = publication
        if self._segment is not None and self.consent.writing_allowed:
            self._segment.listen(publication)

    async def remove_publication(self, publication_id: str) -> None:
        if self._publications.pop(publication_id, None) is None:
            return
        segment = self._segment
        if segment is not None:
            await segment.drop(publication_id)
            await self._write_manifest()

    # -- the node lets go, or the consultation ends -------------------------------------

    async def release(self) -> None:
        """This node lets go of the room: finish the files, keep the live state for the next."""
        if self._closed:
            return
        async with self._lock:
            self._closed = True
            if not self._loaded:  # never used here: the stored state is not ours to rewrite
                await self._tasks.aclose()
                return
            await self._end_segment(RELEASED_REASON)
            if self._recording is not None:
                await self._write_manifest()
            await self._save_state()
        await self._tasks.aclose()

    async def finish(self, reason: str) -> None:
        """The consultation ended: stop what runs, finish the files, forget the live state."""
        if self._closed:
            return
        async with self._lock:
            await self._load()
            self._closed = True
            if self.consent.state in _ACTIVE:
                await self._apply(self.consent.abort(reason))
            if self._store is not None:
                try:
                    await self._store.delete(self.room_id)
                except Exception:
                    logger.warning(
                        "room %s: recording state not deleted", self.room_id, exc_info=True
                    )
        await self._tasks.aclose()

    async def aclose(self) -> None:
        await self.release()

    # -- restoring ----------------------------------------------------------------------

    async def load(self) -> None:
        """Pick up what an earlier process left: the manifest on disk and the live state."""
        async with self._lock:
            await self._load()

    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        snapshot = await self._load_snapshot()
        continuing = snapshot.recording if snapshot and snapshot.state in _ACTIVE else 0
        disk = await asyncio.to_thread(read_disk, self._storage, self.directory, continuing)
        if disk.manifest is not None:
            self.manifest = disk.manifest
        self._last_segment = disk.last_segment
        self._last_recording = max((r.number for r in self.manifest.recordings), default=0)
        if snapshot is not None:
            self._restore(snapshot, continuing)
        if disk.changed:
            await self._write_manifest()
        if self.consent.state is RecordingState.RECORDING:
            logger.info("room %s: the recording goes on in a new segment", self.room_id)
            await self._begin_segment()
            await self._save_state()
            await self._write_manifest()

    async def _load_snapshot(self) -> RecordingSnapshot | None:
        if self._store is None:
            return None
        try:
            return await self._store.load(self.room_id)
        except Exception:
            logger.warning("room %s: recording state unreadable", self.room_id, exc_info=True)
            return None

    def _restore(self, snapshot: RecordingSnapshot, continuing: int) -> None:
        self.consent = consent_from(self.room_id, snapshot)
        self._requested_at = snapshot.requested_at.timestamp() if snapshot.requested_at else None
        self._consents = list(snapshot.consents)
        self._people = dict(snapshot.people) | self._people
        self._last_recording = max(self._last_recording, snapshot.last_recording)
        self._last_segment = max(self._last_segment, snapshot.last_segment)
        if snapshot.failure is not None and self.consent.state is RecordingState.STOPPED:
            self.failure = RecordingWriteError(snapshot.failure)
        if continuing:
            try:
                self._recording = self.manifest.recording(continuing)
            except ManifestError:  # written by a node with another disk
                self._recording = Recording(
                    number=continuing,
                    requested_by=snapshot.requested_by,
                    requested_at=snapshot.requested_at,
                    started_at=snapshot.recording_started_at or utc(self._clock()),
                )
                self.manifest.recordings.append(self._recording)
            self._recording.stopped_at = self._recording.stop_reason = None
        logger.info(
            "room %s: recording state restored (%s, recording %s)",
            self.room_id,
            self.consent.state.value,
            continuing or "none",
        )

    # -- effects ------------------------------------------------------------------------

    def _log(self, participant: str, answer: ConsentAnswer) -> None:
        entry = ConsentEntry(participant_id=participant, answer=answer, at=utc(self._clock()))
        self._consents = [*self._consents, entry][-MAX_CONSENT_LOG:]

    async def _apply(self, transition: Transition | None) -> None:
        recording = self._recording
        if transition is not None:
            old, new = transition.old, transition.new
            if old is RecordingState.RECORDING:
                await self._end_segment(
                    "paused" if new is RecordingState.PAUSED else transition.reason
                )
            if new is RecordingState.ASKING and old in (
                RecordingState.IDLE,
                RecordingState.STOPPED,
            ):
                self.failure = None  # a new request: the last one's failure is history
            if new is RecordingState.RECORDING:
                if old is RecordingState.ASKING:
                    recording = self._begin_recording()
                await self._begin_segment()
            if new is RecordingState.STOPPED:
                if recording is not None:
                    recording.stopped_at = utc(self._clock())
                    recording.stop_reason = transition.reason
                self._recording = None
        await self._save_state()
        if recording is not None:
            await self._write_manifest(recording)

    def _begin_recording(self) -> Recording:
        self._last_recording += 1
        self.failure = None
        self._recording = Recording(
            number=self._last_recording,
            requested_by=self.consent.requested_by,
            requested_at=utc(self._requested_at) if self._requested_at else None,
            started_at=utc(self._clock()),
        )
        self.manifest.recordings.append(self._recording)
        return self._recording

    async def _begin_segment(self) -> None:
        recording = self._recording
        if recording is None or self._segment is not None:
            return
        self._last_segment += 1
        segment = SegmentRecorder(
            room_id=self.room_id,
            recording=recording.number,
            number=self._last_segment,
            directory=self.directory,
            source=self._source,
            storage=self._storage,
            clock=self._clock,
            on_error=self._fail,
            on_new_file=self._write_manifest_soon,
        )
        self._segment = segment
        recording.segments.append(segment.segment)
        for publication in self._publications.values():
            segment.listen(publication)
        if not self._tasks.closed:
            self._flusher = self._tasks.spawn(self._flush_forever(), name="manifest flush")
        logger.info(
            "room %s: recording %d, segment %d begins",
            self.room_id,
            recording.number,
            segment.number,
        )

    async def _end_segment(self, reason: str) -> None:
        segment, self._segment = self._segment, None
        if segment is not None:
            segment.halt()  # before any await: not one more packet once consent is gone
        flusher, self._flusher = self._flusher, None
        if flusher is not None and flusher is not asyncio.current_task():
            await self._tasks.cancel(flusher)
        if segment is not None:
            await segment.aclose(reason)
            logger.info("room %s: segment %d ends (%s)", self.room_id, segment.number, reason)

    # -- state and manifest -------------------------------------------------------------

    async def _save_state(self) -> None:
        if self._store is None:
            return
        recording = self._recording
        snapshot = RecordingSnapshot(
            room_id=self.room_id,
            state=self.consent.state,
            requested_by=self.consent.requested_by,
            requested_at=utc(self._requested_at) if self._requested_at else None,
            answers=dict(self.consent.answers),
            agreed_before_leaving=sorted(self.consent.agreed_before_leaving),
            stop_reason=self.consent.stop_reason,
            failure=str(self.failure) if self.failure is not None else None,
            consents=self._consents,
            people=self._people,
            recording=recording.number if recording is not None else 0,
            recording_started_at=recording.started_at if recording is not None else None,
            last_recording=self._last_recording,
            last_segment=self._last_segment,
        )
        try:
            await self._store.save(snapshot)
        except Exception:  # the recording goes on; only a restart would lose track of it
            logger.warning("room %s: recording state not saved", self.room_id, exc_info=True)

    def _write_manifest_soon(self) -> None:
        """From a packet listener (sync): the write itself is a task of this session."""
        if not self._tasks.closed:
            self._tasks.spawn(self._write_manifest(), name="manifest write")

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval_s)
            await self._write_manifest()

    async def _write_manifest(self, recording: Recording | None = None) -> None:
        if not any(r.segments for r in self.manifest.recordings):
            return  # nothing recorded yet: nothing on disk either

        def prepare() -> None:  # the newest counts and consents, when the write's turn comes
            current = recording or self._recording
            if current is not None:
                current.consents = list(self._consents)
                current.people = {
                    p: self._people[p] for p in self._involved(current) if p in self._people
                }
            if self._segment is not None:
                self._segment.refresh()

        await self._manifest.write(self.manifest, prepare)

    def _involved(self, recording: Recording) -> set[str]:
        people = {c.participant_id for c in recording.consents}
        return people | {t.participant_id for t in recording.tracks()}

    # -- failures -----------------------------------------------------------------------

    def _task_failed(self, name: str, exc: BaseException) -> None:
        logger.error("room %s: %s failed", self.room_id, name, exc_info=exc)
        self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """A write failed: stop the recording (once) and tell the owner."""
        if self.failure is not None:
            return
        error = exc if isinstance(exc, RecordingWriteError) else RecordingWriteError(str(exc))
        self.failure = error
        logger.error("room %s: recording failed: %s", self.room_id, error)
        if not self._tasks.closed:
            self._tasks.spawn(self._stop_after_failure(error), name="stop after a failed write")

    async def _stop_after_failure(self, error: RecordingWriteError) -> None:
        transition: Transition | None = None
        async with self._lock:
            if self._closed:
                return
            if self.consent.state in _ACTIVE:
                transition = self.consent.abort(FAILED_REASON)
                await self._apply(transition)
        if self._on_failure is not None:
            await self._on_failure(error, transition)
