"""Staff sign in to /dashboard and /admin; an expired sign-in goes back to the form."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sched_helpers import add_staff

from kernel.roles import Role
from tests.support.chromium import CHROMIUM, REAL_CHROMIUM
from tests.support.server import running_server
from web.appkeys import STAFF

pytestmark = [pytest.mark.timeout(60), pytest.mark.browser]


@pytest.fixture
async def base_url(data_dir: Path, redis_url: str, redis: aioredis.Redis) -> AsyncIterator[str]:
    async with running_server(data_dir, redis_url) as server:
        store = server.app[STAFF]
        await add_staff(store, "park", Role.COUNSELOR, topics=["nationality"])
        await add_staff(store, "boss", Role.ADMIN)
        yield server.base_url


@pytest.mark.skipif(not os.path.exists(REAL_CHROMIUM), reason=f"needs {REAL_CHROMIUM}")
@pytest.mark.parametrize(
    ("path", "username", "board_text"),
    [("/dashboard", "park", "#board"), ("/admin", "boss", "#staff li")],
)
async def test_sign_in_and_expired_sign_in(
    base_url: str, path: str, username: str, board_text: str
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        try:
            page = await (await browser.new_context()).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(base_url + path)
            await page.fill("#username", username)
            await page.fill("#password", "wrong password")
            await page.click("#login-form button[type=submit]")
            await page.locator("#error").wait_for(state="visible")
            assert "Wrong username or password" in await page.locator("#error").inner_text()

            await page.fill("#password", "password123")
            await page.click("#login-form button[type=submit]")
            await page.locator("#board").wait_for(state="visible")
            await page.locator(board_text).first.wait_for(state="attached")
            assert await page.locator("#login").is_hidden()
            assert await page.locator("#me-name").inner_text() == username

            # A reload keeps the sign-in (session storage) ...
            await page.reload()
            await page.locator("#board").wait_for(state="visible")
            # ... and a sign-in the server no longer accepts returns to the form.
            await page.evaluate("() => sessionStorage.setItem('sb-staff-token', 'expired')")
            await page.reload()
            await page.locator("#login").wait_for(state="visible")
            assert await page.locator("#board").is_hidden()
            assert "Sign in again" in await page.locator("#error").inner_text()

            await page.fill("#username", username)
            await page.fill("#password", "password123")
            await page.click("#login-form button[type=submit]")
            await page.locator("#board").wait_for(state="visible")
            await page.click("#logout")
            await page.locator("#login").wait_for(state="visible")
            assert errors == []
        finally:
            await browser.close()
