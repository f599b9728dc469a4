"""Time-zone names checked against the IANA database (zoneinfo)."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

SEOUL = ZoneInfo("Asia/Seoul")


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA zone such as ``Asia/Tokyo``; ValueError saying what to send."""
    if name not in _known():
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r}; send an IANA name such as 'Asia/Tokyo' "
                "or 'America/New_York'"
            ) from None
    return name
