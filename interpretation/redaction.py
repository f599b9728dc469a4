"""Masking of personal numbers before any caption or chat line is shown or stored.

What is masked: Korean resident registration numbers (주민등록번호, also the
foreigner registration number of the same shape), phone numbers (Korean and
foreign, domestic or international form) and passport numbers — typed, or as
speech recognition writes them:

* digits typed with hyphens, dots, spaces or none ("900101-1234567", "010 1234 5678");
* Korean digit words, 공/영/빵 for zero ("구공공일공일 다시 일이삼사오육칠"), with the
  separators people say: 에, 의, 다시, 하이픈, 대시, 빼기 (spaced or attached);
* digits and words mixed ("공일공 1234 오육칠팔"), digits spaced one by one;
* English ("zero one zero, one two three four…", "oh", "double five") and Japanese
  number words ("ゼロキューゼロの…", 〇九〇), full-width digits;
* a number split across two captions: :class:`SpeechRedactor` keeps, per speaker,
  whether the last caption ended in the first half of one.

What stays readable: dates, times, amounts, counts, office hours, booking and case
numbers and ordinary words that happen to be made of digit syllables ("이사", "오이").

How: the text is scanned for *runs* of number tokens (digits or number words)
joined by spaces and spoken separators. A run with words in it, or with a spoken
separator, is rewritten as ASCII digits with ``-`` for the separators, remembering
for each character which span of the original it came from; the patterns run on
that string and each match is mapped back and replaced with ``*`` characters of
the same length. A run read out digit by digit (seven digits or more) is a number
nobody says for any other reason, and is masked whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

MASK_CHAR: Final = "*"

# ------------------------------------------------------------------ number words
_KO_DIGITS: Final = {
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
_KO_SYLLABLES: Final = "".join(_KO_DIGITS)
# particles and endings that may follow a spoken number inside the same word
_KO_SUFFIXES: Final = (
    "번입니다",
    "번이에요",
    "번이요",
    "번이고",
    "번",
    "입니다",
    "이에요",
    "예요",
    "이고요",
    "이고",
    "이요",
    "이며",
    "요",
    "에",
    "의",
    "으로",
    "로",
    "은",
    "는",
    "을",
    "를",
)
#: attached particles that, between two groups of a number, are its spoken hyphen
_KO_JOINING: Final = ("에", "의")

_EN_DIGITS: Final = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_EN_REPEAT: Final = {"double": 2, "triple": 3}

# Japanese readings (kana) and kanji digits; longest first so "キュー" wins over "ク".
_JA_DIGITS: Final = {
    "ゼロ": "0",
    "ぜろ": "0",
    "れい": "0",
    "レイ": "0",
    "まる": "0",
    "マル": "0",
    "〇": "0",
    "零": "0",
    "いち": "1",
    "イチ": "1",
    "一": "1",
    "にい": "2",
    "ニー": "2",
    "に": "2",
    "ニ": "2",
    "二": "2",
    "さん": "3",
    "サン": "3",
    "三": "3",
    "よん": "4",
    "ヨン": "4",
    "し": "4",
    "シ": "4",
    "四": "4",
    "ごお": "5",
    "ゴー": "5",
    "ご": "5",
    "ゴ": "5",
    "五": "5",
    "ろく": "6",
    "ロク": "6",
    "六": "6",
    "なな": "7",
    "ナナ": "7",
    "しち": "7",
    "シチ": "7",
    "七": "7",
    "はち": "8",
    "ハチ": "8",
    "八": "8",
    "きゅう": "9",
    "キュウ": "9",
    "キュー": "9",
    "きゅー": "9",
    "く": "9",
    "ク": "9",
    "九": "9",
}
_JA_BY_LENGTH: Final = sorted(_JA_DIGITS, key=len, reverse=True)
_JA_READING: Final = "|".join(map(re.escape, _JA_BY_LENGTH))

# spoken separators between groups, as whole words
_SEPARATOR_WORDS: Final = (
    "다시",
    "하이픈",
    "대시",
    "빼기",
    "에",
    "의",
    "dash",
    "hyphen",
    "の",
    "ノ",
    "ハイフン",
    "ダッシュ",
    "тире",
)
_SEPARATOR_CHARS: Final = "-‐‑–—、,/()"

_TOKEN: Final = re.compile(
    "|".join(
        [
            rf"(?P<ko>(?<![가-힣])[{_KO_SYLLABLES}]+)"
            rf"(?P<ko_suffix>{'|'.join(_KO_SUFFIXES)})?(?![가-힣])",
            r"(?P<ascii>\d+)",
            rf"(?P<en>(?<![A-Za-z])(?:(?:double|triple)\s+)?"
            rf"(?:{'|'.join(_EN_DIGITS)})(?![A-Za-z]))",
            rf"(?P<ja>(?:(?:{_JA_READING})ー?)+)",
        ]
    ),
    re.IGNORECASE,
)
_GAP: Final = re.compile(
    r"(?:\s+|[" + re.escape(_SEPARATOR_CHARS) + r"]|\.(?=\s*\S)"
    r"|(?<![\w가-힣])(?:" + "|".join(_SEPARATOR_WORDS) + r")(?![\w가-힣]))+",
    re.IGNORECASE,
)
#: A run read as words with fewer digits than this is ordinary speech ("이사", "one or two").
_MIN_SPOKEN_DIGITS: Final = 7
#: a run of digits typed one or two at a time ("0 1 0 1 2 3 4 …") this long is masked whole
_MIN_SPACED_DIGITS: Final = 7

# ------------------------------------------------------------------ patterns on digits
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
# digits said right after a word that announces a personal number (either half of one)
_NUMBER_KEYWORD = re.compile(
    r"(?:주민\s*등록\s*번호|주민\s*번호|외국인\s*등록\s*번호|등록\s*번호|앞\s*자리|뒷\s*자리|"
    r"전화\s*번호|휴대\s*전화|휴대폰(?:\s*번호)?|핸드폰(?:\s*번호)?|연락처|"
    r"phone(?:\s*number)?|mobile(?:\s*number)?|cell(?:\s*phone)?|"
    r"電話番号|携帯番号|携帯|電話|手机号码|手机号|手机|电话号码|电话|"
    r"номер\s+телефона|телефон\w*)"
    r"\s*(?:는|은|가|이|:|：|#|is|は|是|번호는)?\s*"
    r"(?P<number>\+?\d[\d \-.]{2,18}\d)(?![0-9])",
    re.IGNORECASE,
)
_DATE_LIKE = re.compile(r"^\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}$|^\d{1,2}[-./ ]\d{1,2}[-./ ]\d{4}$")
#: the first half of a registration or phone number at the end of a caption
_RRN_FRONT = re.compile(r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")
_PHONE_FRONT = re.compile(
    r"\+\d{1,3}(?:-?\d{1,4})?|(?:01[016789]|0[2-6]\d?|0[5789]0)(?:-?\d{3,4})?|1[3-9]\d{5}"
)


@dataclass(frozen=True)
class _Normalised:
    text: str
    #: for each character of ``text``: (start, end) in the original
    spans: tuple[tuple[int, int], ...]
    #: runs read out digit by digit, masked whole: spans in ``text``
    whole: tuple[tuple[int, int], ...]
    #: the last run, if it reaches the end of the text: (start, end in ``text``, digits,
    #: whether it was said in words)
    tail: tuple[int, int, str, bool] | None
    #: the first run, if it starts the text: (start, end in ``text``, digits)
    head: tuple[int, int, str] | None

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        return self.spans[start][0], self.spans[end - 1][1]


@dataclass
class _Token:
    start: int
    end: int  # of the digits (a particle after them is not part of the number)
    word_end: int  # with the particle
    digits: str
    spoken: bool
    joining: bool  # ends in 에/의, a separator if another group follows


def _token(m: re.Match[str]) -> _Token:
    if m.group("ko") is not None:
        suffix = m.group("ko_suffix") or ""
        digits = "".join(_KO_DIGITS[c] for c in m.group("ko"))
        return _Token(m.start(), m.end("ko"), m.end(), digits, True, suffix in _KO_JOINING)
    if m.group("ascii") is not None:
        return _Token(m.start(), m.end(), m.end(), m.group("ascii"), False, False)
    if m.group("en") is not None:
        words = m.group("en").lower().split()
        repeat = _EN_REPEAT.get(words[0], 1) if len(words) > 1 else 1
        digits = _EN_DIGITS[words[-1]] * repeat
        return _Token(m.start(), m.end(), m.end(), digits, True, False)
    text = m.group("ja")
    said: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "ー":  # a long vowel ("ごー", "にー")
            pos += 1
            continue
        for reading in _JA_BY_LENGTH:
            if text.startswith(reading, pos):
                said.append(_JA_DIGITS[reading])
                pos += len(reading)
                break
    return _Token(m.start(), m.end(), m.end(), "".join(said), True, False)


@dataclass
class _Run:
    tokens: list[_Token]
    #: per gap between tokens: "-" (a separator was said or typed), " " or "."
    gaps: list[str]

    @property
    def digits(self) -> int:
        return sum(len(t.digits) for t in self.tokens)

    @property
    def spoken(self) -> bool:
        return any(t.spoken for t in self.tokens)

    @property
    def said_separator(self) -> bool:
        return any(g == "-" for g in self.gaps)

    #: a typed hyphen with spaces around it ("543 - 669 - 1475"), written out as "-"
    spaced_hyphen: bool = False

    @property
    def spaced(self) -> bool:
        """Typed a digit or two at a time: "0 1 0 1 2 3 4 5 6 7 8"."""
        return len(self.tokens) >= 4 and all(len(t.digits) <= 2 for t in self.tokens)


def _gap_kind(gap: str) -> str:
    """``" "`` spaces, ``"."`` a dot, ``"-"`` a typed hyphen or comma, ``"="`` a said separator."""
    stripped = gap.strip()
    if not stripped:
        return " "
    if stripped == ".":
        return "."
    if any(c.isalpha() for c in stripped):
        return "="
    return "-"


def _runs(text: str) -> list[_Run]:
    runs: list[_Run] = []
    current: _Run | None = None
    pos = 0
    while (m := _TOKEN.search(text, pos)) is not None:
        token = _token(m)
        if current is not None:
            previous = current.tokens[-1]
            between = text[previous.word_end : token.start]
            by_particle = previous.joining and previous.word_end > previous.end
            if not between and not by_particle:
                current.tokens.append(token)  # touching ("010일이삼사"): one group
                current.gaps.append("")
            elif by_particle and not between.strip():
                current.tokens.append(token)  # "오삼공일공팔에 삼삼삼…"
                current.gaps.append("=")
            elif _GAP.fullmatch(between):
                current.tokens.append(token)
                kind = _gap_kind(between)
                current.gaps.append(kind)
                if kind == "-" and between != between.strip() and "-" in between:
                    current.spaced_hyphen = True
            else:
                runs.append(current)
                current = None
        if current is None:
            current = _Run([token], [])
        pos = max(m.end(), pos + 1)
    if current is not None:
        runs.append(current)
    return runs


def _narrow(char: str) -> str:
    """A full-width digit, letter or hyphen as its ASCII self (one character for one)."""
    if char.isascii():
        return char
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 and folded.isascii() else char


def _ascii_digits(text: str) -> str:
    return "".join(_narrow(c) for c in text)


def _normalise(text: str) -> _Normalised:
    text = _ascii_digits(text)
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    whole: list[tuple[int, int]] = []
    tail: tuple[int, int, str, bool] | None = None
    head: tuple[int, int, str] | None = None
    pos = 0
    runs = _runs(text)

    def copy(upto: int) -> None:
        nonlocal pos
        for i in range(pos, upto):
            out.append(text[i])
            spans.append((i, i + 1))
        pos = max(pos, upto)

    for index, run in enumerate(runs):
        first, last = run.tokens[0], run.tokens[-1]
        rewrite = run.spoken or "=" in run.gaps or run.spaced or run.spaced_hyphen
        copy(first.start)
        begin = len(out)
        if not rewrite:
            copy(last.end)
        else:
            for n, token in enumerate(run.tokens):
                kind = run.gaps[n - 1] if n else ""
                if kind in ("-", "=", "."):
                    out.append("-" if kind != "." else ".")
                    spans.append((run.tokens[n - 1].end, token.start))
                elif kind == " " and not run.spoken and not run.spaced:
                    out.append(" ")
                    spans.append((run.tokens[n - 1].end, token.start))
                elif n and spans:
                    # spaces between spoken groups belong to the number
                    spans[-1] = (spans[-1][0], token.start)
                for offset, digit in enumerate(token.digits):
                    if token.spoken:
                        # each digit stands for a slice of its word(s)
                        size, count = token.end - token.start, len(token.digits)
                        a = token.start + offset * size // count
                        b = token.start + (offset + 1) * size // count
                        spans.append((a, max(b, a + 1)))
                    else:
                        spans.append((token.start + offset, token.start + offset + 1))
                    out.append(digit)
            pos = last.end
            if (run.spoken and run.digits >= _MIN_SPOKEN_DIGITS) or (
                run.spaced and run.digits >= _MIN_SPACED_DIGITS
            ):
                whole.append((begin, len(out)))
        end = len(out)
        digits = "".join(t.digits for t in run.tokens)
        before = text[: first.start]
        if index == 0 and (not before.strip() or _GAP.fullmatch(before)):
            head = (begin, end, digits)
        if index == len(runs) - 1:
            tail = (begin, end, digits, run.spoken)
            # a separator said after it ("… 다시") still leaves the number open
            rest = text[last.word_end :]
            m = _GAP.match(rest)
            if not (m is not None and m.end() == len(rest.rstrip())) and rest.strip(" \t.。,!?、"):
                tail = None
    copy(len(text))
    return _Normalised("".join(out), tuple(spans), tuple(whole), tail, head)


def _matches(norm: _Normalised) -> Iterable[tuple[int, int]]:
    text = norm.text
    yield from norm.whole
    for pattern in (_RRN, *_PHONES, *_PASSPORTS):
        for m in pattern.finditer(text):
            digits = sum(c.isdigit() for c in m.group())
            if pattern is _PHONES[0] and not 8 <= digits <= 15:
                continue
            yield m.start(), m.end()
    for m in _PASSPORT_KEYWORD.finditer(text):
        number = m.group("number").strip()
        if sum(c.isdigit() for c in number) < 5 or _DATE_LIKE.match(number):
            continue
        yield m.start("number"), m.start("number") + len(number)
    for m in _NUMBER_KEYWORD.finditer(text):
        number = m.group("number").strip()
        if sum(c.isdigit() for c in number) < 4 or _DATE_LIKE.match(number):
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
    return _apply(text, norm, _matches(norm))


def _unfinished(digits: str, *, partial: bool, spoken: bool) -> bool:
    """Whether a number at the very end may be the first half of a personal one.

    Still growing (a partial): three digits or more. Said and done (a
    final): a birth date's six digits, a phone prefix, or three digits or more read
    out one by one (nobody reads "129" digit by digit but for a number).
    """
    if partial:
        return len(digits) >= 3
    if spoken and len(digits) >= 3:
        return True
    return bool(_RRN_FRONT.fullmatch(digits) or _PHONE_FRONT.fullmatch(digits))


def _redact(text: str, *, partial: bool, continues: bool) -> tuple[str, bool]:
    """Masked text, and whether it ends in what may be the first half of a number."""
    if not text:
        return text, False
    norm = _normalise(text)
    spans = list(_matches(norm))
    pending = False
    if norm.tail is not None:
        start, end, digits, spoken = norm.tail
        if _unfinished(digits, partial=partial, spoken=spoken) and not any(
            s <= start and e >= end for s, e in spans
        ):
            spans.append((start, end))
            pending = True
        elif any(s <= start < e for s, e in spans) and end == len(norm.text.rstrip(" .")):
            pending = not partial and len(digits) < 9
    if continues and norm.head is not None:
        spans.append(norm.head[:2])
    return _apply(text, norm, spans), pending


def redact_partial(text: str) -> str:
    """Like :func:`redact`, for a caption that is still growing.

    A number of three digits or more at the very end may be the first half of a
    registration or phone number, so it is masked until the speaker moves on (a
    unit after it, "3000원", unmasks it); a spoken separator after it ("… 다시")
    keeps it masked.
    """
    return _redact(text, partial=True, continues=False)[0]


class SpeechRedactor:
    """Redaction for one speaker's captions, in order: numbers split across captions too.

    A caption (partial or final) that ends in what may be the first half of a
    number (a birth date's six digits, a phone prefix) has it masked, and the next
    caption's leading digits are masked as its second half.
    """

    def __init__(self) -> None:
        self._pending = False

    def partial(self, text: str) -> str:
        return _redact(text, partial=True, continues=self._pending)[0]

    def final(self, text: str) -> str:
        masked, self._pending = _redact(text, partial=False, continues=self._pending)
        return masked
