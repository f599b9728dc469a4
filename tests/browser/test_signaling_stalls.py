"""The page's way back to the server stalls without failing: it gives up and tries again.

After a network change a browser can leave a request or a socket hanging on a path
that no longer exists: no error, no answer. Measured in the poor-link namespace test
(tests/browser/test_poor_link.py) after a change of address:

* the join step's ``fetch`` never answered, and the page, doing one join step at a
  time, never tried another (no media 25 s later, and none after); with a bound of
  8 s a new address still took 21.6 s (two join steps timed out in a row);
* the socket connected and said "joined", then nothing more came over it (no offer,
  not even engine.io's pings): the page waited 45 s for socket.io's ping timeout
  while the server offered three times into the silence.

Both are made here on loopback, deterministically, with Playwright's interception:
a join step held without an answer, and a socket whose server-to-page direction goes
quiet once "joined" has passed. The page must come back with media on a new peer
connection well before socket.io's own 45 s.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.browser.conftest import Server
from tests.browser.test_call import _join, _open, _room, _state, _until, _wait_media

pytestmark = pytest.mark.browser

#: Media again on a new peer connection after the stall, at most. socket.io's own ping
#: timeout (25 s + 20 s) is what the page fell back on before; the page's own bounds
#: (web/static/call.js: JOIN_STEP_TIMEOUT_MS, OFFER_WAIT_MS) are 8 s each.
BACK_WITHIN_S = 30.0


@pytest.fixture
async def call(server: Server, browser: Any) -> AsyncIterator[dict[str, Any]]:
    _, links = _room(server)
    pages = {role: await _open(browser, links[role]) for role in ("counselor", "resident")}
    try:
        yield pages
    finally:
        for page in pages.values():
            await page.context.close()


async def _in_call(pages: dict[str, Any]) -> dict[str, str]:
    counselor, resident = pages["counselor"], pages["resident"]
    await _join(counselor)
    await _until(counselor, "s.screen === 'call'")
    await _join(resident)
    await _until(resident, "s.screen === 'lobby'")
    await counselor.locator("#lobby-list button.admit").click()
    await _until(resident, "s.screen === 'call'")
    ids = {role: str(await _state(page, "s.you.id")) for role, page in pages.items()}
    media = await _wait_media(resident, {ids["counselor"]}, time.monotonic() + 25)
    assert media.get(ids["counselor"], {}).get("framesDecoded", 0) > 0, media
    return ids


async def _back_with_media(resident: Any, counselor_id: str, offers: int, what: str) -> float:
    """Seconds until the resident has a new, connected peer connection with media."""
    started = time.monotonic()
    deadline = started + BACK_WITHIN_S
    while time.monotonic() < deadline:
        ready = await _state(
            resident,
            f"s.screen === 'call' && s.offersHandled > {offers} && s.pcState === 'connected'",
        )
        if ready:
            stats = await resident.evaluate("() => window.seoulbridge.stats()")
            if stats.get(counselor_id, {}).get("framesDecoded", 0) > 0:
                return time.monotonic() - started
        await asyncio.sleep(0.2)
    log = await _state(resident, "s.log.slice(-40)")
    raise AssertionError(
        f"{what}: no media on a new peer connection within {BACK_WITHIN_S:g} s; page log:\n"
        + "\n".join(log)
    )


@pytest.mark.timeout(150)
async def test_a_join_step_that_never_answers_is_given_up_and_tried_again(
    call: dict[str, Any], capsys: Any
) -> None:
    """Two breaks in one call. One ask hanging: the second, made beside it after 2 s,
    answers. Two hanging: both are given up after 8 s and the next join step passes."""
    ids = await _in_call(call)
    resident = call["resident"]
    held: list[Any] = []
    hanging = {"asks": 0}

    async def hold(route: Any) -> None:
        if hanging["asks"] > 0:
            hanging["asks"] -= 1
            held.append(route)  # never answered: the request hangs, as on a dead path
            return
        await route.continue_()

    await resident.route("**/api/join-info*", hold)
    took = {}
    try:
        for asks in (1, 2):
            hanging["asks"] = asks
            mark = await _state(resident, "s.log.length")
            offers = await _state(resident, "s.offersHandled")
            await resident.evaluate("() => window.seoulbridge.socket.io.engine.close()")
            took[asks] = await _back_with_media(
                resident, ids["counselor"], offers, f"{asks} join step(s) hanging"
            )
            assert hanging["asks"] == 0, f"{asks - hanging['asks']} of {asks} asks made"
            log = await _state(resident, f"s.log.slice({mark})")
            assert any("asking again on a new connection" in line for line in log), log[-30:]
            timed_out = any("join step timed out" in line for line in log)
            assert timed_out is (asks == 2), log[-30:]
        assert len(held) == 3, len(held)
    finally:
        for route in held:
            await route.abort()
    with capsys.disabled():
        print(
            f"\nmedia again {took[1]:.1f} s after the socket closed past one hanging join step,"
            f" {took[2]:.1f} s past two"
        )


@pytest.mark.timeout(150)
async def test_a_socket_that_goes_quiet_after_joining_is_replaced(
    server: Server, browser: Any, capsys: Any
) -> None:
    _, links = _room(server)
    counselor = await _open(browser, links["counselor"])
    # The resident's page is opened with its socket routed: every connection passes,
    # until ``quiet`` says how many of the next ones go quiet once "joined" has passed.
    context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    resident = await context.new_page()
    quiet = {"next": 0, "made": 0}

    def route_socket(ws: Any) -> None:
        server_side = ws.connect_to_server()
        goes_quiet = quiet["next"] > 0
        if goes_quiet:
            quiet["next"] -= 1
            quiet["made"] += 1
        passed = {"joined": False}

        def to_page(message: str | bytes) -> None:
            if passed["joined"]:
                return  # nothing more reaches the page, not even engine.io's pings
            if goes_quiet and isinstance(message, str) and '"type":"joined"' in message:
                passed["joined"] = True
            ws.send(message)

        server_side.on_message(to_page)
        ws.on_message(server_side.send)

    await resident.route_web_socket(re.compile(r"/socket\.io/"), route_socket)
    await resident.goto(links["resident"])
    pages = {"counselor": counselor, "resident": resident}
    try:
        ids = await _in_call(pages)
        offers = await _state(resident, "s.offersHandled")
        # Two in a row: the first is replaced once the old peer connection goes silent
        # (the server closed it for the new socket); the second has no silent peer
        # connection left to notice, only the offer that never comes.
        quiet["next"] = 2
        await resident.evaluate("() => window.seoulbridge.socket.io.engine.close()")
        took = await _back_with_media(resident, ids["counselor"], offers, "a quiet socket")
        assert quiet["made"] == 2, quiet
        log = await _state(resident, "s.log")
        assert any("no offer" in line for line in log), log[-30:]
    finally:
        for page in pages.values():
            await page.context.close()
    with capsys.disabled():
        print(f"\nmedia again {took:.1f} s after the socket closed, past two quiet sockets")
