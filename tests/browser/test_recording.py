"""Recording with consent, driven through the call page in three headless Chromium pages.

The counselor clicks Record; the interpreter and the resident are asked in a modal
dialog. A decline stops the request for everyone (the counselor is told who
declined) and nothing is written. Asked again, both agree (the resident by
keyboard only): every page shows the recording indicator and the recording
directory appears, not before. The counselor stops: the indicator goes away.

Set SEOULBRIDGE_SHOTS=/some/dir to also save screenshots of the dialog and the
indicator at desktop and phone width.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from signaling.protocol import Role
from signaling.tokens import TokenService
from tests.browser.conftest import Server
from tests.browser.test_call import PAGE_ERRORS, _join, _open, _room, _state
from tests.browser.test_call import _until as _until_20s

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("SEOULBRIDGE_SHOTS")
if SHOTS:
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}


PAGES: dict[str, Any] = {}  # role -> page, for the logs when something times out


async def _until(page: Any, expr: str) -> None:
    """Generous (the machine may be busy with other work); on a timeout, every page's log."""
    try:
        await _until_20s(page, expr, timeout_s=40.0)
    except AssertionError as exc:
        logs = []
        for role, other in PAGES.items():
            if other is not page:
                lines = await other.evaluate("() => window.seoulbridge.log.slice(-25)")
                logs.append(f"--- {role} page log:\n" + "\n".join(lines))
        raise AssertionError(str(exc) + "\n" + "\n".join(logs)) from None


async def _shot(page: Any, name: str, *, phone: bool = False, full: bool = False) -> None:
    """Screenshots only when asked for (SEOULBRIDGE_SHOTS); the viewport is restored."""
    if not SHOTS:
        return
    if phone:
        await page.set_viewport_size(PHONE)
    await asyncio.sleep(0.4)
    await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full)
    if phone:
        await page.set_viewport_size(DESKTOP)


async def _indicator(page: Any) -> tuple[bool, str]:
    el = page.locator("#rec-indicator")
    return await el.is_visible(), (await el.inner_text()).strip()


async def _dialog_open(page: Any) -> bool:
    return bool(await page.evaluate("() => document.getElementById('rec-dialog').open"))


@pytest.mark.timeout(180)
async def test_recording_needs_everyones_consent(server: Server, browser: Any) -> None:
    PAGE_ERRORS.clear()
    room_id, links = _room(server)
    recordings = server.data_dir / "recordings" / room_id
    counselor = await _open(browser, links["counselor"], server=server)
    interpreter = await _open(browser, links["interpreter"], server=server)
    resident = await _open(browser, links["resident"], server=server)
    pages = {"counselor": counselor, "interpreter": interpreter, "resident": resident}
    asked = {"interpreter": interpreter, "resident": resident}
    PAGES.clear()
    PAGES.update(pages)

    for page in (counselor, interpreter):
        await _join(page)
        await _until(page, "s.screen === 'call'")
    await _join(resident)
    await _until(resident, "s.screen === 'lobby'")
    await counselor.locator("#lobby-list button.admit").click()
    await _until(resident, "s.screen === 'call'")
    for page in pages.values():
        await _until(page, "Object.keys(s.participants).length === 2 && s.pcState === 'connected'")
    ids = {role: await _state(p, "s.you.id") for role, p in pages.items()}

    # Only staff have the control; no indicator while nothing is asked.
    assert await counselor.locator("#btn-record").is_visible()
    assert not await interpreter.locator("#btn-record").is_visible()
    assert not await resident.locator("#btn-record").is_visible()
    for page in pages.values():
        assert await _state(page, "s.recordState") == "idle"
        assert not await page.locator("#rec-indicator").is_visible()

    # 1. The counselor asks; the other two are asked in a modal dialog.
    await counselor.locator("#btn-record").click()
    for role, page in asked.items():
        await _until(page, "s.consentAsked === true && s.recordState === 'asking'")
        assert await _dialog_open(page), role
        assert await page.locator("#rec-agree").is_visible()
        assert await page.locator("#rec-decline").is_visible()
        # Focus is on the question, inside the dialog.
        assert await page.evaluate(
            "() => document.getElementById('rec-dialog').contains(document.activeElement)"
        )
    await _until(counselor, "s.recordState === 'asking' && s.recordPending.length === 2")
    assert not await _dialog_open(counselor)
    assert not await _state(counselor, "s.consentAsked")
    visible, text = await _indicator(counselor)
    assert visible and "2" in text, text
    rec_button = counselor.locator("#btn-record")
    assert await rec_button.get_attribute("data-rec") == "on"
    assert await rec_button.inner_text() == await _state(counselor, "s.t('rec_stop')")
    await _shot(resident, "consent-dialog-desktop")
    await _shot(resident, "consent-dialog-phone", phone=True)
    await _shot(counselor, "indicator-asking-desktop")

    # 2. The resident declines: stopped for everyone, the counselor is told who.
    await resident.locator("#rec-decline").click()
    for role, page in pages.items():
        await _until(page, "s.recordState === 'stopped' && s.consentAsked === false")
        assert not await _dialog_open(page), role
        assert not await page.locator("#rec-indicator").is_visible(), role
    # The page's last toasts, not the toast on screen: it hides after 5 s, and on a busy
    # machine the check came after that (a fresh-clone run failed so).
    expected = await _state(counselor, "s.t('rec_declined_by', {name: 'Kim Yui'})")
    assert "Kim Yui" in expected
    await _until(counselor, "s.toasts.includes(s.t('rec_declined_by', {name: 'Kim Yui'}))")
    assert await _state(counselor, "s.recordReason") == f"declined by {ids['resident']}"
    assert await rec_button.get_attribute("data-rec") == "off"
    assert not recordings.exists(), "nothing may be written before everyone agreed"

    # 3. Asked again: the interpreter agrees with the mouse ...
    await counselor.locator("#btn-record").click()
    for page in asked.values():
        await _until(page, "s.consentAsked === true && s.recordState === 'asking'")
    await interpreter.locator("#rec-agree").click()
    await _until(interpreter, "s.consentAsked === false")
    await _until(counselor, "s.recordState === 'asking' && s.recordPending.length === 1")
    assert not await _dialog_open(interpreter)
    # Each page gets the indicator on its own socket: the interpreter's may come later.
    await _until(interpreter, "s.recordPending.length === 1")
    visible, text = await _indicator(interpreter)
    assert visible and "1" in text, text
    await asyncio.sleep(0.5)
    assert not recordings.exists(), "one answer is still missing"

    # ... and the resident with the keyboard: focus stays on the two answers.
    await resident.keyboard.press("Tab")
    assert await resident.evaluate("() => document.activeElement.id") == "rec-agree"
    await resident.keyboard.press("Tab")
    assert await resident.evaluate("() => document.activeElement.id") == "rec-decline"
    await resident.keyboard.press("Tab")
    assert await resident.evaluate("() => document.activeElement.id") == "rec-agree"
    await resident.keyboard.press("Shift+Tab")
    assert await resident.evaluate("() => document.activeElement.id") == "rec-decline"
    await resident.keyboard.press("Escape")  # does not dismiss the question unanswered
    await asyncio.sleep(0.3)
    assert await _dialog_open(resident)
    await resident.keyboard.press("Shift+Tab")
    assert await resident.evaluate("() => document.activeElement.id") == "rec-agree"
    await resident.keyboard.press("Enter")
    await _until(resident, "s.consentAsked === false")

    # Every page shows the recording indicator; the files appear.
    for role, page in pages.items():
        await _until(page, "s.recordState === 'recording' && s.consentAsked === false")
        assert not await _dialog_open(page), role
        visible, text = await _indicator(page)
        assert visible, role
        assert text == await _state(page, "s.t('rec_on')"), role
    assert await _state(counselor, "s.recordPending") == []
    for _ in range(50):
        if (recordings / "manifest.json").exists():
            break
        await asyncio.sleep(0.1)
    assert (recordings / "manifest.json").exists(), sorted(
        p.name for p in server.data_dir.rglob("*")
    )
    await _shot(resident, "indicator-recording-desktop")
    await _shot(resident, "indicator-recording-phone", phone=True)
    await _shot(counselor, "indicator-recording-counselor-phone", phone=True)
    await _shot(counselor, "recording-counselor-phone-full", phone=True, full=True)
    if SHOTS:  # the longest control labels, on a phone
        for lang in ("ru", "en", "ko"):
            await counselor.select_option("#lang-select", lang)
            await _shot(counselor, f"controls-recording-{lang}-phone", phone=True)

    # 4. Someone joins while it records: paused for everyone until they agree too.
    token = TokenService(server.token_secret).issue_join(
        room_id=room_id, role=Role.INTERPRETER, name="Wang Interpreter", language="zh", ttl_s=600
    )
    base = links["resident"].split("/join/")[0]
    late = await _open(browser, f"{base}/join/{room_id}?t={token}", server=server)
    PAGES["late"] = late
    await _join(late)
    await _until(late, "s.screen === 'call' && s.consentAsked === true")
    assert await _state(late, "s.recordState") == "paused"
    assert await _dialog_open(late)
    assert await late.locator("#rec-dialog-paused").is_visible()
    assert "Sato" not in await late.locator("#rec-dialog-ask").inner_text()
    assert "Counselor" in await late.locator("#rec-dialog-ask").inner_text()
    for role, page in pages.items():
        await _until(page, "s.recordState === 'paused'")
        visible, text = await _indicator(page)
        assert visible and text == await _state(page, "s.t('rec_paused')"), (role, text)
    await _shot(late, "consent-dialog-paused-phone", phone=True)
    await _shot(counselor, "indicator-paused-desktop")
    await late.locator("#rec-agree").click()
    for role, page in {**pages, "late": late}.items():
        await _until(page, "s.recordState === 'recording'")
        visible, text = await _indicator(page)
        assert visible and text == await _state(page, "s.t('rec_on')"), (role, text)

    # 5. The counselor stops: the indicator goes away everywhere.
    await resident.evaluate("() => { window.seoulbridge.toasts.length = 0; }")
    await counselor.locator("#btn-record").click()
    for role, page in {**pages, "late": late}.items():
        await _until(page, "s.recordState === 'stopped'")
        assert not await page.locator("#rec-indicator").is_visible(), role
    assert await _state(resident, "s.recordReason") == f"stopped by {ids['counselor']}"
    await _until(resident, "s.toasts.length > 0")
    assert "Kim Yui" not in await _state(resident, "s.toasts[s.toasts.length - 1]")
    assert await rec_button.get_attribute("data-rec") == "off"

    # Only the counselor may start a recording.
    await interpreter.evaluate("() => window.seoulbridge.send({type: 'record_start'})")
    await _until(interpreter, "s.lastError && s.lastError.code === 'not_allowed'")
    assert await _state(counselor, "s.recordState") == "stopped"

    errors = [e for e in PAGE_ERRORS if "Failed to load resource" not in e]
    assert not errors, errors
    for page in (*pages.values(), late):
        await page.context.close()
