"""Per-session transcripts of final captions, and their WebVTT / SRT export.

Each final caption with its translations is appended as one line to
``DATA_DIR/transcripts/<session>.jsonl`` (text is redacted before it gets here).
With a key, every line is a Fernet token (AES + HMAC, from ``cryptography``), so
transcripts are encrypted at rest; the key lives in its own file (mode 0600).
A line cut short by a crash is skipped; the rest still reads.
File methods block; call them off the event loop.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, ValidationError

from interpretation.errors import TranscriptError
from kernel.private_files import create_once

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class TranscriptEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    speaker_id: str
    speaker_name: str
    language: str
    text: str
    start: float
    end: float
    translations: dict[str, str] = {}
    speaker_role: str | None = None
    #: "speech", or "interpretation" for an interpreter speaking on a channel
    kind: str = "speech"

    def text_in(self, language: str) -> str | None:
        if language == self.language:
            return self.text
        return self.translations.get(language)


def load_or_create_key(path: Path) -> bytes:
    """The transcript encryption key at ``path``, created (0600) on first use; when
    several nodes on one data directory create it at once, the first one written stands
    and every node reads that one."""
    if not path.exists():
        create_once(path, Fernet.generate_key())
    return path.read_bytes().strip()


class TranscriptStore:
    """Append-only transcript files, one per session; encrypted when given a key."""

    def __init__(self, directory: Path, key: bytes | None = None) -> None:
        self.directory = directory
        self._fernet = Fernet(key) if key is not None else None
        self._lock = threading.Lock()

    def _path(self, session_id: str) -> Path:
        if not _SESSION_ID.match(session_id):
            raise TranscriptError(
                f"invalid session id {session_id!r}: use 1 to 128 letters, digits, '-' or '_'"
            )
        return self.directory / f"{session_id}.jsonl"

    def append(self, session_id: str, entry: TranscriptEntry) -> None:
        self.append_all(session_id, [entry])

    def append_all(self, session_id: str, entries: list[TranscriptEntry]) -> None:
        """Append ``entries`` in order, one line each."""
        path = self._path(session_id)
        lines = "".join(self._line(e) for e in entries)
        if not lines:
            return
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(lines)

    def _line(self, entry: TranscriptEntry) -> str:
        data = entry.model_dump_json().encode("utf-8")
        if self._fernet is None:
            return data.decode("utf-8") + "\n"
        return self._fernet.encrypt(data).decode("ascii") + "\n"

    def exists(self, session_id: str) -> bool:
        return self._path(session_id).is_file()

    def entries(self, session_id: str) -> list[TranscriptEntry]:
        path = self._path(session_id)
        if not path.is_file():
            return []
        with self._lock:
            lines = path.read_text("utf-8").splitlines()
        out: list[TranscriptEntry] = []
        for line in lines:
            try:
                raw = line.encode("utf-8")
                if self._fernet is not None:
                    raw = self._fernet.decrypt(raw)
                out.append(TranscriptEntry.model_validate_json(raw))
            except (InvalidToken, ValidationError, UnicodeError):
                continue  # cut short by a crash, or not ours
        return sorted(out, key=lambda e: (e.start, e.end))


def _timestamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(entries: list[TranscriptEntry], language: str) -> list[tuple[TranscriptEntry, str]]:
    cues = []
    for e in entries:
        text = e.text_in(language)
        if text:
            cues.append((e, " ".join(text.split())))
    return cues


def _end(entry: TranscriptEntry) -> float:
    return max(entry.end, entry.start + 0.5)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_webvtt(entries: list[TranscriptEntry], language: str) -> str:
    """WebVTT with a voice span per speaker: ``<v Name>text``."""
    lines = ["WEBVTT", f"Language: {language}", ""]
    for n, (e, text) in enumerate(_cues(entries, language), 1):
        name = _vtt_escape(e.speaker_name).replace("\n", " ")
        lines += [
            str(n),
            f"{_timestamp(e.start, '.')} --> {_timestamp(_end(e), '.')}",
            f"<v {name}>{_vtt_escape(text)}",
            "",
        ]
    return "\n".join(lines)


def to_srt(entries: list[TranscriptEntry], language: str) -> str:
    """SubRip with ``Name: text`` lines."""
    lines: list[str] = []
    for n, (e, text) in enumerate(_cues(entries, language), 1):
        lines += [
            str(n),
            f"{_timestamp(e.start, ',')} --> {_timestamp(_end(e), ',')}",
            f"{e.speaker_name}: {text}",
            "",
        ]
    return "\n".join(lines)
