"""RateLimitedLog: one line per kind per interval, and the count of what it held back."""

from __future__ import annotations

import logging

import pytest

from kernel.log_limits import MAX_KINDS, RateLimitedLog


def test_one_line_per_kind_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("t"), interval_s=10.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO)
    assert log.info("a", "first %s", 1)
    assert not any(log.info("a", "again") for _ in range(99))
    assert log.info("b", "another kind")
    assert log.suppressed == 99
    now[0] = 10.5
    assert log.info("a", "later")
    assert [r.getMessage() for r in caplog.records] == [
        "first 1",
        "another kind",
        "later (and 99 more like it in the last 10 s)",
    ]
    for i in range(MAX_KINDS * 3):  # kinds named by input cannot grow it without end
        log.info(f"k{i}", "x")
    assert len(log._kinds) <= MAX_KINDS
