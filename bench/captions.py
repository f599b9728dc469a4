"""Caption latency and capacity on this machine.

    .venv/bin/python bench/captions.py [--max-speakers 8] [--quick]

Prints:
* end of speech -> final caption delivered, and -> translated caption delivered
  (Korean espeak-ng speech played in real time through the whole pipeline: tap
  iterator -> Vosk on the recognition pool -> redaction -> sink; translation with a
  tiny random Argos package ko->en and, by pivot, ko->ja);
* the real-time factor of recognition on one core;
* how many concurrent speakers are captioned in real time (final caption within
  1.5 s of the end of each utterance, no audio dropped).

Not part of the test run. Other engineers share the cores: figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interpretation.events import CaptionEvent  # noqa: E402
from interpretation.glossary import GlossaryStore  # noqa: E402
from interpretation.packages import PackageStore, configure_argos_environment  # noqa: E402
from interpretation.pipeline import CaptionPipeline  # noqa: E402
from interpretation.recognizer import (  # noqa: E402
    BYTES_PER_SECOND,
    SAMPLE_RATE,
    RecognitionPool,
    SpeechModels,
    SpeechStream,
)
from interpretation.translator import Translator  # noqa: E402

UTTERANCES = [
    "가족관계증명서를 발급받고 싶습니다",
    "병역 문제로 상담하고 싶어요",
    "재외국민등록은 어떻게 하나요",
]
GAP_S = 1.5
CHUNK_S = 0.02
REALTIME_BOUND_S = 1.5


def make_speech(workdir: Path) -> tuple[bytes, list[float]]:
    """PCM of the utterances separated by silence, and the stream time each one ends."""
    from tests.interpretation.speech_fixture import korean_wav, wav_pcm

    pcm = bytearray()
    ends: list[float] = []
    for i, text in enumerate(UTTERANCES):
        wav = korean_wav(workdir / f"u{i}.wav", text, pad_s=0.0)
        samples = np.frombuffer(wav_pcm(wav), dtype="<i2")
        loud = np.nonzero(np.abs(samples.astype(np.int32)) > 300)[0]
        last = int(loud[-1]) + 1 if len(loud) else len(samples)
        ends.append((len(pcm) // 2 + last) / SAMPLE_RATE)
        pcm += samples.tobytes()
        pcm += b"\0\0" * int(GAP_S * SAMPLE_RATE)
    return bytes(pcm), ends


class TimingSink:
    def __init__(self) -> None:
        self.events: list[tuple[float, CaptionEvent]] = []

    async def publish(self, event: CaptionEvent) -> None:
        self.events.append((time.perf_counter(), event))


async def realtime(pcm: bytes, started: float) -> AsyncIterator[bytes]:
    """Yield 20 ms chunks on the wall clock, as a live tap would."""
    step = int(BYTES_PER_SECOND * CHUNK_S)
    for n, i in enumerate(range(0, len(pcm), step)):
        delay = started + n * CHUNK_S - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        yield pcm[i : i + step]


def latencies(
    sink: TimingSink, speaker: str, ends: list[float], started: float
) -> tuple[list[float], list[float]]:
    finals = [(t, e) for t, e in sink.events if e.final and e.speaker_id == speaker]
    to_final: list[float] = []
    to_translated: list[float] = []
    for end in ends:
        spoken_at = started + end
        first = next((t for t, e in finals if e.end >= end - 0.4), None)
        translated = next((t for t, e in finals if e.end >= end - 0.4 and e.translations), None)
        if first is not None:
            to_final.append(first - spoken_at)
        if translated is not None:
            to_translated.append(translated - spoken_at)
    return to_final, to_translated


async def run_room(
    n_speakers: int,
    pcm: bytes,
    ends: list[float],
    models: SpeechModels,
    pool: RecognitionPool,
    translator: Translator | None,
) -> tuple[list[float], list[float]]:
    sink = TimingSink()
    pipeline = CaptionPipeline("bench", sink, models=models, pool=pool, translator=translator)
    pipeline.set_listener_language("listener-ja", "ja")
    pipeline.set_listener_language("listener-en", "en")
    started = time.perf_counter() + 0.05
    for s in range(n_speakers):
        pipeline.start_speaker(f"s{s}", f"Speaker {s}", "ko", realtime(pcm, started))
    await asyncio.sleep(len(pcm) / BYTES_PER_SECOND + 0.2)
    deadline = time.perf_counter() + 5
    while time.perf_counter() < deadline:
        done = [latencies(sink, f"s{s}", ends, started) for s in range(n_speakers)]
        if all(len(f) == len(ends) and len(t) == len(ends) for f, t in done):
            break
        await asyncio.sleep(0.05)
    await pipeline.aclose()
    all_final: list[float] = []
    all_translated: list[float] = []
    for s in range(n_speakers):
        f, t = latencies(sink, f"s{s}", ends, started)
        all_final += f + [float("inf")] * (len(ends) - len(f))
        all_translated += t
    return all_final, all_translated


def rtf(pcm: bytes, models: SpeechModels) -> tuple[float, float, float]:
    """Real-time factor over the whole stream and over the audio Vosk actually decoded
    (wall clock), and CPU seconds per second of decoded speech (thread CPU time, which
    other processes on the machine do not inflate)."""
    stream = SpeechStream(models.get("ko"))
    started, cpu = time.perf_counter(), time.thread_time()
    step = BYTES_PER_SECOND // 5
    for i in range(0, len(pcm), step):
        stream.accept(pcm[i : i + step])
    stream.finish()
    took, cpu = time.perf_counter() - started, time.thread_time() - cpu
    decoded = max(stream.decoded_s, 1e-9)
    return took / (len(pcm) / BYTES_PER_SECOND), took / decoded, cpu / decoded


def decoded_fraction(pcm: bytes, models: SpeechModels) -> float:
    stream = SpeechStream(models.get("ko"))
    stream.accept(pcm)
    stream.finish()
    return stream.decoded_s / (len(pcm) / BYTES_PER_SECOND)


def fmt(values: list[float]) -> str:
    finite = [v for v in values if v != float("inf")]
    if not finite:
        return "none delivered"
    missing = len(values) - len(finite)
    text = f"median {statistics.median(finite):.2f} s, max {max(finite):.2f} s (n={len(finite)})"
    return text + (f", {missing} missing" if missing else "")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-speakers", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="one latency run, speakers 1,2,4")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-captions-"))
    configure_argos_environment(work / "argos")
    from tests.interpretation.argos_fixture import build_argos_package

    store = PackageStore(work / "argos" / "packages")
    for pair in [("ko", "en"), ("en", "ja")]:
        store.install(build_argos_package(work, *pair))
    translator = Translator(store, GlossaryStore(work / "glossary.json"))

    pcm, ends = make_speech(work)
    audio_s = len(pcm) / BYTES_PER_SECOND
    cores = os.cpu_count() or 1
    print(f"cores: {cores}; speech: {len(UTTERANCES)} utterances, {audio_s:.1f} s with pauses")

    models = SpeechModels()
    t = time.perf_counter()
    models.get("ko")
    print(f"Korean model load: {time.perf_counter() - t:.1f} s (once per process)")
    whole, decoded, cpu = rtf(pcm, models)
    print(
        f"real-time factor on one core: {whole:.2f} over the stream with pauses, "
        f"{decoded:.2f} over the speech decoded (silence is skipped)"
    )
    print(
        f"CPU per second of speech: {cpu:.2f} s -> an idle machine captions about "
        f"{cores / cpu:.1f} people speaking without pause at once, "
        f"{cores / (cpu * decoded_fraction(pcm, models)):.1f} with this stream's pauses"
    )

    pool = RecognitionPool()
    try:
        final, translated = await run_room(1, pcm, ends, models, pool, translator)
        print(f"end of speech -> final caption:      {fmt(final)}")
        print(f"end of speech -> translated caption: {fmt(translated)}")

        levels = (
            [1, 2, 4] if args.quick else [n for n in (2, 3, 4, 5, 6, 8) if n <= args.max_speakers]
        )
        best = 0
        for n in levels:
            final, translated = await run_room(n, pcm, ends, models, pool, translator)
            worst = max(final)
            ok = worst <= REALTIME_BOUND_S
            print(
                f"{n} concurrent speakers: final {fmt(final)}; translated {fmt(translated)}"
                f" -> {'real time' if ok else 'falls behind'}"
            )
            if ok:
                best = n
            else:
                break
        print(f"concurrent speakers captioned in real time on {cores} cores: {best}")
    finally:
        await translator.aclose()
        await asyncio.to_thread(pool.shutdown)


if __name__ == "__main__":
    asyncio.run(main())
