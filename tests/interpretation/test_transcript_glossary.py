"""Transcript export (WebVTT, SRT) and the admin-editable glossary."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from interpretation.glossary import Glossary, GlossaryEntry, GlossaryStore, starter_glossary
from interpretation.transcript import (
    TranscriptEntry,
    TranscriptStore,
    load_or_create_key,
    to_srt,
    to_webvtt,
)

ENTRIES = [
    TranscriptEntry(
        id="a-1",
        speaker_id="a",
        speaker_name="Kim <staff>",
        language="ko",
        text="가족관계증명서가 필요합니다",
        start=1.25,
        end=3.5,
        translations={
            "ja": "家族関係証明書が必要です",
            "en": "You need a family relation certificate",
        },
    ),
    TranscriptEntry(
        id="b-1",
        speaker_id="b",
        speaker_name="Tanaka",
        language="ja",
        text="わかりました",
        start=3661.0,
        end=3662.004,
        translations={"ko": "알겠습니다"},
    ),
]


def test_webvtt_per_language_with_speakers() -> None:
    vtt = to_webvtt(ENTRIES, "ja")
    assert vtt.splitlines()[0] == "WEBVTT"
    assert "00:00:01.250 --> 00:00:03.500" in vtt
    assert "<v Kim &lt;staff&gt;>家族関係証明書が必要です" in vtt
    assert "01:01:01.000 --> 01:01:02.004" in vtt
    assert "<v Tanaka>わかりました" in vtt


def test_srt_per_language_skips_missing() -> None:
    srt = to_srt(ENTRIES, "en")
    assert srt.startswith("1\n00:00:01,250 --> 00:00:03,500\nKim <staff>: You need")
    assert "Tanaka" not in srt  # no English for that line
    assert "2\n01:01:01,000 --> 01:01:02,004\nTanaka: 알겠습니다" in to_srt(ENTRIES, "ko")


def test_store_appends_and_reads_back(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path)
    for e in reversed(ENTRIES):
        store.append("room-1", e)
    with (tmp_path / "room-1.jsonl").open("a") as f:
        f.write('{"id": "cut sh')  # a crash mid-line
    assert [e.id for e in store.entries("room-1")] == ["a-1", "b-1"]
    assert store.entries("other") == []
    with pytest.raises(Exception, match="invalid session id"):
        store.entries("../etc")


def test_encrypted_at_rest(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "k" / "transcript.key")
    assert (tmp_path / "k" / "transcript.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "k" / "transcript.key") == key
    store = TranscriptStore(tmp_path / "t", key)
    store.append("room-1", ENTRIES[0])
    raw = (tmp_path / "t" / "room-1.jsonl").read_text()
    assert "가족관계" not in raw and "Kim" not in raw
    assert store.entries("room-1") == [ENTRIES[0]]
    other = TranscriptStore(tmp_path / "t", load_or_create_key(tmp_path / "other.key"))
    assert other.entries("room-1") == []  # a wrong key reads nothing


def test_starter_glossary_has_five_languages() -> None:
    g = starter_glossary()
    ids = {e.id for e in g.entries}
    assert {"nationality", "military-service", "family-relation-certificate"} <= ids
    assert "overseas-national-registration" in ids
    for e in g.entries:
        assert set(e.terms) == {"ko", "en", "ja", "zh", "ru"}


def test_glossary_matches_longest_term_first() -> None:
    g = starter_glossary()
    assert g.matches("국적상실 신고", "ko", "en") == [("국적상실", "loss of nationality")]
    assert ("병역", "兵役") in g.matches("병역 문제", "ko", "ja")
    assert g.matches("Nationality question", "en", "ko") == [("nationality", "국적")]


def test_glossary_edit_persists(tmp_path: Path) -> None:
    store = GlossaryStore(tmp_path / "glossary.json")
    assert store.get() == starter_glossary()
    edited = Glossary(entries=[GlossaryEntry(id="visa", terms={"ko": "비자", "en": "visa"})])
    store.replace(edited)
    assert GlossaryStore(tmp_path / "glossary.json").get() == edited


def test_glossary_rejects_bad_entries() -> None:
    with pytest.raises(ValidationError):
        GlossaryEntry(id="x", terms={"ko": "비자"})
    with pytest.raises(ValidationError):
        GlossaryEntry(id="x", terms={"ko": "비자", "fr": "visa"})
    with pytest.raises(ValidationError):
        Glossary(entries=[GlossaryEntry(id="x", terms={"ko": "a", "en": "b"})] * 2)
