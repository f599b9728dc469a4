"""The browsers of the tests run below the server they test, never above it.

As root, Chromium sets its browser and GPU processes to nice -8 (and audio threads to
real time). On a 2-core CI machine that gave the three pages of a call about six times
the server's CPU share: join steps unanswered for 8 s, the server's Redis heartbeat
failing, recognition behind. In production the server has its own CPU; here the
browsers run at nice 10 without the capability to undo it
(tests/support/chromium_as_a_user.sh).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM_ARGS
from tests.support.chromium import CHROMIUM, REAL_CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(REAL_CHROMIUM).exists(), reason=f"no Chromium at {REAL_CHROMIUM}"),
]

SCHED_FIFO, SCHED_RR = 1, 2
#: the test browsers' niceness (the server under test runs at 0)
BROWSER_NICE = 10


def _tree_of_marked(mark: str) -> list[int]:
    """Every process whose command line holds ``mark``, with all its descendants
    (one scan of ``/proc``)."""
    kids: dict[int, list[int]] = {}
    todo: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_text(errors="replace")
        except OSError:
            continue
        kids.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
        if mark in cmdline:
            todo.append(int(entry))
    out: list[int] = []
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += kids.get(pid, [])
    return out


def _threads(pid: int) -> list[tuple[str, int, int]]:
    """(name, nice, scheduling policy) of each thread of ``pid``."""
    found = []
    with_tasks = Path(f"/proc/{pid}/task")
    for task in with_tasks.iterdir() if with_tasks.exists() else []:
        try:
            name, rest = (task / "stat").read_text().split("(", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):
            continue
        fields = rest.split()
        found.append((name, int(fields[16]), int(fields[38])))
    return found


@pytest.mark.timeout(60)
async def test_the_test_browser_runs_below_the_server(playwright: Any) -> None:
    mark = f"--seoulbridge-test-mark={uuid.uuid4().hex}"
    browser = await playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, mark]
    )
    try:
        page = await browser.new_page()
        await page.goto("about:blank")
        await asyncio.sleep(1.0)  # the GPU process and the renderer are up
        pids = _tree_of_marked(mark)
        assert pids, "the browser's process was not found by its command line"
        threads = [t for pid in pids for t in _threads(pid)]
        assert len(threads) > 10, threads
        boosted = [t for t in threads if t[1] < BROWSER_NICE or t[2] in (SCHED_FIFO, SCHED_RR)]
        assert not boosted, f"threads above nice {BROWSER_NICE} (name, nice, policy): {boosted}"
    finally:
        await browser.close()
