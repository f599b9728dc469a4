"""Topics are admin data; their names are checked against the one language list."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kernel.languages import LANGUAGES
from scheduler.topics import DEFAULT_TOPICS, Topic


def test_topic_names_use_the_one_language_list() -> None:
    names = {"ko": "연금", "en": "Pension", "fr": "Retraite"}
    with pytest.raises(ValidationError, match=r"unknown language code\(s\) fr; use ko, en, ja"):
        Topic(id="pension", names=names)
    assert all(set(t.names) == set(LANGUAGES) for t in DEFAULT_TOPICS)
