"""The five languages of the service: one list for every package and every page.

Residents, staff, captions and the UI all speak in these codes (ISO 639-1). The
pages read the same list from ``GET /languages.js`` (served by ``web.app``).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Language = Literal["ko", "en", "ja", "zh", "ru"]
#: In the order the pages offer them: Korean first (the service's own language).
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)

#: Each language's name in itself, for language pickers.
NATIVE_NAMES: Final[dict[Language, str]] = {
    "ko": "한국어",
    "en": "English",
    "ja": "日本語",
    "zh": "中文",
    "ru": "Русский",
}


def is_language(code: object) -> bool:
    return code in LANGUAGES


def check_languages(codes: list[str]) -> list[str]:
    """``codes`` unchanged, or ``ValueError`` naming the unknown ones and the choices."""
    unknown = [c for c in codes if c not in LANGUAGES]
    if unknown:
        raise ValueError(
            f"unknown language code(s) {', '.join(unknown)}; use {', '.join(LANGUAGES)}"
        )
    return codes
