"""One room's captions: recognise each speaker, translate finals, publish, keep a transcript.

Per speaker, three owned tasks:

* ``read``: pulls PCM from the audio tap into a bounded buffer, never waiting on
  recognition (so media is never held up; if decoding falls far behind, the
  oldest audio is dropped with a warning);
* ``decode``: hands whatever audio has accumulated to the recognition pool and
  publishes partials and finals;
* ``translate``: translates each final into every listener's caption language, in
  order, publishes it again with translations and appends it to the transcript.

Everything published or stored passes through :mod:`interpretation.redaction`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from interpretation.events import CaptionEvent, CaptionSink
from interpretation.recognizer import (
    BYTES_PER_SECOND,
    RecognitionPool,
    Recognized,
    SpeechModels,
    SpeechStream,
)
from interpretation.redaction import redact, redact_partial
from interpretation.transcript import TranscriptEntry, TranscriptStore
from interpretation.translator import Translator

log = logging.getLogger(__name__)

#: Audio kept waiting for the decoder at most; older audio is dropped.
MAX_BACKLOG_S = 20.0
#: How long stopping a speaker waits for the last final and its translation.
FLUSH_TIMEOUT_S = 5.0


class PipelineState(enum.Enum):
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass
class _Speaker:
    participant_id: str
    name: str
    language: str
    offset: float  # seconds since the pipeline began when this stream started
    buffer: bytearray = field(default_factory=bytearray)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    finals: asyncio.Queue[CaptionEvent | None] = field(default_factory=asyncio.Queue)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    current_id: str | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        except Exception:
            log.exception("caption task %s failed", task.get_name())


class CaptionPipeline:
    """Captions for one room. Create with :meth:`CaptionService.pipeline`; close with aclose()."""

    def __init__(
        self,
        room_id: str,
        sink: CaptionSink,
        *,
        models: SpeechModels,
        pool: RecognitionPool,
        translator: Translator | None = None,
        transcripts: TranscriptStore | None = None,
        clock: Callable[[], float] = time.time,
        stream_factory: Callable[[Any], SpeechStream] = SpeechStream,
    ) -> None:
        self.room_id = room_id
        self._sink = sink
        self._models = models
        self._pool = pool
        self._translator = translator
        self._transcripts = transcripts
        self._clock = clock
        self._stream_factory = stream_factory
        self._origin = clock()
        self._speakers: dict[str, _Speaker] = {}
        self._listeners: dict[str, str] = {}
        self._state = PipelineState.RUNNING

    # -- state -------------------------------------------------------------

    def _set_state(self, state: PipelineState) -> None:
        log.debug("captions room=%s %s -> %s", self.room_id, self._state.value, state.value)
        self._state = state

    @property
    def speakers(self) -> list[str]:
        return list(self._speakers)

    @property
    def caption_languages(self) -> set[str]:
        return set(self._listeners.values())

    # -- listeners ---------------------------------------------------------

    def set_listener_language(self, participant_id: str, language: str) -> None:
        """``participant_id`` wants translated captions in ``language`` (from now on)."""
        self._listeners[participant_id] = language
        log.info("captions room=%s listener=%s language=%s", self.room_id, participant_id, language)

    def remove_listener(self, participant_id: str) -> None:
        self._listeners.pop(participant_id, None)

    # -- speakers ----------------------------------------------------------

    def start_speaker(
        self, participant_id: str, name: str, language: str, chunks: AsyncIterator[bytes]
    ) -> bool:
        """Caption ``participant_id`` speaking ``language`` from 16 kHz s16le PCM ``chunks``.

        Returns False (and reads nothing) when there is no speech model for the
        language: that speaker gets no live captions.
        """
        if self._state is not PipelineState.RUNNING:
            raise RuntimeError(f"caption pipeline for room {self.room_id} is closed")
        if participant_id in self._speakers:
            raise ValueError(f"{participant_id} is already being captioned in {self.room_id}")
        if not self._models.has(language):
            log.info(
                "captions room=%s speaker=%s: no speech model for %s, no live captions",
                self.room_id,
                participant_id,
                language,
            )
            return False
        sp = _Speaker(participant_id, name, language, offset=self._clock() - self._origin)
        self._speakers[participant_id] = sp
        tag = f"{self.room_id}:{participant_id}"
        sp.tasks = [
            self._spawn(self._read(sp, chunks), f"captions-read:{tag}"),
            self._spawn(self._decode(sp), f"captions-decode:{tag}"),
            self._spawn(self._translate(sp), f"captions-translate:{tag}"),
        ]
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return asyncio.create_task(coro, name=name)

    async def stop_speaker(self, participant_id: str) -> None:
        """Stop reading; deliver the last final (and its translation) if it comes soon."""
        sp = self._speakers.pop(participant_id, None)
        if sp is None:
            return
        read, decode, translate = sp.tasks
        await _cancel_and_wait([read])
        sp.ended = True
        sp.wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait({decode, translate}, timeout=FLUSH_TIMEOUT_S)
        await _cancel_and_wait([decode, translate])

    async def aclose(self) -> None:
        if self._state is PipelineState.CLOSED:
            return
        self._set_state(PipelineState.CLOSING)
        await asyncio.gather(*(self.stop_speaker(pid) for pid in list(self._speakers)))
        self._set_state(PipelineState.CLOSED)

    # -- tasks -------------------------------------------------------------

    async def _read(self, sp: _Speaker, chunks: AsyncIterator[bytes]) -> None:
        limit = int(MAX_BACKLOG_S * BYTES_PER_SECOND)
        try:
            async for chunk in chunks:
                sp.buffer.extend(chunk)
                if len(sp.buffer) > limit:
                    drop = len(sp.buffer) - limit
                    drop -= drop % 2
                    del sp.buffer[:drop]
                    log.warning(
                        "captions room=%s speaker=%s: recognition behind, dropped %.1fs of audio",
                        self.room_id,
                        sp.participant_id,
                        drop / BYTES_PER_SECOND,
                    )
                sp.wake.set()
        finally:
            sp.ended = True
            sp.wake.set()

    async def _decode(self, sp: _Speaker) -> None:
        try:
            model = await self._pool.run(self._models.get, sp.language)
            stream: SpeechStream = await self._pool.run(self._stream_factory, model)
            while True:
                await sp.wake.wait()
                sp.wake.clear()
                data = bytes(sp.buffer[: len(sp.buffer) - len(sp.buffer) % 2])
                del sp.buffer[: len(data)]
                if data:
                    results: list[Recognized] = await self._pool.run(stream.accept, data)
                    await self._publish_results(sp, results)
                if sp.ended and not sp.buffer:
                    await self._publish_results(sp, await self._pool.run(stream.finish))
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "captions room=%s speaker=%s: recognition stopped", self.room_id, sp.participant_id
            )
        finally:
            sp.finals.put_nowait(None)

    async def _publish_results(self, sp: _Speaker, results: list[Recognized]) -> None:
        for r in results:
            if sp.current_id is None:
                sp.current_id = f"{sp.participant_id}-{next(sp.counter)}"
            event = CaptionEvent(
                room_id=self.room_id,
                id=sp.current_id,
                speaker_id=sp.participant_id,
                speaker_name=sp.name,
                language=sp.language,
                text=redact(r.text) if r.final else redact_partial(r.text),
                final=r.final,
                start=round(sp.offset + r.start, 3),
                end=round(sp.offset + r.end, 3),
                ts=self._clock(),
            )
            if r.final:
                sp.current_id = None
                sp.finals.put_nowait(event)
            await self._deliver(event)

    async def _translate(self, sp: _Speaker) -> None:
        while True:
            event = await sp.finals.get()
            if event is None:
                return
            translations: dict[str, str] = {}
            targets = self.caption_languages - {event.language}
            if self._translator is not None and targets:
                try:
                    raw = await self._translator.translate_many(event.text, event.language, targets)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception(
                        "captions room=%s speaker=%s: translation failed",
                        self.room_id,
                        sp.participant_id,
                    )
                    raw = {}
                translations = {lang: redact(text) for lang, text in raw.items()}
                if translations:
                    event = event.model_copy(
                        update={"translations": translations, "ts": self._clock()}
                    )
                    await self._deliver(event)
            await self._store(event)

    async def _deliver(self, event: CaptionEvent) -> None:
        try:
            await self._sink.publish(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("captions room=%s: sink failed for %s", self.room_id, event.id)

    async def _store(self, event: CaptionEvent) -> None:
        if self._transcripts is None:
            return
        entry = TranscriptEntry(
            id=event.id,
            speaker_id=event.speaker_id,
            speaker_name=event.speaker_name,
            language=event.language,
            text=event.text,
            start=event.start,
            end=event.end,
            translations=event.translations,
        )
        await asyncio.to_thread(self._transcripts.append, self.room_id, entry)
