"""Screenshots of the call, booking, dashboard and admin pages, to look at.

    .venv/bin/python -m tests.browser.page_shots --out /tmp/shots

Starts ``serve --demo`` on a free port with a throw-away data directory and takes each
page at 1280 px and 375 px, in Korean and Japanese, at the browser's normal text size
and at 200 % (default font size 32 px). Not a test: nothing is asserted. Korean,
Japanese and Chinese text needs CJK fonts (Debian: fonts-noto-cjk, which ``make test``
installs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

from signaling.protocol import Role
from signaling.tokens import TokenService
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, REPO, TOKEN_SECRET, _free_port

SIZES = {"1280": {"width": 1280, "height": 800}, "375": {"width": 375, "height": 812}}
LOCALES = {"ko": "ko-KR", "ja": "ja-JP"}
CAPTION = {
    "ko": "가족관계증명서와 기본증명서, 그리고 혼인관계증명서를 발급일로부터 3개월 이내의 것으로"
    " 준비해 주세요.",
    "ja": "家族関係証明書と基本証明書、それから婚姻関係証明書を、発行から3か月以内のもので"
    "ご用意ください。",
}


async def _until(page: Any, expr: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await page.evaluate(f"() => {{ const s = window.seoulbridge; return !!({expr}); }}"):
        if time.monotonic() > deadline:
            raise TimeoutError(expr)
        await asyncio.sleep(0.1)


def _post(base: str, path: str, body: dict[str, object], bearer: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


async def take(base: str, data_dir: Path, out: Path, only: str | None) -> None:
    password = (data_dir / "demo-credentials.txt").read_text().strip()
    staff = _post(base, "/api/staff/login", {"username": "demo-counselor", "password": password})
    counselor_token = staff["token"]
    # Something to show: two walk-ins waiting, one of them needing an interpreter.
    _post(base, "/api/queue", {"name": "Park Jiho", "topic": "military_service", "language": "ko"})
    _post(base, "/api/queue", {"name": "Olga Ivanova", "topic": "nationality", "language": "ru"})
    created = _post(
        base, "/api/rooms",
        {"title": "국적 상담 · 国籍の相談", "topic": "nationality",
         "resident": {"name": "김유이 (Kim Yui)", "language": "ja"}},
        bearer=counselor_token,
    )  # fmt: skip
    room = created["room"]["id"]
    tokens = TokenService(TOKEN_SECRET)

    def link(role: Role, name: str, lang: str) -> str:
        token = tokens.issue_join(room_id=room, role=role, name=name, language=lang, ttl_s=3600)
        return f"{base}/join/{room}?t={token}"

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # The counselor stays in the call, so the resident screens have someone to see.
        host = await (await browser.new_context(viewport=SIZES["1280"])).new_page()
        await host.goto(link(Role.COUNSELOR, "상담사 김민지", "ko"))
        await _until(host, "s.screen === 'check'")
        await host.click("#join-btn")
        await _until(host, "s.screen === 'call'")

        async def context(lang: str, size: str, big: bool) -> Any:
            if not big:
                return await browser.new_context(
                    viewport=SIZES[size], locale=LOCALES[lang], timezone_id="Asia/Tokyo"
                )
            profile = Path(tempfile.mkdtemp(prefix="sb-profile-"))
            (profile / "Default").mkdir()
            (profile / "Default" / "Preferences").write_text(
                json.dumps({"webkit": {"webprefs": {"default_font_size": 32}}})
            )
            return await pw.chromium.launch_persistent_context(
                str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                viewport=SIZES[size], locale=LOCALES[lang], timezone_id="Asia/Tokyo",
            )  # fmt: skip

        async def shot(page: Any, name: str) -> None:
            await asyncio.sleep(0.5)
            path = out / f"{name}.png"
            await page.screenshot(path=str(path), full_page=True, timeout=120_000)
            print(path, flush=True)

        for lang in ("ko", "ja"):
            for size in ("1280", "375"):
                for big in (False, True):
                    tag = f"{lang}-{size}{'-200pct' if big else ''}"
                    if only and only not in tag:
                        continue
                    ctx = await context(lang, size, big)
                    page = ctx.pages[0] if getattr(ctx, "pages", None) else await ctx.new_page()
                    q = f"?lang={lang}"
                    # Booking: choose, free slots, details.
                    await page.goto(base + "/book" + q)
                    await page.locator("#topic option").first.wait_for(state="attached")
                    await shot(page, f"book-{tag}")
                    await page.click("#show")
                    await page.locator(".slots button").first.wait_for()
                    await page.locator(".slots button").first.click()
                    await page.fill("#name", "佐藤 結衣")
                    await page.fill("#contact", "not a contact")
                    await page.click("#details button[type=submit]")
                    await page.locator("#error").wait_for(state="visible")
                    await shot(page, f"book-slots-error-{tag}")
                    await page.fill("#contact", "+81 90 1234 5678")
                    await page.click("#details button[type=submit]")
                    await page.locator("#step-done").wait_for(state="visible")
                    await shot(page, f"book-done-{tag}")
                    # Walk-in, Russian, no interpreter on duty.
                    await page.goto(base + "/book?mode=now&" + q[1:])
                    await page.locator("#topic option").first.wait_for(state="attached")
                    await page.select_option("#spoken", "ru")
                    await page.fill("#q-name", "Olga")
                    await page.click("#q-join")
                    await page.locator("#q-position").wait_for()
                    await asyncio.sleep(1)
                    await shot(page, f"book-queue-{tag}")
                    await page.click("#q-leave")
                    # Staff pages.
                    for path, user in (("/dashboard", "demo-counselor"), ("/admin", "demo-admin")):
                        await page.goto(base + path + q)
                        await page.fill("#username", user)
                        await page.fill("#password", password)
                        await page.click("#login-form button[type=submit]")
                        await page.locator("#board").wait_for(state="visible")
                        await asyncio.sleep(1)
                        if path == "/admin":
                            await page.click("#staff-new")
                        await shot(page, f"{path[1:]}-{tag}")
                        await page.click("#logout")
                    # The call: device check, then in the call with the counselor.
                    await page.goto(link(Role.RESIDENT, "김유이 (Kim Yui)", lang) + f"&lang={lang}")
                    await _until(page, "s.screen === 'check'")
                    await shot(page, f"call-check-{tag}")
                    await page.click("#join-btn")
                    await _until(page, "s.screen === 'lobby' || s.screen === 'call'")
                    if await page.evaluate("() => window.seoulbridge.screen") == "lobby":
                        await shot(page, f"call-lobby-{tag}")
                        await host.locator("#lobby-list button.admit").first.click()
                    await _until(page, "s.screen === 'call'")
                    await page.evaluate(
                        """(c) => window.Captions && window.Captions.handle({type: "caption",
                            id: "c-1", speaker_id: "p", speaker_name: "상담사 김민지",
                            language: "ko", text: c.ko, final: true, start: 3, end: 9,
                            ts: Date.now() / 1000, translations: {ja: c.ja}})""",
                        CAPTION,
                    )
                    await host.locator("#chat-input").fill("안녕하세요. 상담을 시작하겠습니다.")
                    await host.locator("#chat-form button[type=submit]").click()
                    await asyncio.sleep(2)
                    await shot(page, f"call-{tag}")
                    await page.evaluate("() => window.seoulbridge.send({type: 'leave'})")
                    await ctx.close()
        await browser.close()


@contextlib.contextmanager
def demo_server() -> Iterator[tuple[str, Path]]:
    """``serve --demo`` on a free port with a throw-away data directory: (base URL, data dir)."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        log_path = Path(data_dir) / "server.log"
        env = os.environ | {"SEOULBRIDGE_TOKEN_SECRET": TOKEN_SECRET}
        env.pop("REDIS_URL", None)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "web.cli", "serve", "--demo", "--port", str(port),
                 "--data-dir", data_dir],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 120  # a loaded machine starts slowly
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                        if (Path(data_dir) / "demo-credentials.txt").exists():
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start:\n" + log_path.read_text())
                time.sleep(0.3)
            yield f"http://127.0.0.1:{port}", Path(data_dir)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--only", help="only shots whose tag contains this, e.g. ja-375")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with demo_server() as (base, data_dir):
        asyncio.run(take(base, data_dir, args.out, args.only))


if __name__ == "__main__":
    main()
