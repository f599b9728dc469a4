"""Fakes that fail on purpose, around the real things (as LiveKit Agents' ``FakeSTT``).

Each wraps the real object and only adds the failure: a recognizer stream that
raises or hangs after it has produced a number of finals (so the real Vosk
results before it are real), a translator that raises or is slow, an audio tap
that raises after a number of chunks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any

from interpretation.events import Translations
from interpretation.recognizer import BYTES_PER_SECOND, Recognized, SpeechStream
from media.errors import MediaError


class FakeStreams:
    """A ``stream_factory`` whose first ``failing`` streams fail; later ones are plain Vosk.

    A failing stream is a real :class:`SpeechStream` until it has returned
    ``after_finals`` finals; on the next call it raises ``fake_exception`` or,
    with ``fake_hang``, blocks its worker thread until :meth:`release` (at most
    ``max_hang_s``), as a stuck decoder would.
    """

    def __init__(
        self,
        *,
        failing: int = 1,
        after_finals: int = 1,
        fake_exception: Exception | None = None,
        fake_hang: bool = False,
        max_hang_s: float = 30.0,
    ) -> None:
        self._failing = failing
        self._after_finals = after_finals
        self._exception = fake_exception or RuntimeError("fake decoder failure")
        self._hang = fake_hang
        self._max_hang_s = max_hang_s
        self._released = threading.Event()
        self.hanging = threading.Event()  # set while a call is stuck
        self.created = 0

    def __call__(self, model: Any) -> _FakeStream | SpeechStream:
        self.created += 1
        if self.created > self._failing:
            return SpeechStream(model)
        return _FakeStream(SpeechStream(model), self)

    def release(self) -> None:
        self._released.set()

    def fail(self) -> None:
        """Called from a worker thread instead of decoding."""
        if self._hang:
            self.hanging.set()
            self._released.wait(self._max_hang_s)
            raise RuntimeError("fake decoder released after hanging")
        raise self._exception


class _FakeStream:
    def __init__(self, real: SpeechStream, owner: FakeStreams) -> None:
        self._real = real
        self._owner = owner
        self._finals = 0

    def _count(self, results: list[Recognized]) -> list[Recognized]:
        self._finals += sum(1 for r in results if r.final)
        return results

    def accept(self, pcm: bytes) -> list[Recognized]:
        """Real results, but never past the ``after_finals``-th final: then it fails."""
        if self._finals >= self._owner._after_finals:
            self._owner.fail()
        out: list[Recognized] = []
        step = BYTES_PER_SECOND // 10
        for i in range(0, len(pcm), step):
            out += self._count(self._real.accept(pcm[i : i + step]))
            if self._finals >= self._owner._after_finals:
                break  # the rest of this audio is never decoded
        return out

    def finish(self) -> list[Recognized]:
        if self._finals >= self._owner._after_finals:
            self._owner.fail()
        return self._count(self._real.finish())


class FakeTranslator:
    """Wraps a real translator; the first ``failing`` calls raise or are slow."""

    def __init__(
        self,
        real: Any,
        *,
        failing: int = 1_000_000,
        fake_exception: Exception | None = None,
        fake_delay_s: float = 0.0,
    ) -> None:
        self._real = real
        self._failing = failing
        self._exception = fake_exception
        self._delay_s = fake_delay_s
        self.calls = 0

    async def translate_all(self, text: str, source: str, targets: Iterable[str]) -> Translations:
        self.calls += 1
        if self.calls <= self._failing:
            if self._delay_s:
                await asyncio.sleep(self._delay_s)
            if self._exception is not None:
                raise self._exception
        result: Translations = await self._real.translate_all(text, source, targets)
        return result


class FakeTap:
    """An ``AudioTap`` that plays ``pcm`` in 20 ms chunks, raising after ``fail_after`` chunks."""

    def __init__(self, pcm: bytes, *, fail_after: int | None = None) -> None:
        self._pcm = pcm
        self._fail_after = fail_after
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        step = BYTES_PER_SECOND // 50
        for n, i in enumerate(range(0, len(self._pcm), step)):
            if self._fail_after is not None and n >= self._fail_after:
                raise MediaError("fake tap: the decoder of this publication broke")
            if self.closed:
                return
            yield self._pcm[i : i + step]
            if n % 10 == 0:
                await asyncio.sleep(0)

    async def aclose(self) -> None:
        self.closed = True
