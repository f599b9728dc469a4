"""The real app in-process and headless Chromium pages for the caption and interpretation tests.

Each page can speak: ``fake_audio`` is a WAV that Chromium plays as its microphone
(``--use-file-for-fake-audio-capture``, looping), so each speaker is its own browser.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from interpretation.packages import PackageStore
from signaling.protocol import Role
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.node_process import free_port
from web.app import build_app
from web.appkeys import CAPTIONS, TOKENS
from web.settings import Settings

# A caption's speaker plays its utterance on a page nobody clicked.
ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]


@dataclass
class App:
    app: web.Application
    base_url: str
    browsers: list[Any] = field(default_factory=list)

    def link(self, room_id: str, role: Role, name: str, lang: str) -> str:
        token = self.app[TOKENS].issue_join(
            room_id=room_id, role=role, name=name, language=lang, ttl_s=600
        )
        return f"{self.base_url}/join/{room_id}?t={token}"


@asynccontextmanager
async def captions_server(
    data: Path, redis_url: str, archives: Iterable[Path] = ()
) -> AsyncIterator[App]:
    """The real app on a free port, with these translation packages installed (maybe none)."""
    store = PackageStore(data / "argos" / "packages")
    for archive in archives:
        store.install(archive)
    # The port is chosen first: the join step sends pages to the settings' public URL.
    port = free_port()
    settings = Settings(data_dir=data, redis_url=redis_url, token_secret="c" * 40, port=port)
    app = build_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    await asyncio.to_thread(app[CAPTIONS].models.get, "ko")  # load Vosk before the clock runs
    try:
        yield App(app, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


async def launch(pw: Any, fake_audio: Path | None = None) -> Any:
    args = list(ARGS)
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_audio}")
    return await pw.chromium.launch(executable_path=CHROMIUM, args=args)


async def until(page: Any, expr: str, timeout_s: float = 30.0) -> Any:
    """Poll ``expr`` (``c`` = window.Captions.state or {}, ``s`` = window.seoulbridge)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await page.evaluate(
            "() => { const c = (window.Captions && window.Captions.state) || {};"
            f" const s = window.seoulbridge; return s ? ({expr}) : null; }}"
        )
        if value:
            return value
        if time.monotonic() > deadline:
            log = await page.evaluate("() => (window.seoulbridge?.log || []).slice(-30)")
            raise AssertionError(f"timed out waiting for {expr}; page log:\n" + "\n".join(log))
        await asyncio.sleep(0.2)


async def open_page(
    browser: Any, url: str, *, locale: str = "en-US", width: int = 1100, height: int = 760
) -> Any:
    context = await browser.new_context(locale=locale, viewport={"width": width, "height": height})
    page = await context.new_page()
    page.set_default_timeout(20_000)
    await page.goto(url)
    await until(page, "s.screen === 'check'")
    return page


async def join(page: Any) -> None:
    await page.locator("#join-btn:enabled").click()


async def open_and_join(browser: Any, url: str, **kw: Any) -> Any:
    page = await open_page(browser, url, **kw)
    await join(page)
    await until(page, "s.screen === 'call'")
    return page


async def admit_all(counselor: Any) -> None:
    """The counselor admits whoever waits in the lobby."""
    await until(counselor, "s.waiting.length > 0")
    await counselor.locator("#lobby-list button.admit").first.click()
