"""Captioning one speaker: read their audio, recognise it, translate and store each final.

A :class:`SpeakerCaptions` owns one ``kernel.taskset.TaskSet`` with three tasks:

* ``read``: pulls PCM from the audio tap into a bounded buffer, never waiting on
  recognition (so media is never held up; if decoding falls far behind, the
  oldest audio is dropped with a warning);
* ``decode``: hands the audio that has accumulated to the recognition pool, at
  most ``CaptionLimits.max_call_s`` of it per call and each call bounded in time
  (``recognition_s``), and publishes partials and finals;
* ``translate``: translates each final into every listener's caption language, in
  order and bounded (``translation_s``), publishes it again *settled* (every
  pending language translated or marked ``untranslated`` with the reason, see
  :mod:`interpretation.events`) and stores it.

If ``read`` or ``decode`` fails, the speaker goes to ``FAILED``: its error, a
:class:`~interpretation.errors.SpeakerFailed` with room and speaker in the
message, is logged and given to the owner's ``on_failed``. Nothing more is read,
but every final already recognised is still translated and stored.

States (enforced; an illegal move raises ``IllegalTransition``)::

    RUNNING -> ENDED | FAILED | STOPPING;  ENDED, FAILED -> STOPPING -> STOPPED
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from interpretation.errors import (
    AudioFailed,
    IllegalTransition,
    InterpretationError,
    RecognitionFailed,
    RecognitionStalled,
    SpeakerFailed,
)
from interpretation.events import CaptionEvent, CaptionKind, Translations, Untranslated
from interpretation.recognizer import (
    BYTES_PER_SECOND,
    RecognitionPool,
    Recognized,
    RecognizerStream,
    SpeechModels,
)
from interpretation.redaction import SpeechRedactor, redact
from kernel.languages import Language
from kernel.roles import Role
from kernel.taskset import TaskSet, raise_if_cancelling

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptionLimits:
    """The bounds of captioning one speaker (seconds)."""

    #: audio kept waiting for the decoder at most; older audio is dropped
    max_backlog_s: float = 20.0
    #: audio handed to the recognizer in one call at most (so each call's work is bounded)
    max_call_s: float = 2.0
    #: one recognition call (its wait for a thread included) longer than this fails the speaker
    recognition_s: float = 30.0
    #: translating one final longer than this: it is kept (and stored) untranslated
    translation_s: float = 15.0
    #: how long stopping waits for the last final and its translation
    flush_s: float = 5.0
    #: how long the tasks get to end once cancelled (``TaskSet`` bound)
    close_bound_s: float = 5.0


class CaptionTranslator(Protocol):
    """What captions need of a translator (``interpretation.translator.Translator``)."""

    async def translate_all(
        self, text: str, source: str, targets: Iterable[str]
    ) -> Translations: ...


StreamFactory = Callable[[Any], RecognizerStream]


@dataclass(frozen=True)
class RoomContext:
    """What every speaker of one room shares; built by ``CaptionPipeline``."""

    room_id: str
    models: SpeechModels
    pool: RecognitionPool
    stream_factory: StreamFactory
    translator: CaptionTranslator | None
    limits: CaptionLimits
    clock: Callable[[], float]
    #: the listeners' caption languages now
    caption_languages: Callable[[], set[Language]]
    #: publish one caption to the room (never raises but for cancellation)
    deliver: Callable[[CaptionEvent], Awaitable[None]]
    #: append finals to the transcript (never raises but for cancellation)
    store: Callable[[list[CaptionEvent]], Awaitable[None]]


class SpeakerState(enum.Enum):
    RUNNING = "running"  # reading, recognising, translating
    ENDED = "ended"  # the audio ended and everything recognised was delivered
    FAILED = "failed"  # reading or recognition died; what was recognised still flushes
    STOPPING = "stopping"  # delivering the last final and its translation
    STOPPED = "stopped"


_TRANSITIONS: Final[Mapping[SpeakerState, frozenset[SpeakerState]]] = {
    SpeakerState.RUNNING: frozenset(
        {SpeakerState.ENDED, SpeakerState.FAILED, SpeakerState.STOPPING}
    ),
    SpeakerState.ENDED: frozenset({SpeakerState.STOPPING}),
    SpeakerState.FAILED: frozenset({SpeakerState.STOPPING}),
    SpeakerState.STOPPING: frozenset({SpeakerState.STOPPED}),
    SpeakerState.STOPPED: frozenset(),
}


@dataclass(frozen=True)
class SpeakerStatus:
    participant_id: str
    language: Language
    state: SpeakerState
    #: why captions for this speaker stopped (``FAILED``)
    error: SpeakerFailed | None = None


class SpeakerCaptions:
    """Live captions for one participant in one room. Start with start(), end with stop()."""

    def __init__(
        self,
        room: RoomContext,
        participant_id: str,
        name: str,
        language: Language,
        *,
        offset: float,
        on_failed: Callable[[SpeakerCaptions, SpeakerFailed], None],
        role: Role = Role.RESIDENT,
        kind: CaptionKind = "speech",
    ) -> None:
        self._room = room
        self.participant_id = participant_id
        self.name = name
        self.language = language
        self.role = role
        self.kind = kind
        self._offset = offset  # seconds since the room's captions began
        self._on_failed = on_failed
        self.state = SpeakerState.RUNNING
        self.error: SpeakerFailed | None = None
        self._tasks = TaskSet(
            f"captions room {room.room_id} speaker {participant_id}",
            on_error=self._task_failed,
            close_bound_s=room.limits.close_bound_s,
        )
        self._buffer = bytearray()
        self._wake = asyncio.Event()
        self._ended = False
        self._recognised_all = False  # the decoder reached the end of the audio
        self._finals: asyncio.Queue[CaptionEvent | None] = asyncio.Queue()
        self._translating: CaptionEvent | None = None  # stored by whoever finishes with it
        self._counter = itertools.count(1)
        self._current_id: str | None = None
        self._redactor = SpeechRedactor()  # a number split across two captions too
        self._read: asyncio.Task[None] | None = None
        self._decode: asyncio.Task[None] | None = None
        self._translate: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    @property
    def where(self) -> str:
        return f"{self.participant_id} in room {self._room.room_id}"

    def status(self) -> SpeakerStatus:
        return SpeakerStatus(self.participant_id, self.language, self.state, self.error)

    def task_names(self) -> list[str]:
        return self._tasks.names()

    def _set_state(self, new: SpeakerState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"captions for {self.where}: cannot go from {self.state.value} to {new.value}"
            )
        log.info(
            "captions room=%s speaker=%s: %s -> %s",
            self._room.room_id,
            self.participant_id,
            self.state.value,
            new.value,
        )
        self.state = new

    # -- lifetime ------------------------------------------------------------

    def start(self, chunks: AsyncIterator[bytes]) -> None:
        """Start the three tasks on 16 kHz s16le mono PCM ``chunks``."""
        self._read = self._tasks.spawn(self._reading(chunks), name="read")
        self._decode = self._tasks.spawn(self._decoding(), name="decode")
        self._translate = self._tasks.spawn(self._translating_finals(), name="translate")

    async def stop(self, *, flush_s: float | None = None) -> None:
        """Stop reading; deliver the last final and its translation if they come soon.

        Bounded: ``close_bound_s`` twice plus ``flush_s`` (the limits', or the one
        given: a server that is stopping waits less). Finals whose translation did
        not finish by then are stored without it. A second caller waits for the first.
        """
        if self.state is SpeakerState.STOPPING:
            await self._stopped.wait()
            return
        if self.state is SpeakerState.STOPPED:
            return
        self._set_state(SpeakerState.STOPPING)
        try:
            if self._read is not None:
                await self._tasks.cancel(self._read)
            self._ended = True
            self._wake.set()
            await self._flush(self._room.limits.flush_s if flush_s is None else flush_s)
            await self._tasks.aclose()
            await self._store_unstored()
        finally:
            # (only does anything when this stop was itself cancelled)
            for task in (self._read, self._decode, self._translate):
                if task is not None:
                    task.cancel()
            self._set_state(SpeakerState.STOPPED)
            self._stopped.set()

    async def _flush(self, bound: float) -> None:
        flushing = {t for t in (self._decode, self._translate) if t is not None and not t.done()}
        if not flushing:
            return
        _done, late = await asyncio.wait(flushing, timeout=bound)
        if late:
            log.warning(
                "captions room=%s speaker=%s: %s not done %.1f s after stopping",
                self._room.room_id,
                self.participant_id,
                ", ".join(sorted(t.get_name() for t in late)),
                bound,
            )

    async def _store_unstored(self) -> None:
        """Store the finals recognised whose translation never finished."""
        unstored = [self._translating] if self._translating is not None else []
        self._translating = None
        while not self._finals.empty():
            event = self._finals.get_nowait()
            if event is not None:
                unstored.append(event)
        if unstored:
            log.warning(
                "captions room=%s speaker=%s: %d final(s) stored without translation",
                self._room.room_id,
                self.participant_id,
                len(unstored),
            )
            settled: list[CaptionEvent] = []
            for event in unstored:
                done = _settle(event, {}, dict.fromkeys(event.pending, Untranslated.TIMED_OUT))
                if done is not event:  # the pages stop waiting for its translation
                    await self._room.deliver(done)
                settled.append(done)
            await self._room.store(settled)

    def _task_failed(self, task_name: str, exc: BaseException) -> None:
        """A task raised (the TaskSet's ``on_error``, from its done callback)."""
        error = (
            exc
            if isinstance(exc, SpeakerFailed)
            else SpeakerFailed(f"captions for {self.where} stopped: {task_name} failed ({exc!r})")
        )
        if self.state is not SpeakerState.RUNNING:
            log.warning(
                "captions room=%s speaker=%s: %s (while %s)",
                self._room.room_id,
                self.participant_id,
                error,
                self.state.value,
                exc_info=exc,
            )
            return
        log.error(
            "captions room=%s speaker=%s: %s",
            self._room.room_id,
            self.participant_id,
            error,
            exc_info=exc,
        )
        self.error = error
        self._set_state(SpeakerState.FAILED)
        # Nothing more is read; what was heard is still decoded (if the decoder
        # lives), and every final recognised is still translated and stored.
        if self._read is not None:
            self._read.cancel()
        self._ended = True
        self._wake.set()
        self._on_failed(self, error)

    # -- tasks -----------------------------------------------------------------

    async def _reading(self, chunks: AsyncIterator[bytes]) -> None:
        limit = int(self._room.limits.max_backlog_s * BYTES_PER_SECOND)
        try:
            async for chunk in chunks:
                raise_if_cancelling()
                self._buffer.extend(chunk)
                if len(self._buffer) > limit:
                    drop = len(self._buffer) - limit
                    drop -= drop % 2
                    del self._buffer[:drop]
                    log.warning(
                        "captions room=%s speaker=%s: recognition behind, dropped %.1fs of audio",
                        self._room.room_id,
                        self.participant_id,
                        drop / BYTES_PER_SECOND,
                    )
                self._wake.set()
        except Exception as exc:
            raise AudioFailed(
                f"the audio of {self.where} stopped arriving ({exc!r}); "
                "captions for them resume when their audio is published again"
            ) from exc
        finally:
            self._ended = True
            self._wake.set()

    async def _decoding(self) -> None:
        room = self._room
        try:
            try:
                model = await room.pool.run(room.models.get, self.language)
                stream = await room.pool.run(room.stream_factory, model)
                most = int(room.limits.max_call_s * BYTES_PER_SECOND)
                most -= most % 2
                while True:
                    raise_if_cancelling()
                    size = min(len(self._buffer), most)
                    size -= size % 2
                    if size:
                        data = bytes(self._buffer[:size])
                        del self._buffer[:size]
                        await self._publish(await self._recognise(stream, data))
                    elif self._ended:
                        await self._publish(await self._recognise(stream, None))
                        self._recognised_all = True
                        return
                    else:
                        self._wake.clear()
                        await self._wake.wait()
            except SpeakerFailed:
                raise
            except Exception as exc:
                raise RecognitionFailed(
                    f"speech recognition for {self.where} ({self.language}) failed ({exc!r}); "
                    "captions for them resume when their audio is published again"
                ) from exc
        finally:
            self._finals.put_nowait(None)

    async def _recognise(self, stream: RecognizerStream, data: bytes | None) -> list[Recognized]:
        """``stream.accept(data)`` (``finish()`` for None) on the pool, bounded."""
        pool = self._room.pool
        bound = self._room.limits.recognition_s
        try:
            async with asyncio.timeout(bound):
                if data is None:
                    return await pool.run(stream.finish)
                return await pool.run(stream.accept, data)
        except TimeoutError:
            raise RecognitionStalled(
                f"speech recognition for {self.where} did not answer within {bound:.1f} s: "
                f"the {pool.workers} recognition thread(s) are overloaded or stuck "
                "(set SEOULBRIDGE_CAPTION_WORKERS higher, or caption fewer speakers per node)"
            ) from None

    async def _publish(self, results: list[Recognized]) -> None:
        for r in results:
            if self._current_id is None:
                self._current_id = f"{self.participant_id}-{next(self._counter)}"
            pending: tuple[Language, ...] = ()
            untranslated: dict[Language, Untranslated] = {}
            if r.final:
                targets = sorted(self._room.caption_languages() - {self.language})
                if self._room.translator is None:
                    untranslated = dict.fromkeys(targets, Untranslated.NOT_INSTALLED)
                else:
                    pending = tuple(targets)
            event = CaptionEvent(
                room_id=self._room.room_id,
                id=self._current_id,
                speaker_id=self.participant_id,
                speaker_name=self.name,
                language=self.language,
                text=self._redactor.final(r.text) if r.final else self._redactor.partial(r.text),
                final=r.final,
                start=round(self._offset + r.start, 3),
                end=round(self._offset + r.end, 3),
                ts=self._room.clock(),
                speaker_role=self.role,
                kind=self.kind,
                pending=pending,
                untranslated=untranslated,
            )
            if r.final:
                self._current_id = None
                self._finals.put_nowait(event)
            await self._room.deliver(event)

    async def _translating_finals(self) -> None:
        while True:
            raise_if_cancelling()
            event = await self._finals.get()
            if event is None:
                if self._recognised_all and self.state is SpeakerState.RUNNING:
                    self._set_state(SpeakerState.ENDED)
                return
            self._translating = event
            translated = await self._with_translations(event)
            if translated is not event:
                self._translating = translated
                await self._room.deliver(translated)
            self._translating = None  # from here on the store below owns it
            await self._room.store([translated])

    async def _with_translations(self, event: CaptionEvent) -> CaptionEvent:
        """``event`` settled: translated into the listeners' languages, or told why not.

        Itself when nothing was pending and no listener reads another language.
        """
        room = self._room
        targets = (set(event.pending) | room.caption_languages()) - {event.language}
        if not targets:
            return event
        if room.translator is None:
            return _settle(event, {}, dict.fromkeys(targets, Untranslated.NOT_INSTALLED))
        bound = room.limits.translation_s
        failed = dict.fromkeys(targets, Untranslated.FAILED)
        try:
            async with asyncio.timeout(bound):
                raw = await room.translator.translate_all(event.text, event.language, targets)
        except TimeoutError:
            log.warning(
                "captions room=%s speaker=%s: translating %s took over %.1f s; kept untranslated",
                room.room_id,
                self.participant_id,
                event.id,
                bound,
            )
            return _settle(event, {}, dict.fromkeys(targets, Untranslated.TIMED_OUT))
        except InterpretationError as exc:
            log.warning(
                "captions room=%s speaker=%s: %s not translated: %s",
                room.room_id,
                self.participant_id,
                event.id,
                exc,
            )
            return _settle(event, {}, failed)
        except Exception:
            log.exception(
                "captions room=%s speaker=%s: translation of %s failed",
                room.room_id,
                self.participant_id,
                event.id,
            )
            return _settle(event, {}, failed)
        translations: dict[Language, str] = {}
        missing: dict[Language, Untranslated] = {}
        for lang in sorted(targets):
            text = raw.texts.get(lang)
            if text:
                translations[lang] = redact(text)
            else:
                missing[lang] = raw.missing.get(lang, Untranslated.FAILED)
        return dataclasses.replace(_settle(event, translations, missing), ts=room.clock())


def _settle(
    event: CaptionEvent,
    translations: Mapping[Language, str],
    missing: Mapping[Language, Untranslated],
) -> CaptionEvent:
    """``event`` with nothing pending any more (itself if nothing was)."""
    if not event.pending and not translations and not missing:
        return event
    return dataclasses.replace(
        event,
        translations=dict(translations),
        untranslated={**event.untranslated, **missing},
        pending=(),
    )
