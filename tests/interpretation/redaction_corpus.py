"""A seeded, generated set of utterances for measuring redaction (imported by tests and bench).

``sensitive(seed)`` makes utterances that each hold one personal number (a resident
registration, phone or passport number) in the forms typing and speech recognition
produce — typed with hyphens/spaces/dots/none, Korean digit words with spoken
separators (에, 의, 다시, 하이픈, 대시, 빼기), mixed digits and words, digits spaced
one by one, English and Japanese number words — some of them split across two
captions. ``ordinary(seed)`` makes utterances that must stay as they are: dates,
times, money, counts, office hours, booking and case numbers, words made of digit
syllables.

Each sensitive item knows where its number is in each caption, so a measurement
can check that every digit of it was masked (lengths are kept by masking).
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

KO_WORDS = "공일이삼사오육칠팔구"
KO_ZERO = ("공", "영")
KO_SEPARATORS = (
    " ",
    " 다시 ",
    " 하이픈 ",
    " 대시 ",
    " 빼기 ",
    " 에 ",
    "에 ",
    " 의 ",
    "의 ",
    "-",
    " - ",
)
EN_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
EN_SEPARATORS = (" ", ", ", " dash ", " hyphen ", "-")
JA_WORDS = (
    ("ゼロ", "れい", "まる", "〇"),
    ("いち", "一"),
    ("に", "にい", "二"),
    ("さん", "三"),
    ("よん", "四"),
    ("ご", "ごー", "五"),
    ("ろく", "六"),
    ("なな", "七"),
    ("はち", "八"),
    ("きゅう", "九"),
)
JA_SEPARATORS = ("の", "、", " ", "ハイフン")

KO_FRAMES = (
    "제 주민등록번호는 {}입니다",
    "주민번호는 {} 이에요",
    "연락처는 {}로 해 주세요",
    "전화번호 {} 맞습니다",
    "{} 이걸로 연락 주세요",
    "네 {}",
    "번호 불러 드릴게요 {}",
    "여권번호는 {}입니다",
    "외국인등록번호가 {}예요",
    "핸드폰 {} 입니다",
)
EN_FRAMES = (
    "my phone number is {}",
    "you can reach me at {}",
    "it's {}",
    "the number is {} thank you",
    "call me on {}",
)
JA_FRAMES = ("電話番号は{}です", "{}に電話してください", "携帯は{}", "番号は{}です")


@dataclass(frozen=True)
class Sensitive:
    form: str
    #: the captions in order (one, or two when the number is split across them)
    captions: tuple[str, ...]
    #: for each caption, the span of the number in it (start, end)
    spans: tuple[tuple[int, int], ...]


def _rrn(rng: random.Random) -> list[str]:
    yy, mm, dd = rng.randint(0, 99), rng.randint(1, 12), rng.randint(1, 28)
    back = str(rng.randint(1, 8)) + "".join(rng.choice(string.digits) for _ in range(6))
    return [f"{yy:02d}{mm:02d}{dd:02d}", back]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _phone(rng: random.Random) -> list[str]:
    kind = rng.choice(["kr_mobile", "kr_seoul", "kr_area", "jp_mobile", "cn", "us"])
    if kind == "kr_mobile":
        return ["010", _digits(rng, 4), _digits(rng, 4)]
    if kind == "kr_seoul":
        return ["02", _digits(rng, rng.choice([3, 4])), _digits(rng, 4)]
    if kind == "kr_area":
        return [rng.choice(["031", "032", "051", "053", "062"]), _digits(rng, 3), _digits(rng, 4)]
    if kind == "jp_mobile":
        return [rng.choice(["090", "080", "070"]), _digits(rng, 4), _digits(rng, 4)]
    if kind == "cn":
        return ["1" + rng.choice("3456789") + _digits(rng, 1), _digits(rng, 4), _digits(rng, 4)]
    return ["(" + str(rng.randint(201, 989)) + ")", _digits(rng, 3), _digits(rng, 4)]


def _ko(rng: random.Random, group: str, spaced: bool) -> str:
    words = [rng.choice(KO_ZERO) if d == "0" else KO_WORDS[int(d)] for d in group]
    return (" " if spaced else "").join(words)


def _render(rng: random.Random, groups: list[str], form: str) -> str:
    plain = [g.strip("()") for g in groups]
    if form == "typed":
        sep = rng.choice(["-", " ", "", " - "])
        if groups[0].startswith("(") and sep == "":
            sep = " "
        return sep.join(groups)
    if form == "spaced_digits":
        return " ".join("".join(plain))
    if form == "ko_words":
        spaced = rng.random() < 0.2
        seps = [rng.choice(KO_SEPARATORS) for _ in plain[1:]]
        out = _ko(rng, plain[0], spaced)
        for sep, group in zip(seps, plain[1:], strict=True):
            out += sep + _ko(rng, group, spaced)
        return out
    if form == "mixed":
        parts = [g if rng.random() < 0.5 else _ko(rng, g, False) for g in plain]
        if all(p.isdigit() for p in parts):
            parts[-1] = _ko(rng, plain[-1], False)
        seps = [rng.choice([" ", " 다시 ", "-", " 하이픈 "]) for _ in parts[1:]]
        return parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))
    if form == "en_words":

        def word(d: str) -> str:
            return "oh" if d == "0" and rng.random() < 0.3 else EN_WORDS[int(d)]

        rendered = [" ".join(word(d) for d in g) for g in plain]
        seps = [rng.choice(EN_SEPARATORS) for _ in rendered[1:]]
        return rendered[0] + "".join(s + r for s, r in zip(seps, rendered[1:], strict=True))
    if form == "ja_words":
        rendered = ["".join(rng.choice(JA_WORDS[int(d)]) for d in g) for g in plain]
        seps = [rng.choice(JA_SEPARATORS) for _ in rendered[1:]]
        return rendered[0] + "".join(s + r for s, r in zip(seps, rendered[1:], strict=True))
    raise ValueError(form)


def _framed(
    rng: random.Random, frames: tuple[str, ...], number: str
) -> tuple[str, tuple[int, int]]:
    frame = rng.choice(frames)
    start = frame.index("{}")
    return frame.replace("{}", number), (start, start + len(number))


def sensitive(seed: int = 13, count: int = 360) -> list[Sensitive]:
    rng = random.Random(seed)
    items: list[Sensitive] = []
    forms = ["typed", "ko_words", "ko_words", "mixed", "spaced_digits", "en_words", "ja_words"]
    while len(items) < count:
        form = forms[len(items) % len(forms)]
        which = rng.choice(
            ["rrn", "phone", "phone"] if form not in ("en_words", "ja_words") else ["phone"]
        )
        groups = _rrn(rng) if which == "rrn" else _phone(rng)
        number = _render(rng, groups, form)
        frames = EN_FRAMES if form == "en_words" else JA_FRAMES if form == "ja_words" else KO_FRAMES
        text, span = _framed(rng, frames, number)
        items.append(Sensitive(form, (text,), (span,)))
        if form in ("ko_words", "typed", "mixed") and len(items) % 5 == 0 and len(items) < count:
            # the same kind of number, split over two captions at a group boundary
            groups = _rrn(rng) if which == "rrn" else _phone(rng)
            cut = rng.randint(1, len(groups) - 1)
            first = _render(rng, groups[:cut], form if form != "typed" else "ko_words")
            second_groups = groups[cut:]
            lead = rng.choice(["", "다시 ", "하이픈 ", "에 "])
            second = lead + _render(rng, second_groups, form if form != "typed" else "ko_words")
            one = f"제 번호는 {first}"
            two = f"{second} 입니다"
            items.append(
                Sensitive(
                    f"split_{form}",
                    (one, two),
                    ((one.index(first), one.index(first) + len(first)), (0, len(second))),
                )
            )
    return items[:count]


_MONTHS_EN = ("January", "March", "May", "July", "September", "December")


def _booking_id(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "b-" + "".join(rng.choice(alphabet) for _ in range(12))


def ordinary(seed: int = 29, count: int = 360) -> list[str]:
    rng = random.Random(seed)
    makers = [
        lambda: (
            f"{rng.randint(2020, 2027)}년 {rng.randint(1, 12)}월 {rng.randint(1, 28)}일에 오세요"
        ),
        lambda: f"{rng.randint(2020, 2027)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        lambda: f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2020, 2027)}",
        lambda: f"{rng.randint(2020, 2027)}. {rng.randint(1, 12)}. {rng.randint(1, 28)}.",
        lambda: f"{rng.choice(_MONTHS_EN)} {rng.randint(1, 28)}, {rng.randint(2020, 2027)}",
        lambda: f"{rng.randint(2020, 2027)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日です",
        lambda: f"{rng.randint(1950, 2005)}년생입니다",
        lambda: f"오후 {rng.randint(1, 6)}시 {rng.choice([0, 10, 20, 30, 45])}분에 뵙겠습니다",
        lambda: f"{rng.randint(9, 17)}:{rng.choice(['00', '15', '30', '45'])}",
        lambda: "평일 09:00-18:00 운영합니다",
        lambda: "상담 시간은 오전 9시부터 오후 6시까지입니다",
        lambda: "office hours are 9:00 to 18:00 Seoul time",
        lambda: "受付は9時から18時までです",
        lambda: f"수수료는 {rng.randint(1, 99) * 1000:,}원입니다",
        lambda: f"{rng.randint(1, 9)}만 {rng.randint(1, 9)}천 원",
        lambda: f"the fee is ${rng.randint(10, 500)}.{rng.randint(0, 99):02d}",
        lambda: f"手数料は{rng.randint(1, 50) * 100}円です",
        lambda: f"{rng.randint(1, 9) * 100_000:,}원 이체했습니다",
        lambda: f"서류 {rng.randint(1, 5)}부 준비하세요",
        lambda: f"{rng.randint(2, 6)}명이 옵니다",
        lambda: f"please bring {rng.randint(2, 4)} copies and {rng.randint(1, 3)} photos",
        lambda: f"예약번호는 {_booking_id(rng)}입니다",
        lambda: f"booking {_booking_id(rng)} is confirmed",
        lambda: f"예약 번호 {rng.randint(1000, 9999)}번이요",
        lambda: f"사건번호 {rng.randint(2019, 2025)}가단{rng.randint(10000, 99999)}",
        lambda: f"Case {rng.randint(2019, 2025)}-{rng.randint(1, 999_999):06d}",
        lambda: f"처리는 {rng.randint(3, 5)}~{rng.randint(6, 10)}일 걸립니다",
        lambda: f"page {rng.randint(1, 30)} of {rng.randint(30, 60)}",
        lambda: f"room {rng.randint(100, 1999)}",
        lambda: f"{rng.randint(1, 12)}층 {rng.randint(1, 20)}번 창구로 오세요",
        lambda: rng.choice(
            [
                "이사 가려고 합니다",
                "오이 두 개",
                "일이 많아요",
                "구청에 가서 서류를 떼세요",
                "영사관 업무는 일일 처리됩니다",
                "사이에 있어요",
                "이 서류를 구청에 내세요",
                "삼촌이 대신 오셔도 됩니다",
                "육아 휴직 중이에요",
                "칠월 일일에 오세요",
                "구월 십오일입니다",
                "이천이십오년 십이월 일일",
                "사오 일 걸려요",
                "one or two days",
                "two or three weeks",
                "さんにんで行きます",
                "いちにちに二回",
                "会議は三時から",
                "一緒に行きましょう",
            ]
        ),
        lambda: f"{rng.randint(1, 3)}번째 서류가 빠졌어요",
        lambda: f"우편번호 {rng.randint(1000, 63999):05d}",
        lambda: f"{rng.randint(10, 90)}%",
        lambda: f"flight KE{rng.randint(1, 999)}",
        lambda: f"나이는 {rng.randint(20, 80)}살",
        lambda: f"{rng.randint(1990, 2000)} {rng.randint(2001, 2010)} {rng.randint(2011, 2020)}",
        lambda: f"order {rng.randint(10_000, 99_999)}",
    ]
    return [rng.choice(makers)() for _ in range(count)]


_SEPARATOR_WORDS = re.compile(r"다시|하이픈|대시|빼기|dash|hyphen|ハイフン", re.IGNORECASE)
_LEFT_DIGIT = re.compile(
    r"\d|[공영빵일이삼사오육륙칠팔구〇一二三四五六七八九]|"
    r"ゼロ|れい|まる|いち|にい|に|さん|よん|ご|ろく|なな|はち|きゅう|"
    r"\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b",
    re.IGNORECASE,
)


def masked_fully(output: str, span: tuple[int, int]) -> bool:
    """Nothing of the number at ``span`` is left readable in ``output``.

    Masking keeps lengths, so the span is the same in both; what is not ``*`` there
    may be spaces and spoken separators, never a digit or a number word.
    """
    start, end = span
    leftover = re.sub(r"\*+", " ", output[start:end])
    leftover = _SEPARATOR_WORDS.sub(" ", leftover)
    return _LEFT_DIGIT.search(leftover) is None
