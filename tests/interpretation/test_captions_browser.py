"""Captions end to end in the browser: a Chromium whose fake microphone plays Korean
speech (espeak-ng WAV via ``--use-file-for-fake-audio-capture``), and another
participant's page that receives ``caption`` messages with translations.

The server runs in-process: the real app from ``web.app.build_app``, with tiny
Argos packages (ko->en, en->ja) installed in its data directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from signaling.protocol import Role
from tests.interpretation.browser_support import ARGS, CHROMIUM, App, captions_server
from tests.interpretation.speech_fixture import korean_wav
from web.appkeys import ROOMS

# solo: the Makefile runs this alone (live recognition in a page
# would measure another test process as well)
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(150), pytest.mark.solo]


@pytest.fixture
async def captions_app(
    tmp_path: Path, redis_url: str, redis: object, argos_archives: dict[tuple[str, str], Path]
) -> AsyncIterator[App]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (one stat at set-up)
        pytest.skip(f"no Chromium at {CHROMIUM}")
    archives = [argos_archives[pair] for pair in [("ko", "en"), ("en", "ja")]]
    async with captions_server(tmp_path / "data", redis_url, archives) as app:
        yield app


async def _until(page: Any, expr: str, timeout_s: float = 30.0) -> Any:
    """Poll ``expr`` (``c`` = window.Captions.state, ``s`` = window.seoulbridge)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await page.evaluate(
            "() => { const c = window.Captions && window.Captions.state;"
            f" const s = window.seoulbridge; return (c && s) ? ({expr}) : null; }}"
        )
        if value:
            return value
        if time.monotonic() > deadline:
            log = await page.evaluate("() => (window.seoulbridge?.log || []).slice(-30)")
            raise AssertionError(f"timed out waiting for {expr}; page log:\n" + "\n".join(log))
        await asyncio.sleep(0.2)


async def _open_and_join(browser: Any, url: str) -> Any:
    context = await browser.new_context(locale="en-US", viewport={"width": 1100, "height": 760})
    page = await context.new_page()
    page.set_default_timeout(20_000)
    await page.goto(url)
    await _until(page, "s.screen === 'check'")
    await page.locator("#join-btn:enabled").click()
    await _until(page, "s.screen === 'call'")
    return page


async def test_korean_speech_reaches_another_page_as_translated_captions(
    captions_app: App, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    wav = korean_wav(tmp_path / "ko48k.wav", rate=48_000, pad_s=1.0)
    record = await captions_app.app[ROOMS].create(title="자막 테스트")
    speaker_url = captions_app.link(record.id, Role.COUNSELOR, "상담사 김", "ko")
    listener_url = captions_app.link(record.id, Role.INTERPRETER, "Sato", "ja")
    async with async_playwright() as pw:
        speaking = await pw.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, f"--use-file-for-fake-audio-capture={wav}"]
        )
        listening = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            listener = await _open_and_join(listening, listener_url)
            await _open_and_join(speaking, speaker_url)
            # The component is mounted; the listener's caption language is Japanese.
            await listener.locator("#captions .cc-live").wait_for(state="visible")
            caption = await _until(
                listener,
                "c.received.find(m => m.final && m.language === 'ko'"
                " && Object.keys(m.translations).length > 0)",
                timeout_s=45,
            )
            assert caption["type"] == "caption"
            assert caption["speaker_name"] == "상담사 김"
            assert re.search(r"[가-힣]", caption["text"])
            assert set(caption["translations"]) == {"ja"}  # nobody asked for English yet
            assert caption["end"] > caption["start"]
            assert await _until(listener, "c.received.some(m => !m.final)")  # partials too
            # the live area: the speaker with their role; the item in the history has the
            # original and the translation
            assert (await listener.locator("#captions .cc-main").inner_text()).strip()
            item = listener.locator(f"#captions .cc-history li[data-id='{caption['id']}']")
            assert re.search(r"[가-힣]", await item.locator(".cc-item-original").inner_text())
            assert (
                await item.locator(".cc-item-translation").inner_text()
                == (caption["translations"]["ja"])
            )
            assert caption["speaker_role"] == "counselor" and caption["pending"] == []

            # Bilingual: a translated final shows the original above it, smaller.
            shown = await _until(
                listener,
                "(() => { const m = c.current;"
                " const live = document.querySelector('#captions .cc-live');"
                " return m && m.final && live.dataset.state === 'translated' && {"
                " main: live.querySelector('.cc-main').innerText,"
                " source: live.querySelector('.cc-source').innerText,"
                " speaker: live.querySelector('.cc-speaker').innerText,"
                " mainPx: parseFloat(getComputedStyle(live.querySelector('.cc-main')).fontSize),"
                " sourcePx: parseFloat("
                "getComputedStyle(live.querySelector('.cc-source')).fontSize),"
                " msg: m}; })()",
                timeout_s=45,
            )
            assert shown["main"] == shown["msg"]["translations"]["ja"]
            assert shown["source"] == shown["msg"]["text"]
            assert shown["sourcePx"] < shown["mainPx"]
            assert (
                "상담사 김" in shown["speaker"] and "相談員" in shown["speaker"]
            )  # a Japanese page
            # ... and without it, the translation alone
            await listener.locator("#caption-bilingual").uncheck()
            assert not (await listener.locator("#captions .cc-source").inner_text()).strip()
            await listener.locator("#caption-bilingual").check()

            # Three text sizes, remembered on this device.
            before = shown["mainPx"]
            await listener.locator("#caption-size").select_option("l")
            large = await listener.evaluate(
                "() => parseFloat(getComputedStyle("
                "document.querySelector('#captions .cc-main')).fontSize)"
            )
            assert large > before
            assert (
                await listener.evaluate("() => localStorage.getItem('seoulbridge.captionSize')")
                == "l"
            )

            # Screen readers: each final announced once, settled; no partial ever.
            announced = await _until(
                listener,
                "document.querySelectorAll('#caption-announcements p').length >= 1 &&"
                " Array.from(document.querySelectorAll('#caption-announcements p'))"
                ".map(p => ({id: p.dataset.id, text: p.innerText}))",
            )
            ids = [a["id"] for a in announced]
            assert len(ids) == len(set(ids))
            finals = await listener.evaluate(
                "() => Object.fromEntries(window.Captions.state.history.map(m => [m.id, m]))"
            )
            partial_texts = await listener.evaluate(
                "() => window.Captions.state.received.filter(m => !m.final).map(m => m.text)"
            )
            for a in announced:
                final = finals[a["id"]]
                assert a["text"].endswith(final["translations"].get("ja") or final["text"])
                assert not any(
                    a["text"].endswith(": " + p) for p in partial_texts if p != final["text"]
                )
            live_region = await listener.evaluate(
                "() => document.querySelector('#captions .cc-live').getAttribute('aria-live')"
            )
            assert live_region is None  # the visible area is not read out on every partial

            # Change the caption language mid-call: the next captions carry English.
            await listener.locator("#caption-language").select_option("en")
            n = await listener.evaluate("() => window.Captions.state.received.length")
            later = await _until(
                listener,
                f"c.received.slice({n}).find(m => m.final && m.translations.en)",
                timeout_s=45,
            )
            assert later["translations"]["en"]
            assert "ja" not in later["translations"]  # no one reads Japanese any more
            item = listener.locator(f"#captions .cc-history li[data-id='{later['id']}']")
            assert (
                await item.locator(".cc-item-translation").inner_text()
                == later["translations"]["en"]
            )
            # the latest translation stays on the live area while the next sentence is spoken
            await _until(
                listener,
                "(() => { const live = document.querySelector('#captions .cc-live');"
                " return live.dataset.state === 'translated'"
                " ? live.querySelector('.cc-main').innerText"
                " : live.querySelector('.cc-note').innerText; })()",
            )
        finally:
            await speaking.close()
            await listening.close()
