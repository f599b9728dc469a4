"""Administrative terms the translator keeps consistent (국적, 병역, 가족관계증명서, …).

The glossary lives in a JSON file in the data directory; until an admin edits it,
the starter set shipped in ``interpretation/data/glossary.json`` is used.

How the translator applies it (see :mod:`interpretation.translator`): a source
term is replaced by the target-language term before translation, so models that
copy unknown words keep it verbatim; if the translated text still lacks the
term, the term is appended in brackets, so a listener always sees the agreed word.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from interpretation.errors import GlossaryError
from kernel.languages import LANGUAGES
from kernel.private_files import replace_file

log = logging.getLogger(__name__)

_CASELESS = ("en", "ru")


class GlossaryEntry(BaseModel):
    """One concept and its agreed term in each language."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")
    terms: dict[str, str]
    note: str | None = Field(default=None, max_length=500)

    @field_validator("terms")
    @classmethod
    def _terms(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise ValueError(f"unknown language {', '.join(unknown)}; use {', '.join(LANGUAGES)}")
        cleaned = {lang: term.strip() for lang, term in value.items()}
        if len([t for t in cleaned.values() if t]) < 2:
            raise ValueError("give the term in at least two languages")
        if any(len(t) > 200 for t in cleaned.values()):
            raise ValueError("a term may be at most 200 characters")
        return {lang: term for lang, term in cleaned.items() if term}


class Glossary(BaseModel):
    """The whole glossary, as stored and as sent over the admin API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entries: list[GlossaryEntry] = Field(max_length=2000)

    @field_validator("entries")
    @classmethod
    def _unique(cls, value: list[GlossaryEntry]) -> list[GlossaryEntry]:
        seen: set[str] = set()
        for entry in value:
            if entry.id in seen:
                raise ValueError(f"entry id {entry.id!r} appears twice")
            seen.add(entry.id)
        return value

    def matches(self, text: str, source: str, target: str) -> list[tuple[str, str]]:
        """(source term, target term) pairs found in ``text``, longest first, no overlaps."""
        candidates = sorted(
            (
                (e.terms[source], e.terms[target])
                for e in self.entries
                if source in e.terms and target in e.terms
            ),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )
        found: list[tuple[str, str]] = []
        taken: list[tuple[int, int]] = []
        for src, dst in candidates:
            for m in _term_pattern(src, source).finditer(text):
                if any(m.start() < end and start < m.end() for start, end in taken):
                    continue
                taken.append((m.start(), m.end()))
                if (src, dst) not in found:
                    found.append((src, dst))
        return found


def _term_pattern(term: str, language: str) -> re.Pattern[str]:
    escaped = re.escape(term)
    if language in _CASELESS:
        return re.compile(rf"(?<!\w){escaped}(?!\w)", re.IGNORECASE)
    return re.compile(escaped)


def contains_term(text: str, term: str, language: str) -> bool:
    return _term_pattern(term, language).search(text) is not None


def replace_terms(text: str, pairs: list[tuple[str, str]], language: str) -> str:
    for src, dst in pairs:
        text = _term_pattern(src, language).sub(dst, text)
    return text


def starter_glossary() -> Glossary:
    """The set shipped with the server, in the five languages."""
    raw = resources.files("interpretation").joinpath("data/glossary.json").read_text("utf-8")
    return Glossary.model_validate_json(raw)


class GlossaryStore:
    """The admin-editable glossary: a JSON file, read once, replaced atomically.

    ``get()`` is cheap and thread-safe (translations read it from worker threads);
    ``replace()`` writes the file and should run off the event loop.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._glossary = self._load()

    def _load(self) -> Glossary:
        if not self.path.exists():
            return starter_glossary()
        try:
            return Glossary.model_validate_json(self.path.read_bytes())
        except ValidationError as exc:
            raise GlossaryError(f"{self.path}: the glossary file is not valid: {exc}") from exc

    def get(self) -> Glossary:
        with self._lock:
            return self._glossary

    def replace(self, glossary: Glossary) -> None:
        text = json.dumps(glossary.model_dump(mode="json"), ensure_ascii=False, indent=1)
        # A temporary file of its own: two nodes saving at once each move a whole file.
        replace_file(self.path, text.encode("utf-8"), mode=0o644)
        with self._lock:
            self._glossary = glossary
        log.info("glossary replaced: %d entries in %s", len(glossary.entries), self.path)
