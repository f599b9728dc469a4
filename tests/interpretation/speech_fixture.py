"""Korean test speech made by espeak-ng, as a WAV that Chromium and Vosk both accept."""

from __future__ import annotations

import asyncio
import fractions
import shutil
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame

KOREAN_SENTENCE = "안녕하세요. 가족관계증명서를 발급받고 싶습니다."


def korean_wav(
    path: Path, text: str = KOREAN_SENTENCE, *, rate: int = 16_000, pad_s: float = 0.5
) -> Path:
    """Speak ``text`` with espeak-ng into a mono s16le WAV at ``rate``.

    ``pad_s`` seconds of silence follow the speech, so an endpoint can be found.
    """
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        raise RuntimeError("espeak-ng and sox are needed to make test speech")
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), text], check=True)
    subprocess.run(
        [
            "sox",
            str(raw),
            "-r",
            str(rate),
            "-c",
            "1",
            "-b",
            "16",
            str(path),
            "pad",
            "0.2",
            str(pad_s),
        ],
        check=True,
    )
    raw.unlink()
    return path


def wav_pcm(path: Path) -> bytes:
    """The s16le samples of a mono WAV."""
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())


async def pcm_chunks(
    pcm: bytes, chunk_s: float = 0.02, *, speed: float | None = None
) -> AsyncIterator[bytes]:
    """``pcm`` in ``chunk_s`` pieces: as fast as they are taken, or ``speed`` x real time."""
    step = int(16_000 * 2 * chunk_s)
    for n, i in enumerate(range(0, len(pcm), step)):
        yield pcm[i : i + step]
        if speed is not None:
            await asyncio.sleep(chunk_s / speed)
        elif n % 10 == 0:
            await asyncio.sleep(0)


class WavAudioTrack(MediaStreamTrack):
    """An aiortc audio track that speaks ``pcm`` (16 kHz mono s16le) in real time, looping."""

    kind = "audio"

    def __init__(self, pcm: bytes, rate: int = 16_000) -> None:
        super().__init__()
        self._pcm, self._rate = pcm, rate
        self._samples = rate // 50  # 20 ms
        self._pos = 0
        self._start: float | None = None
        self._sent = 0

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._sent / self._rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        n = self._samples * 2
        chunk = self._pcm[self._pos : self._pos + n]
        self._pos = (self._pos + n) % len(self._pcm)
        chunk = chunk.ljust(n, b"\0")
        frame = AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(chunk)
        frame.pts = self._sent
        frame.sample_rate = self._rate
        frame.time_base = fractions.Fraction(1, self._rate)
        self._sent += self._samples
        return frame
