"""Screenshots of connection quality on the call page, to look at.

    .venv/bin/python -m tests.browser.link_shots --out /tmp/netui-shots

Starts ``serve --demo`` (page_shots.demo_server), puts a counselor and an interpreter
in a call and takes the resident's page at 1280 px and 375 px, in Korean and Japanese,
with a poor link handed to the page as a ``link_quality`` message (the counselor's video
paused, the interpreter's reduced, the resident's own connection weak); then the
counselor's connection details. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

from signaling.protocol import Role
from signaling.tokens import TokenService
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, TOKEN_SECRET
from tests.browser.page_shots import LOCALES, SIZES, _post, _until, demo_server

DISPATCH = """(msg) => {
    for (const fn of window.seoulbridge.socket.listeners("message")) fn(msg);
}"""


async def take(base: str, data_dir: Path, out: Path) -> None:
    password = (data_dir / "demo-credentials.txt").read_text().strip()
    staff = _post(base, "/api/staff/login", {"username": "demo-counselor", "password": password})
    created = _post(
        base, "/api/rooms",
        {"title": "국적 상담 · 国籍の相談", "topic": "nationality",
         "resident": {"name": "김유이 (Kim Yui)", "language": "ja"}},
        bearer=staff["token"],
    )  # fmt: skip
    room = created["room"]["id"]
    tokens = TokenService(TOKEN_SECRET)

    def link(role: Role, name: str, lang: str) -> str:
        token = tokens.issue_join(room_id=room, role=role, name=name, language=lang, ttl_s=3600)
        return f"{base}/join/{room}?t={token}"

    async def shot(page: Any, name: str) -> None:
        await asyncio.sleep(0.6)
        path = out / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        print(path, flush=True)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        staff_pages = {}
        for role, name, lang in (
            (Role.COUNSELOR, "상담사 김민지", "ko"),
            (Role.INTERPRETER, "通訳 佐藤", "ja"),
        ):
            ctx = await browser.new_context(viewport=SIZES["1280"], locale=LOCALES[lang])
            page = await ctx.new_page()
            await page.goto(link(role, name, lang))
            await _until(page, "s.screen === 'check'")
            await page.click("#join-btn")
            await _until(page, "s.screen === 'call'")
            staff_pages[role] = page
        host = staff_pages[Role.COUNSELOR]
        ids = {
            role: await page.evaluate("() => window.seoulbridge.you.id")
            for role, page in staff_pages.items()
        }
        poor = {
            "type": "link_quality",
            "you": "weak",
            "participants": [
                {"participant_id": ids[Role.COUNSELOR], "link": "poor", "video": "paused"},
                {"participant_id": ids[Role.INTERPRETER], "link": "weak", "video": "reduced"},
            ],
        }
        for lang in ("ko", "ja"):
            for size in ("1280", "375"):
                ctx = await browser.new_context(viewport=SIZES[size], locale=LOCALES[lang])
                page = await ctx.new_page()
                await page.goto(link(Role.RESIDENT, "김유이 (Kim Yui)", lang) + f"&lang={lang}")
                await _until(page, "s.screen === 'check'")
                await page.click("#join-btn")
                await _until(page, "s.screen === 'lobby' || s.screen === 'call'")
                if await page.evaluate("() => window.seoulbridge.screen") == "lobby":
                    await host.locator("#lobby-list button.admit").first.click()
                await _until(page, "s.screen === 'call'")
                try:  # pictures in the other tiles, if the machine is quick enough
                    await _until(page, "Object.keys(s.firstFrameBy).length > 1", 30)
                except TimeoutError:
                    print("(no remote pictures yet: the shot is taken without)", flush=True)
                await asyncio.sleep(1.5)
                real = await page.evaluate("() => window.seoulbridge.linkQuality")
                print("the server's own report:", real, flush=True)
                await asyncio.sleep(0.6)
                # The server's own report may come at any time: hand ours just before the shot.
                await page.evaluate(DISPATCH, poor)
                path = out / f"link-resident-{lang}-{size}.png"
                await page.screenshot(path=str(path), full_page=True)
                print(path, flush=True)
                if size == "375":  # and what a phone's screen shows at first
                    path = out / f"link-resident-{lang}-{size}-screen.png"
                    await page.screenshot(path=str(path))
                    print(path, flush=True)
                await page.evaluate("() => window.seoulbridge.send({type: 'leave'})")
                await ctx.close()
        # The counselor's connection details, with someone to measure.
        resident = await (await browser.new_context(viewport=SIZES["1280"])).new_page()
        await resident.goto(link(Role.RESIDENT, "김유이 (Kim Yui)", "ja"))
        await _until(resident, "s.screen === 'check'")
        await resident.click("#join-btn")
        await _until(resident, "s.screen === 'lobby' || s.screen === 'call'")
        if await resident.evaluate("() => window.seoulbridge.screen") == "lobby":
            await host.locator("#lobby-list button.admit").first.click()
        await _until(resident, "s.screen === 'call'")
        await asyncio.sleep(3)
        await host.click("#link-details summary")
        await asyncio.sleep(4.5)
        await shot(host, "link-details-counselor-ko-1280")
        await host.set_viewport_size(SIZES["375"])
        await asyncio.sleep(2.5)
        await shot(host, "link-details-counselor-ko-375")
        # Phone: what the screen shows first, and the details panel on its own.
        await host.screenshot(path=str(out / "link-counselor-ko-375-screen.png"))
        await host.locator("#link-details").screenshot(
            path=str(out / "link-details-panel-ko-375.png")
        )
        print(out / "link-counselor-ko-375-screen.png", out / "link-details-panel-ko-375.png")
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/netui-shots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with demo_server() as (base, data_dir):
        asyncio.run(take(base, data_dir, args.out))


if __name__ == "__main__":
    main()
