"""The server restarts under a live call: the three pages come back by themselves.

Three Chromium pages in a consultation (the resident admitted from the lobby);
the server process is stopped (SIGTERM) and started again on the same port and
data directory. Every page is told, reconnects through the join step on its
own, gets a new peer connection and media from both others again; the resident
is not sent back to the lobby. The time from the restart to media on every page
is printed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, Server
from tests.browser.test_call import PAGE_ERRORS, _join, _open, _room, _state, _until, _wait_media
from tests.support.node_process import NodeProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECOVERY_WAIT_S = 30.0


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    node = NodeProcess(data_dir, extra_args=("--demo",))
    node.start()
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture
def server_of(node: NodeProcess) -> Server:
    return Server(node.base_url, node.data_dir, node.log_path, node.token_secret)


async def _new_pc_with_media(page: Any, others: set[str], deadline: float) -> dict[str, Any]:
    await _until(page, "s.pc && s.pc !== window.__pcBeforeRestart", RECOVERY_WAIT_S)
    return await _wait_media(page, others, deadline)


@pytest.fixture
async def pages(browser: Any, server_of: Server) -> AsyncIterator[dict[str, Any]]:
    _, links = _room(server_of)
    opened = {role: await _open(browser, url) for role, url in links.items()}
    try:
        yield opened
    finally:
        for page in opened.values():
            await page.context.close()


@pytest.mark.timeout(150)
async def test_pages_come_back_after_a_restart_still_admitted(
    node: NodeProcess, pages: dict[str, Any], capsys: Any
) -> None:
    PAGE_ERRORS.clear()
    counselor, resident = pages["counselor"], pages["resident"]
    for role in ("counselor", "interpreter"):
        await _join(pages[role])
        await _until(pages[role], "s.screen === 'call'")
    await _join(resident)
    await _until(resident, "s.screen === 'lobby'")
    rid = await _state(resident, "s.you.id")
    await counselor.locator(f"#lobby-list li[data-pid='{rid}'] button.admit").click()
    await _until(resident, "s.screen === 'call'")
    ids = {role: await _state(p, "s.you.id") for role, p in pages.items()}
    deadline = time.monotonic() + 30
    for role, page in pages.items():
        await _wait_media(page, {ids[r] for r in pages if r != role}, deadline)
    marks = {}
    for role, page in pages.items():
        await page.evaluate("() => { window.__pcBeforeRestart = window.seoulbridge.pc; }")
        marks[role] = await _state(page, "s.log.length")

    took_stop = await asyncio.to_thread(node.stop, signal.SIGTERM)
    restarted = time.monotonic()
    await asyncio.to_thread(node.start)
    up = time.monotonic() - restarted

    deadline = time.monotonic() + RECOVERY_WAIT_S
    for role, page in pages.items():
        others = {ids[r] for r in pages if r != role}
        stats = await _new_pc_with_media(page, others, deadline)
        ok = all(stats.get(p, {}).get("framesDecoded", 0) > 0 for p in others)
        if not ok:
            log = await _state(page, "s.log.slice(-40)")
            pytest.fail(f"{role}: no media after the restart: {stats}\n" + "\n".join(log))
    back = time.monotonic() - restarted
    for role, page in pages.items():
        since = await _state(page, f"s.log.slice({marks[role]})")
        assert any("server_restarting" in line for line in since), (role, since)
        assert await _state(page, "s.screen") == "call", role
        if role == "resident":
            assert not any(line.endswith("<- lobby") for line in since), since
    # While the server is down the browser logs its refused reconnects; nothing else.
    expected = ("Failed to load resource", "ERR_CONNECTION_REFUSED")
    errors = [e for e in PAGE_ERRORS if not any(x in e for x in expected)]
    assert not errors, errors
    with capsys.disabled():
        print(
            f"\nrestart under a call: stop {took_stop:.1f} s, server up {up:.1f} s, "
            f"media back on all three pages {back:.1f} s after the restart began"
        )
