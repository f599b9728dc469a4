"""One room's captions: its listeners' languages and its speakers, published and stored.

Ownership (every task named, in a ``kernel.taskset.TaskSet``)::

    CaptionPipeline (room R)       TaskSet "captions room R": "stop P" per speaker at close
      SpeakerCaptions (speaker P)  TaskSet "captions room R speaker P": read, decode, translate

A speaker whose audio or recognition fails (see :mod:`interpretation.speaker`)
is shown as ``FAILED`` by :meth:`CaptionPipeline.status`, logged with room and
speaker, and reported to ``on_speaker_failed``; the other speakers go on, and
what that speaker said until then is still translated and stored. The owner
decides what comes next (``web.room_captions`` restarts a speaker once) with
``stop_speaker`` and, if it wants, ``start_speaker`` again.

Everything published or stored passes through :mod:`interpretation.redaction`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Final

from interpretation.errors import (
    IllegalTransition,
    PipelineClosed,
    SpeakerAlreadyCaptioned,
    SpeakerFailed,
)
from interpretation.events import CaptionEvent, CaptionKind, CaptionSink
from interpretation.recognizer import RecognitionPool, SpeechModels, SpeechStream
from interpretation.speaker import (
    CaptionLimits,
    CaptionTranslator,
    RoomContext,
    SpeakerCaptions,
    SpeakerStatus,
    StreamFactory,
)
from interpretation.transcript import TranscriptEntry, TranscriptStore
from kernel.languages import Language
from kernel.roles import Role
from kernel.taskset import TaskSet

log = logging.getLogger(__name__)

#: Told when a speaker's captions fail: (participant id, the error).
SpeakerFailedListener = Callable[[str, SpeakerFailed], None]


class PipelineState(enum.Enum):
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS: Final[Mapping[PipelineState, frozenset[PipelineState]]] = {
    PipelineState.RUNNING: frozenset({PipelineState.CLOSING}),
    PipelineState.CLOSING: frozenset({PipelineState.CLOSED}),
    PipelineState.CLOSED: frozenset(),
}


class CaptionPipeline:
    """Captions for one room. Create with :meth:`CaptionService.pipeline`; close with aclose()."""

    def __init__(
        self,
        room_id: str,
        sink: CaptionSink,
        *,
        models: SpeechModels,
        pool: RecognitionPool,
        translator: CaptionTranslator | None = None,
        transcripts: TranscriptStore | None = None,
        limits: CaptionLimits | None = None,
        on_speaker_failed: SpeakerFailedListener | None = None,
        clock: Callable[[], float] = time.time,
        stream_factory: StreamFactory = SpeechStream,
    ) -> None:
        self.room_id = room_id
        self._sink = sink
        self._transcripts = transcripts
        self._on_speaker_failed = on_speaker_failed
        self._clock = clock
        self._origin = clock()
        self._room = RoomContext(
            room_id=room_id,
            models=models,
            pool=pool,
            stream_factory=stream_factory,
            translator=translator,
            limits=limits or CaptionLimits(),
            clock=clock,
            caption_languages=lambda: self.caption_languages,
            deliver=self._deliver,
            store=self._store,
        )
        self._speakers: dict[str, SpeakerCaptions] = {}
        #: transcript appends running on a thread (awaited when a speaker stops)
        self._writes: set[asyncio.Future[None]] = set()
        self._listeners: dict[str, Language] = {}
        self._state = PipelineState.RUNNING
        self._closed = asyncio.Event()
        self._tasks = TaskSet(
            f"captions room {room_id}", close_bound_s=self._room.limits.close_bound_s
        )

    # -- state -------------------------------------------------------------

    def _set_state(self, new: PipelineState) -> None:
        if new not in _TRANSITIONS[self._state]:
            raise IllegalTransition(
                f"captions for room {self.room_id}: "
                f"cannot go from {self._state.value} to {new.value}"
            )
        log.info("captions room=%s: %s -> %s", self.room_id, self._state.value, new.value)
        self._state = new

    @property
    def state(self) -> PipelineState:
        return self._state

    @property
    def speakers(self) -> list[str]:
        return list(self._speakers)

    def status(self, participant_id: str) -> SpeakerStatus | None:
        """How captioning ``participant_id`` goes (None: not being captioned)."""
        sp = self._speakers.get(participant_id)
        return sp.status() if sp is not None else None

    def statuses(self) -> list[SpeakerStatus]:
        return [sp.status() for sp in self._speakers.values()]

    def task_names(self) -> list[str]:
        names = self._tasks.names()
        for sp in self._speakers.values():
            names += sp.task_names()
        return sorted(names)

    @property
    def caption_languages(self) -> set[Language]:
        return set(self._listeners.values())

    # -- listeners ---------------------------------------------------------

    def set_listener_language(self, participant_id: str, language: Language) -> None:
        """``participant_id`` wants translated captions in ``language`` (from now on)."""
        self._listeners[participant_id] = language
        log.info("captions room=%s listener=%s language=%s", self.room_id, participant_id, language)

    def remove_listener(self, participant_id: str) -> None:
        self._listeners.pop(participant_id, None)

    # -- speakers ----------------------------------------------------------

    def start_speaker(
        self,
        participant_id: str,
        name: str,
        language: Language,
        chunks: AsyncIterator[bytes],
        *,
        role: Role = Role.RESIDENT,
        kind: CaptionKind = "speech",
    ) -> bool:
        """Caption ``participant_id`` speaking ``language`` from 16 kHz s16le PCM ``chunks``.

        ``role`` labels their captions; ``kind`` is ``interpretation`` for an
        interpreter speaking on a channel. Returns False (and reads nothing) when
        there is no speech model for the language: that speaker gets no live captions.
        """
        if self._state is not PipelineState.RUNNING:
            raise PipelineClosed(
                f"captions for room {self.room_id} are closed; "
                "the room has to be opened again to caption it"
            )
        existing = self._speakers.get(participant_id)
        if existing is not None:
            raise SpeakerAlreadyCaptioned(
                f"{existing.where} is already being captioned ({existing.state.value}); "
                "stop their captions (stop_speaker) before starting them again"
            )
        if not self._room.models.has(language):
            log.info(
                "captions room=%s speaker=%s: no speech model for %s, no live captions",
                self.room_id,
                participant_id,
                language,
            )
            return False
        sp = SpeakerCaptions(
            self._room,
            participant_id,
            name,
            language,
            offset=self._clock() - self._origin,
            on_failed=self._speaker_failed,
            role=role,
            kind=kind,
        )
        self._speakers[participant_id] = sp
        sp.start(chunks)
        return True

    async def stop_speaker(self, participant_id: str) -> None:
        """Stop captioning ``participant_id``: the last final is delivered if it comes soon.

        Bounded (see ``SpeakerCaptions.stop``); finals not translated by then are
        stored without translations. No-op for a participant not captioned.
        """
        sp = self._speakers.get(participant_id)
        if sp is not None:
            await self._stop(sp)

    async def _stop(self, sp: SpeakerCaptions, *, flush_s: float | None = None) -> None:
        try:
            await sp.stop(flush_s=flush_s)
            await self._writes_done()
        finally:
            if self._speakers.get(sp.participant_id) is sp:
                del self._speakers[sp.participant_id]

    async def _writes_done(self) -> None:
        """Wait (bounded) for transcript appends still on their thread."""
        if not self._writes:
            return
        bound = self._room.limits.close_bound_s
        _done, late = await asyncio.wait(set(self._writes), timeout=bound)
        if late:
            log.error(
                "captions room=%s: %d transcript write(s) not done within %.1f s",
                self.room_id,
                len(late),
                bound,
            )

    def _speaker_failed(self, sp: SpeakerCaptions, error: SpeakerFailed) -> None:
        if self._speakers.get(sp.participant_id) is not sp or self._on_speaker_failed is None:
            return
        try:
            self._on_speaker_failed(sp.participant_id, error)
        except Exception:
            log.exception(
                "captions room=%s speaker=%s: on_speaker_failed raised",
                self.room_id,
                sp.participant_id,
            )

    async def aclose(self, *, flush_s: float | None = None) -> None:
        """Stop every speaker, concurrently and each bounded; none starts after this.

        ``flush_s``: how long to wait for the last finals (default: the limits').
        """
        if self._state is PipelineState.CLOSED:
            return
        if self._state is PipelineState.CLOSING:
            await self._closed.wait()
            return
        self._set_state(PipelineState.CLOSING)
        try:
            stops = [
                self._tasks.spawn(self._stop(sp, flush_s=flush_s), name=f"stop {sp.participant_id}")
                for sp in list(self._speakers.values())
            ]
            if stops:
                await asyncio.wait(stops)
        finally:
            await self._tasks.aclose()
            self._set_state(PipelineState.CLOSED)
            self._closed.set()

    # -- what speakers publish and store ---------------------------------------

    async def _deliver(self, event: CaptionEvent) -> None:
        try:
            await self._sink.publish(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("captions room=%s: sink failed for %s", self.room_id, event.id)

    async def _store(self, events: list[CaptionEvent]) -> None:
        """Append finals to the room's transcript on a thread; a failure is logged.

        The write is shielded: a speaker's task cancelled while it runs does not
        lose it, and stopping the speaker waits for it.
        """
        if self._transcripts is None or not events:
            return
        entries = [
            TranscriptEntry(
                id=e.id,
                speaker_id=e.speaker_id,
                speaker_name=e.speaker_name,
                language=e.language,
                text=e.text,
                start=e.start,
                end=e.end,
                translations=dict(e.translations),
                speaker_role=e.speaker_role.value,
                kind=e.kind,
            )
            for e in events
        ]
        write = asyncio.get_running_loop().run_in_executor(
            None, self._transcripts.append_all, self.room_id, entries
        )
        self._writes.add(write)
        speakers = ", ".join(sorted({e.speaker_id for e in entries}))

        def written(future: asyncio.Future[None]) -> None:
            self._writes.discard(future)
            exc = None if future.cancelled() else future.exception()
            if exc is not None:
                log.error(
                    "captions room=%s: could not store %d transcript line(s) of %s",
                    self.room_id,
                    len(entries),
                    speakers,
                    exc_info=exc,
                )

        write.add_done_callback(written)
        with contextlib.suppress(Exception):  # logged by written()
            await asyncio.shield(write)
