"""Masking of personal numbers before any caption is shown or stored.

What is masked: Korean resident registration numbers (주민등록번호, also the
foreigner registration number of the same shape) with or without the hyphen and
spoken as Korean digit words ("구공공일공일 다시 일이삼사오육칠"), phone numbers
(Korean and foreign, domestic or international form) and passport numbers.
What stays readable: dates, times, amounts and ordinary numbers.

The text is first normalised into a digit string that remembers, for every
character, which span of the original it came from: runs of Korean digit words
(공 영 일 이 삼 사 오 육 칠 팔 구) become ASCII digits, "다시" (the spoken
hyphen) becomes ``-``. The patterns run on that string and each match is mapped
back and replaced with ``*`` characters of the same length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MASK_CHAR = "*"

_DIGIT_WORDS = {
    "공": "0",
    "영": "0",
    "빵": "0",
    "일": "1",
    "이": "2",
    "삼": "3",
    "사": "4",
    "오": "5",
    "육": "6",
    "륙": "6",
    "칠": "7",
    "팔": "8",
    "구": "9",
}
_SYLLABLES = "".join(_DIGIT_WORDS)
# particles and endings that may follow a spoken number inside the same word
_SUFFIX = "|".join(
    [
        *("번입니다", "번이에요", "번이요", "번이고", "번", "입니다", "이에요", "예요"),
        *("이고요", "이고", "이요", "이며", "요", "에", "으로", "로", "은", "는", "을", "를"),
    ]
)
_SPOKEN_WORD = rf"(?<![가-힣])(?P<digits>[{_SYLLABLES}]+)(?:{_SUFFIX})?(?![가-힣])"
_SPOKEN_RUN = re.compile(
    rf"[{_SYLLABLES}]+(?:{_SUFFIX})?(?![가-힣])"
    rf"(?:(?:\s*(?:-|다시)\s*|\s+)(?<![가-힣])[{_SYLLABLES}]+(?:{_SUFFIX})?(?![가-힣]))*"
)
_SPOKEN_WORD_RE = re.compile(_SPOKEN_WORD)
#: A spoken run shorter than this is ordinary speech ("이사", "오이", "일일").
_MIN_SPOKEN_DIGITS = 7

# separators between digit groups: a hyphen or dot (with optional spaces) or one space
_S = r"(?:\s?[-.]\s?|\s)?"
_NB = r"(?<![0-9])"  # no digit before
_NA = r"(?![0-9])"  # no digit after

_RRN = re.compile(rf"{_NB}\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]){_S}[1-8]\d{{6}}{_NA}")

_PHONES = [
    # international: +82 10-1234-5678, +1 (212) 555-1234, +7 912 345-67-89
    re.compile(r"\+\s?\d{1,3}(?:[\s\-.]?\(?\d{1,4}\)?){2,5}(?![0-9])"),
    # domestic with a leading 0: 010-1234-5678, 02-123-4567, 090-1234-5678, (031) 123 4567
    re.compile(rf"{_NB}\(?0\d{{1,3}}\)?{_S}\d{{3,4}}{_S}\d{{4}}{_NA}"),
    # Japanese free dial and similar 4-3-3 grouping: 0120-123-456
    re.compile(rf"{_NB}0\d{{3}}{_S}\d{{2,3}}{_S}\d{{3}}{_NA}"),
    # contiguous domestic: 01012345678, 0212345678
    re.compile(rf"{_NB}0\d{{8,10}}{_NA}"),
    # Korean business numbers: 1588-1234
    re.compile(rf"{_NB}1[5-9]\d{{2}}-\d{{4}}{_NA}"),
    # Chinese mobile: 138 0013 8000, 13800138000
    re.compile(rf"{_NB}1[3-9]\d(?:[\s\-]?\d{{4}}){{2}}{_NA}"),
    # North American: (212) 555-1234, 212-555-1234
    re.compile(rf"{_NB}\(\d{{3}}\)\s?\d{{3}}[-.\s]\d{{4}}{_NA}"),
    re.compile(rf"{_NB}\d{{3}}[-.]\d{{3}}[-.]\d{{4}}{_NA}"),
    # Russian domestic: 8 912 345-67-89, 8 (912) 345 67 89
    re.compile(rf"{_NB}8{_S}\(?9\d{{2}}\)?{_S}\d{{3}}{_S}\d{{2}}{_S}\d{{2}}{_NA}"),
]

_PASSPORTS = [
    # M12345678 (Korea), TK1234567 (Japan), E12345678 / EA1234567 (China)
    re.compile(r"(?<![A-Za-z0-9])[A-Z]{1,2}\d{7,8}(?![A-Za-z0-9])"),
    # Korean passports since 2021: M123A4567
    re.compile(r"(?<![A-Za-z0-9])[A-Z]\d{3}[A-Z]\d{4}(?![A-Za-z0-9])"),
]
# a number said right after the word "passport" in one of our languages
_PASSPORT_KEYWORD = re.compile(
    r"(?:여권\s*번호|여권|passport(?:\s*(?:no\.?|number|#))?|旅券番号|旅券|パスポート番号|"
    r"パスポート|护照号码|护照号|护照|護照|паспорт\w*(?:\s*номер)?|номер\s+паспорта)"
    r"\s*(?:는|은|가|이|:|：|#|is|は|是|номер)?\s*"
    r"(?P<number>[A-Za-z]{0,2}\d[\d \-]{3,12}\d)(?![0-9])",
    re.IGNORECASE,
)
_DATE_LIKE = re.compile(r"^\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}$|^\d{1,2}[-./ ]\d{1,2}[-./ ]\d{4}$")
#: a partial caption ending in a number that may still grow into a personal one
_TRAILING_DIGITS = re.compile(r"\d[\d\s\-.]{4,}$")


@dataclass(frozen=True)
class _Normalised:
    text: str
    #: for each character of ``text``: (start, end) in the original
    spans: tuple[tuple[int, int], ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        return self.spans[start][0], self.spans[end - 1][1]


def _normalise(text: str) -> _Normalised:
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for run in _SPOKEN_RUN.finditer(text):
        if run.start() > 0 and "가" <= text[run.start() - 1] <= "힣":
            continue
        words = list(_SPOKEN_WORD_RE.finditer(text, run.start(), run.end()))
        if sum(len(w.group("digits")) for w in words) < _MIN_SPOKEN_DIGITS:
            continue
        for i in range(pos, run.start()):
            out.append(text[i])
            spans.append((i, i + 1))
        cursor = run.start()
        for word in words:
            gap = text[cursor : word.start()]
            if "-" in gap or "다시" in gap:
                out.append("-")
                spans.append((cursor, word.start()))
            elif gap and spans:
                # spaces between spoken digit words belong to the number
                spans[-1] = (spans[-1][0], word.start())
            start = word.start("digits")
            for offset, syllable in enumerate(word.group("digits")):
                out.append(_DIGIT_WORDS[syllable])
                spans.append((start + offset, start + offset + 1))
            cursor = word.end("digits")
            # a particle after the digits stays as text
            for i in range(cursor, word.end()):
                out.append(text[i])
                spans.append((i, i + 1))
            cursor = word.end()
        pos = run.end()
    for i in range(pos, len(text)):
        out.append(text[i])
        spans.append((i, i + 1))
    return _Normalised("".join(out), tuple(spans))


def _matches(norm: str) -> Iterable[tuple[int, int]]:
    for pattern in (_RRN, *_PHONES, *_PASSPORTS):
        for m in pattern.finditer(norm):
            digits = sum(c.isdigit() for c in m.group())
            if pattern is _PHONES[0] and not 8 <= digits <= 15:
                continue
            yield m.start(), m.end()
    for m in _PASSPORT_KEYWORD.finditer(norm):
        number = m.group("number").strip()
        if sum(c.isdigit() for c in number) < 5 or _DATE_LIKE.match(number):
            continue
        yield m.start("number"), m.start("number") + len(number)


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _apply(text: str, norm: _Normalised, spans: Iterable[tuple[int, int]]) -> str:
    originals = _merge(norm.original_span(s, e) for s, e in spans if e > s)
    for start, end in reversed(originals):
        text = text[:start] + MASK_CHAR * (end - start) + text[end:]
    return text


def redact(text: str) -> str:
    """``text`` with every personal number replaced by ``*`` characters of the same length."""
    if not text:
        return text
    norm = _normalise(text)
    return _apply(text, norm, _matches(norm.text))


def redact_partial(text: str) -> str:
    """Like :func:`redact`, for a caption that is still growing.

    A number of five digits or more at the very end may be the first half of a
    registration or phone number, so it is masked until the speaker moves on.
    """
    if not text:
        return text
    norm = _normalise(text)
    spans = list(_matches(norm.text))
    tail = _TRAILING_DIGITS.search(norm.text)
    if tail is not None and sum(c.isdigit() for c in tail.group()) >= 5:
        spans.append((tail.start(), tail.end()))
    text = _apply(text, norm, spans)
    # spoken digits at the end, too short yet to be converted above
    for run in _SPOKEN_RUN.finditer(text):
        if run.end() == len(text.rstrip()) and not (
            run.start() > 0 and "가" <= text[run.start() - 1] <= "힣"
        ):
            words = _SPOKEN_WORD_RE.finditer(text, run.start(), run.end())
            if sum(len(w.group("digits")) for w in words) >= 5:
                text = (
                    text[: run.start()] + MASK_CHAR * (run.end() - run.start()) + text[run.end() :]
                )
    return text
