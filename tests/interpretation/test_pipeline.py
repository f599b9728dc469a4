"""A room's caption pipeline with real Vosk, a real (tiny) translation package and transcripts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

from interpretation.pipeline import CaptionPipeline
from interpretation.recognizer import RecognitionPool, Recognized, SpeechModels
from interpretation.transcript import TranscriptStore, to_srt, to_webvtt
from interpretation.translator import Translator
from tests.interpretation.recording_sink import ListSink
from tests.interpretation.speech_fixture import pcm_chunks, wav_pcm


async def test_korean_speech_is_captioned_and_translated(
    tmp_path: Path,
    speech_models: SpeechModels,
    translator: Translator,
    korean_speech: Path,
) -> None:
    sink = ListSink()
    transcripts = TranscriptStore(tmp_path / "transcripts")
    pool = RecognitionPool(2)
    pipeline = CaptionPipeline(
        "room1",
        sink,
        models=speech_models,
        pool=pool,
        translator=translator,
        transcripts=transcripts,
    )
    try:
        pipeline.set_listener_language("p-resident", "ja")
        pipeline.set_listener_language("p-interpreter", "en")
        assert pipeline.start_speaker(
            "p-counselor", "상담원 김", "ko", pcm_chunks(wav_pcm(korean_speech))
        )
        translated = await sink.wait_for(lambda e: e.final and e.translations)
        assert set(translated.translations) == {"en", "ja"}
        assert all(translated.translations.values())
        await pipeline.stop_speaker("p-counselor")
    finally:
        await pipeline.aclose()
        await asyncio.to_thread(pool.shutdown)

    partials = [e for e in sink.events if not e.final]
    finals = [e for e in sink.events if e.final]
    assert partials and finals
    first_final = finals[0]
    assert first_final.translations == {}  # the original is sent before translating
    assert len(re.findall(r"[가-힣]", " ".join(e.text for e in finals))) >= 5
    assert first_final.speaker_name == "상담원 김" and first_final.language == "ko"
    assert {e.id for e in partials} >= {first_final.id} or partials[0].id == first_final.id
    assert first_final.start < first_final.end

    entries = transcripts.entries("room1")
    assert entries and entries[0].translations.keys() == {"en", "ja"}
    vtt = to_webvtt(entries, "ja")
    assert vtt.startswith("WEBVTT") and "<v 상담원 김>" in vtt
    assert "상담원 김: " in to_srt(entries, "ko")


class ScriptedStream:
    """Stands in for Vosk where the test needs exact words (a phone number)."""

    def __init__(self, _model: object) -> None:
        self.script = [
            Recognized("제 번호는 010", False, 0.0, 0.5),
            Recognized("제 번호는 010-1234-5678 입니다", True, 0.0, 1.5),
        ]

    def accept(self, pcm: bytes) -> list[Recognized]:
        out, self.script = self.script, []
        return out

    def finish(self) -> list[Recognized]:
        return []


async def test_everything_published_or_stored_is_redacted(
    tmp_path: Path, speech_models: SpeechModels, translator: Translator
) -> None:
    sink = ListSink()
    transcripts = TranscriptStore(tmp_path / "t")
    pool = RecognitionPool(1)
    pipeline = CaptionPipeline(
        "room2",
        sink,
        models=speech_models,
        pool=pool,
        translator=translator,
        transcripts=transcripts,
        stream_factory=ScriptedStream,
    )

    async def audio() -> AsyncIterator[bytes]:
        yield b"\0\0" * 1600

    try:
        pipeline.set_listener_language("p2", "en")
        pipeline.start_speaker("p1", "Resident", "ko", audio())
        await sink.wait_for(lambda e: e.final and e.translations)
        await pipeline.stop_speaker("p1")
    finally:
        await pipeline.aclose()
        await asyncio.to_thread(pool.shutdown)
    for e in sink.events:
        assert "1234" not in e.text and "5678" not in e.text
    assert "*************" in sink.events[-1].text
    stored = transcripts.entries("room2")
    assert stored and "5678" not in stored[0].text


async def test_language_without_model_gets_no_live_captions(
    speech_models: SpeechModels,
) -> None:
    pool = RecognitionPool(1)
    pipeline = CaptionPipeline("room3", ListSink(), models=speech_models, pool=pool)

    async def audio() -> AsyncIterator[bytes]:
        yield b""

    assert pipeline.start_speaker("p1", "A", "ru", audio()) is False
    assert pipeline.speakers == []
    await pipeline.aclose()
    await asyncio.to_thread(pool.shutdown)
