"""Things that must be written in exactly one place in the source."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kernel", "signaling", "media", "interpretation", "scheduler", "web")


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }


def test_join_links_are_built_in_one_place() -> None:
    """Booking, walk-in, ad-hoc room and CLI links all come from scheduler.join_links."""
    link = re.compile(r"""f["'].*/join/\{""")
    builders = sorted(name for name, text in _sources().items() if link.search(text))
    assert builders == ["scheduler/join_links.py"]


def test_json_request_bodies_are_parsed_in_one_place() -> None:
    reader = re.compile(r"await request\.(read|json|text)\(\)")
    readers = sorted(name for name, text in _sources().items() if reader.search(text))
    assert readers == ["web/http_json.py"], readers
