"""A recording the server cannot write stops, and every call page says so in its language.

The server runs in-process here (so its storage can be made to fail on purpose:
a full disk after a few kilobytes of video); the pages are real headless
Chromium with fake camera and microphone.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from signaling.protocol import Role
from tests.browser.conftest import CHROMIUM
from tests.browser.test_call import PAGE_ERRORS, _join, _open, _state, _until
from tests.support.failing_storage import FailingStorage
from tests.support.server import running_server
from web.appkeys import RECORDING

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


async def _asked(interpreter: Any, counselor: Any) -> None:
    """The interpreter's page is asked to consent. A failure shows the counselor's page log
    too: under load the ask once never came, and only the interpreter's side was shown."""
    try:
        await _until(interpreter, "s.consentAsked === true")
    except AssertionError as exc:
        log = await counselor.evaluate(
            "() => window.seoulbridge ? window.seoulbridge.log.slice(-30) : []"
        )
        raise AssertionError(f"{exc}\n-- the counselor's page log --\n" + "\n".join(log)) from None


async def test_every_page_shows_that_the_recording_failed(
    data_dir: Path, redis_url: str, redis: object, browser: Any
) -> None:
    PAGE_ERRORS.clear()
    async with running_server(data_dir, redis_url) as server:
        server.app[RECORDING].storage = FailingStorage(
            track_bytes=8_000, track_kind="video", keys=server.app[RECORDING].storage.keys
        )
        room_id, (t_counselor, t_interpreter) = await server.room_with(
            (Role.COUNSELOR, "Counselor Kim", "ko"), (Role.INTERPRETER, "Sato", "ja")
        )
        counselor = await _open(browser, f"{server.base_url}/join/{room_id}?t={t_counselor}")
        interpreter = await _open(
            browser, f"{server.base_url}/join/{room_id}?t={t_interpreter}", locale="ja-JP"
        )
        pages = {"counselor": counselor, "interpreter": interpreter}
        try:
            for page in pages.values():
                await _join(page)
                await _until(page, "s.screen === 'call'")
            for page in pages.values():
                await _until(
                    page, "Object.keys(s.participants).length === 1 && s.pcState === 'connected'"
                )
            await counselor.locator("#btn-record").click()
            await _asked(interpreter, counselor)
            await interpreter.locator("#rec-agree").click()
            for role, page in pages.items():
                await _until(page, "s.recordState === 'stopped'")
                assert await _state(page, "s.recordError") == "media_unavailable", role
                assert not await page.locator("#rec-indicator").is_visible(), role
                # Shown to each page in its language (read from the page's record of its
                # toasts: a toast hides after 5 s, longer than checking three pages may take).
                await _until(page, "s.toasts.includes(s.t('rec_failed'))")
            assert await _state(counselor, "s.lastError.code") == "media_unavailable"
            assert await _state(interpreter, "s.lastError") is None
            words = {role: await _state(p, "s.t('rec_failed')") for role, p in pages.items()}
            assert words["counselor"] != words["interpreter"]  # each in the page's language
        finally:
            for page in pages.values():
                await page.context.close()
    errors = [e for e in PAGE_ERRORS if "Failed to load resource" not in e]
    assert not errors, errors


async def test_a_server_that_stalls_as_the_recording_fails_still_tells_the_counselor(
    data_dir: Path, redis_url: str, redis: object, browser: Any
) -> None:
    """The whole server stalls for 5 s just as the write fails (measured: 12.2 s at load
    16-30 in a fresh-clone ``make test``). The pages find their media silent, leave
    their sockets and connect again; the server's error goes to the sockets they left.
    The counselor must still learn why the recording stopped."""
    PAGE_ERRORS.clear()
    async with running_server(data_dir, redis_url) as server:
        recording = server.app[RECORDING]
        recording.storage = FailingStorage(
            track_bytes=8_000, track_kind="video", keys=recording.storage.keys
        )
        failed: Callable[..., Awaitable[None]] = recording._failed

        async def stalled_then_failed(*args: Any) -> None:
            time.sleep(5.0)  # noqa: ASYNC251 - the loop itself stops, as in a loaded process
            await failed(*args)

        recording._failed = stalled_then_failed  # type: ignore[method-assign]
        room_id, (t_counselor, t_interpreter) = await server.room_with(
            (Role.COUNSELOR, "Counselor Kim", "ko"), (Role.INTERPRETER, "Sato", "ja")
        )
        counselor = await _open(browser, f"{server.base_url}/join/{room_id}?t={t_counselor}")
        interpreter = await _open(
            browser, f"{server.base_url}/join/{room_id}?t={t_interpreter}", locale="ja-JP"
        )
        pages = {"counselor": counselor, "interpreter": interpreter}
        try:
            for page in pages.values():
                await _join(page)
                await _until(page, "s.screen === 'call'")
            for page in pages.values():
                await _until(
                    page, "Object.keys(s.participants).length === 1 && s.pcState === 'connected'"
                )
            await counselor.locator("#btn-record").click()
            await _asked(interpreter, counselor)
            await interpreter.locator("#rec-agree").click()
            for page in pages.values():
                await _until(page, "s.recordState === 'stopped'")
            await _until(counselor, "s.lastError && s.lastError.code === 'media_unavailable'")
            # It was the reconnect that brought it: the pages did leave on the silence.
            for role, page in pages.items():
                log = await _state(page, "s.log.join('\\n')")
                assert "connecting again" in log, (role, log[-3000:])
                await _until(page, "s.toasts.includes(s.t('rec_failed'))")
                await _until(
                    page, "Object.keys(s.participants).length === 1 && s.pcState === 'connected'"
                )
            assert await _state(interpreter, "s.lastError") is None
        finally:
            for page in pages.values():
                await page.context.close()
    errors = [e for e in PAGE_ERRORS if "Failed to load resource" not in e]
    assert not errors, errors
