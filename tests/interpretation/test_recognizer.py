"""Vosk turns Korean speech (espeak-ng) into Hangul, with partials and a final."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from interpretation.errors import ModelNotAvailable
from interpretation.recognizer import (
    BYTES_PER_SECOND,
    RecognitionPool,
    Recognized,
    SpeechModels,
    SpeechStream,
    clean_text,
)
from tests.interpretation.speech_fixture import wav_pcm

HANGUL = re.compile(r"[가-힣]")


def test_model_is_loaded_once(speech_models: SpeechModels) -> None:
    assert "ko" in speech_models.languages()
    assert speech_models.get("ko") is speech_models.get("ko")
    with pytest.raises(ModelNotAvailable):
        speech_models.get("xx")


def test_configured_directory_that_is_missing(tmp_path: Path) -> None:
    models = SpeechModels({"ja": tmp_path / "nope"})
    assert models.languages() == ["ja", "ko"]
    with pytest.raises(ModelNotAvailable, match="not a directory"):
        models.get("ja")


async def test_korean_speech_becomes_hangul(
    speech_models: SpeechModels, korean_speech: Path
) -> None:
    pcm = wav_pcm(korean_speech)
    stream = SpeechStream(speech_models.get("ko"))
    pool = RecognitionPool(1)
    results: list[Recognized] = []
    chunk = BYTES_PER_SECOND // 10
    try:
        for i in range(0, len(pcm), chunk):
            results.extend(await pool.run(stream.accept, pcm[i : i + chunk]))
        results.extend(await pool.run(stream.finish))
    finally:
        pool.shutdown()
    finals = [r for r in results if r.final]
    partials = [r for r in results if not r.final]
    assert finals, results
    text = " ".join(f.text for f in finals)
    assert len(HANGUL.findall(text)) >= 5, text
    assert partials
    # a partial at least every 0.5 s of speech until the final
    times = [p.end for p in partials if p.end <= finals[0].end]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps, default=0.0) <= 0.5 + 1e-6
    first = finals[0]
    assert 0.0 <= first.start < first.end <= len(pcm) / BYTES_PER_SECOND + 0.01


def test_non_speech_markers_are_dropped() -> None:
    assert clean_text("I [0] - [1]") == "I"
    assert clean_text("번호 는 [noise] 공일공-일이") == "번호 는 공일공-일이"
    assert clean_text("  ") == ""


def test_results_do_not_depend_on_how_audio_is_batched(
    speech_models: SpeechModels, korean_speech: Path
) -> None:
    pcm = wav_pcm(korean_speech)

    def run(chunk: int) -> list[tuple[bool, float, float]]:
        stream = SpeechStream(speech_models.get("ko"))
        out: list[Recognized] = []
        for i in range(0, len(pcm), chunk):
            out += stream.accept(pcm[i : i + chunk])
        out += stream.finish()
        return [(r.final, r.start, r.end) for r in out if r.final]

    assert run(640) == run(BYTES_PER_SECOND // 10 * 3 + 6)
