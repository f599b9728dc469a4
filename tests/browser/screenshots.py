"""Screenshots of every call-page screen at desktop and phone width, to look at.

    .venv/bin/python -m tests.browser.screenshots --out /tmp/shots

Starts the server (``serve --demo``) on a free port with a throw-away data
directory, drives headless Chromium with fake devices through device check,
lobby, a three-party call, the end of it and a refused (expired) link, and
writes PNGs. Not a test: nothing is asserted. Korean, Japanese and Chinese text
needs CJK fonts on the machine (Debian: fonts-noto-cjk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

from signaling.protocol import Role
from signaling.tokens import TokenService
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, REPO, TOKEN_SECRET, _free_port

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}


async def _until(page: Any, expr: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await page.evaluate(
        f"() => {{ const s = window.seoulbridge; return !!(s && ({expr})); }}"
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(expr)
        await asyncio.sleep(0.1)


async def take(base: str, room: str, out: Path) -> None:
    tokens = TokenService(TOKEN_SECRET)

    def link(role: Role, name: str, lang: str, **kw: Any) -> str:
        token = tokens.issue_join(
            room_id=room, role=role, name=name, language=lang, ttl_s=3600, **kw
        )
        return f"{base}/join/{room}?t={token}"

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        async def open_page(url: str, size: dict[str, int]) -> Any:
            context = await browser.new_context(viewport=size, locale="en-US")  # type: ignore[arg-type]
            page = await context.new_page()
            await page.goto(url)
            return page

        async def shot(page: Any, name: str, full: bool = True) -> None:
            await asyncio.sleep(0.4)
            await page.screenshot(path=str(out / f"{name}.png"), full_page=full)
            print(out / f"{name}.png")

        expired = link(Role.RESIDENT, "Kim Yui", "ja", expires_at=time.time() - 10)
        for size, tag in ((DESKTOP, "desktop"), (PHONE, "phone")):
            page = await open_page(expired, size)
            await _until(page, "s.screen === 'error'")
            await shot(page, f"error-expired-{tag}")
            await page.context.close()

        counselor = await open_page(link(Role.COUNSELOR, "상담사 김민지", "ko"), DESKTOP)
        await _until(counselor, "s.screen === 'check'")
        await shot(counselor, "check-ko-desktop")
        await counselor.click("#join-btn")
        await _until(counselor, "s.screen === 'call'")
        interpreter = await open_page(link(Role.INTERPRETER, "通訳 佐藤", "ja"), PHONE)
        await _until(interpreter, "s.screen === 'check'")
        await interpreter.click("#join-btn")
        await _until(interpreter, "s.screen === 'call'")
        resident = await open_page(link(Role.RESIDENT, "김유이 (Kim Yui)", "ja"), PHONE)
        await _until(resident, "s.screen === 'check'")
        await shot(resident, "check-ja-phone")
        await resident.click("#join-btn")
        await _until(resident, "s.screen === 'lobby'")
        await shot(resident, "lobby-ja-phone")
        await shot(counselor, "call-ko-desktop-knock")
        await counselor.click("#lobby-list button.admit")
        await _until(resident, "s.screen === 'call' && Object.keys(s.firstFrameBy).length === 2")
        await counselor.locator("#chat-input").fill("안녕하세요. 상담을 시작하겠습니다.")
        await counselor.locator("#chat-form button[type=submit]").click()
        await asyncio.sleep(2)
        await shot(counselor, "call-ko-desktop")
        await shot(resident, "call-ja-phone")
        await shot(interpreter, "call-ja-phone-viewport", full=False)
        await resident.set_viewport_size(DESKTOP)
        await resident.select_option("#lang-select", "ru")
        await shot(resident, "call-ru-desktop")
        await counselor.set_viewport_size(PHONE)
        await shot(counselor, "call-ko-phone")
        await counselor.set_viewport_size(DESKTOP)
        await counselor.click("#btn-end")
        await shot(counselor, "call-ko-desktop-end-confirm", full=False)
        await counselor.click("#end-yes")
        await _until(resident, "s.screen === 'final'")
        await resident.set_viewport_size(PHONE)
        await shot(resident, "final-ru-phone")
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        log_path = Path(data_dir) / "server.log"
        env = os.environ | {"SEOULBRIDGE_TOKEN_SECRET": TOKEN_SECRET}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "web.cli",
                    "serve",
                    "--demo",
                    "--port",
                    str(port),
                    "--data-dir",
                    data_dir,
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while not (
                match := re.search(r"/join/(r-[\w-]+)\?", log_path.read_text(errors="replace"))
            ):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        "the server did not start:\n" + log_path.read_text(errors="replace")
                    )
                time.sleep(0.2)
            asyncio.run(take(f"http://127.0.0.1:{port}", match.group(1), args.out))
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
