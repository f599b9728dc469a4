"""Three headless Chromium pages, fake camera and microphone, one consultation.

The resident waits in the lobby, receiving no media, until the counselor's page
admits them; then every page must report, from ``RTCPeerConnection.getStats()``,
decoded video frames and received audio from both other participants. The time
from page load to the first decoded remote frame is printed for each page.

A missing, expired, forged or other-room link is refused with a reason the page shows.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from signaling.protocol import Role
from signaling.tokens import TokenService
from tests.browser.conftest import Server

pytestmark = pytest.mark.browser

MEDIA_WAIT_S = 25.0


def _room(server: Server) -> tuple[str, dict[str, str]]:
    """A consultation created through the staff REST API: its id and three join links."""
    staff = server.staff_token()
    reply = server.post(
        "/api/rooms",
        {
            "title": "국적 상담 · Browser test",
            "topic": "nationality",
            "resident": {"name": "Kim Yui", "language": "ja"},
            "interpreter": {"name": "Sato Interpreter", "language": "ja"},
            "counselor_language": "ko",
        },
        bearer=staff,
    )
    links: dict[str, Any] = reply["links"]  # type: ignore[assignment]
    return str(links["room_id"]), {
        "counselor": links["counselor"],
        "interpreter": links["interpreter"],
        "resident": links["resident"],
    }


PAGE_ERRORS: list[str] = []


async def _open(
    browser: Any, url: str, *, locale: str = "en-US", server: Server | None = None
) -> Any:
    """A new context and page at ``url``. When the page does not load, the error says
    which of its requests had not finished (and since when), and, given ``server``,
    carries the server's state dump: whether the time went in the browser, on the
    wire or in the server."""
    context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(20_000)
    # Uncaught exceptions and console errors (CSP violations among them) are bugs.
    page.on("pageerror", lambda exc: PAGE_ERRORS.append(f"{url[:60]}: {exc}"))
    page.on(
        "console",
        lambda msg: msg.type == "error" and PAGE_ERRORS.append(f"{url[:60]}: {msg.text}"),
    )
    started = time.monotonic()
    requests: dict[Any, list[Any]] = {}  # request -> [sent at, response at, finished at]
    page.on("request", lambda r: requests.setdefault(r, [time.monotonic(), None, None]))
    page.on(
        "response", lambda r: requests.get(r.request, [0, 0, 0]).__setitem__(1, time.monotonic())
    )
    for event in ("requestfinished", "requestfailed"):
        page.on(event, lambda r: requests.get(r, [0, 0, 0]).__setitem__(2, time.monotonic()))
    try:
        await page.goto(url)
    except Exception as exc:

        def at(t: float | None) -> str:
            return "-" if t is None else f"{t - started:.1f}s"

        lines = [
            f"  {r.method} {r.url.split('?')[0][-60:]} sent {at(s)} response {at(a)} done {at(d)}"
            for r, (s, a, d) in requests.items()
        ]
        dump = f"\n--- server:\n{server.dump()}" if server is not None else ""
        raise AssertionError(
            f"{url[:60]} did not load ({exc!r:.200}); its requests:\n" + "\n".join(lines) + dump
        ) from exc
    return page


async def _state(page: Any, expr: str) -> Any:
    return await page.evaluate(f"() => {{ const s = window.seoulbridge; return {expr}; }}")


async def _until(page: Any, expr: str, timeout_s: float = 20.0) -> None:
    """Wait until ``expr`` (with ``s`` = window.seoulbridge) is true. Polls with
    page.evaluate, because wait_for_function evaluates strings, which the page's
    Content-Security-Policy (no 'unsafe-eval') forbids."""
    deadline = time.monotonic() + timeout_s
    while not await page.evaluate(
        f"() => {{ const s = window.seoulbridge; return !!(s && ({expr})); }}"
    ):
        if time.monotonic() > deadline:
            log = await page.evaluate(
                "() => window.seoulbridge ? window.seoulbridge.log.slice(-30) : []"
            )
            raise AssertionError(f"timed out waiting for {expr}; page log:\n" + "\n".join(log))
        await asyncio.sleep(0.1)


async def _join(page: Any) -> None:
    await _until(page, "s.screen === 'check'")
    await page.locator("#join-btn:enabled").click()


async def _wait_media(page: Any, expected: set[str], deadline: float) -> dict[str, Any]:
    """Poll stats() until every expected participant has decoded video and received audio."""
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = await page.evaluate("() => window.seoulbridge.stats()")
        if set(stats) >= expected and all(
            stats[p]["framesDecoded"] > 0
            and stats[p]["audioBytesReceived"] > 0
            and stats[p]["totalSamplesReceived"] > 0
            for p in expected
        ):
            return stats
        await asyncio.sleep(0.5)
    return stats


@pytest.mark.timeout(90)
async def test_three_party_call_with_lobby(server: Server, browser: Any, capsys: Any) -> None:
    PAGE_ERRORS.clear()
    _, links = _room(server)
    counselor = await _open(browser, links["counselor"])
    interpreter = await _open(browser, links["interpreter"])
    resident = await _open(browser, links["resident"])
    pages = {"counselor": counselor, "interpreter": interpreter, "resident": resident}
    try:
        # Staff go straight into the call.
        for page in (counselor, interpreter):
            await _join(page)
            await _until(page, "s.screen === 'call'")
        ids = {role: await _state(p, "s.you.id") for role, p in pages.items()}

        # The resident waits in the lobby: no peer connection, no media.
        await _join(resident)
        await _until(resident, "s.screen === 'lobby'")
        await resident.locator("#screen-lobby h1").wait_for(state="visible")
        admit = counselor.locator(f"#lobby-list li[data-pid='{ids['resident']}'] button.admit")
        await admit.wait_for(state="visible")
        await asyncio.sleep(1.5)  # time enough for any media that should not flow
        assert await _state(resident, "s.screen") == "lobby"
        assert await _state(resident, "s.pc") is None
        assert await _state(resident, "s.firstFrameAt") is None
        assert await resident.evaluate("() => window.seoulbridge.stats()") == {}
        counselor_sees = await counselor.evaluate("() => window.seoulbridge.stats()")
        assert ids["resident"] not in counselor_sees

        # The counselor admits; every page then receives both others' media.
        await admit.click()
        await _until(resident, "s.screen === 'call'")
        deadline = time.monotonic() + MEDIA_WAIT_S
        results: dict[str, dict[str, Any]] = {}
        for role, page in pages.items():
            others = {ids[r] for r in pages if r != role}
            results[role] = await _wait_media(page, others, deadline)
        for role, page in pages.items():
            others = {ids[r] for r in pages if r != role}
            stats = results[role]
            missing = [
                (stats.get(p, {}).get("name", p), stats.get(p))
                for p in others
                if not (
                    p in stats
                    and stats[p]["framesDecoded"] > 0
                    and stats[p]["audioBytesReceived"] > 0
                    and stats[p]["totalSamplesReceived"] > 0
                )
            ]
            if missing:
                log = await _state(page, "s.log.slice(-40)")
                pytest.fail(
                    f"{role} page is missing media from {missing}\n"
                    f"page log:\n" + "\n".join(log) + f"\nserver log:\n{server.log_tail()}"
                )
            assert await page.locator("#grid .tile").count() == 2
            await _until(page, "document.getElementById('conn').dataset.level === 'ok'")

        timings = {
            role: await _state(p, "[s.firstFrameAt, s.joinClickedAt, s.joinedAt]")
            for role, p in pages.items()
        }
        with capsys.disabled():
            print("\npage load -> first remote video frame (ms):")
            for role, (first, clicked, joined) in timings.items():
                assert first is not None, role
                print(
                    f"  {role:<12} {first:7.0f}   (join click -> frame {first - clicked:6.0f},"
                    f" in call -> frame {first - joined:6.0f})"
                )
            for role in pages:
                row = ", ".join(
                    f"{s['role']}: {s['framesDecoded']} frames"
                    f" {s['frameWidth']}x{s['frameHeight']}, {s['audioBytesReceived']} audio bytes"
                    for s in results[role].values()
                )
                print(f"  {role:<12} receives {row}")

        # Chat reaches everyone, the counselor ends the consultation for all.
        await interpreter.locator("#chat-input").fill("通訳です。よろしくお願いします。")
        await interpreter.locator("#chat-form button[type=submit]").click()
        for page in pages.values():
            await page.locator("#chat-log li", has_text="よろしくお願いします").wait_for()
        await counselor.locator("#btn-end").click()
        await counselor.locator("#end-yes").click()
        for page in pages.values():
            await _until(page, "s.screen === 'final'")
            assert await _state(page, "s.finalKind") == "ended"
        errors = [e for e in PAGE_ERRORS if "Failed to load resource" not in e]
        assert not errors, errors
        # The server's default reason is shown in the page's language (the resident's is ja).
        assert "相談員が相談を終了しました" in await resident.locator("#final-reason").inner_text()
    finally:
        for page in pages.values():
            await page.context.close()


def _tokens(server: Server) -> TokenService:
    return TokenService(server.token_secret)


@pytest.mark.timeout(60)
async def test_refused_links_show_the_reason(server: Server, browser: Any) -> None:
    room_id, links = _room(server)
    tokens = _tokens(server)
    now = time.time()
    expired_ja = tokens.issue_join(
        room_id=room_id,
        role=Role.RESIDENT,
        name="Kim Yui",
        language="ja",
        ttl_s=60,
        expires_at=now - 60,
    )
    expired_en = tokens.issue_join(
        room_id=room_id,
        role=Role.RESIDENT,
        name="Kim Yui",
        language="en",
        ttl_s=60,
        expires_at=now - 60,
    )
    other_room = tokens.issue_join(
        room_id="r-someotherroom", role=Role.RESIDENT, name="Kim", language="en", ttl_s=600
    )
    forged = TokenService("a-different-secret-" + "y" * 32).issue_join(
        room_id=room_id, role=Role.COUNSELOR, name="Mallory", language="en", ttl_s=600
    )
    base = links["resident"].split("/join/")[0]
    cases = [
        (f"{base}/join/{room_id}?t={expired_en}", "token_expired", "This link has expired"),
        (f"{base}/join/{room_id}?t={expired_ja}", "token_expired", "有効期限が切れています"),
        (f"{base}/join/{room_id}?t={forged}", "token_invalid", "This link is not valid"),
        (f"{base}/join/{room_id}?t={other_room}", "wrong_room", "different consultation"),
        (f"{base}/join/{room_id}", "token_missing", "Open the full link"),
    ]
    for url, code, text in cases:
        page = await _open(browser, url)
        try:
            await _until(page, "s.screen === 'error'")
            error = page.locator("#screen-error")
            assert await error.get_attribute("data-code") == code, url
            shown = page.locator("#error-text")
            await shown.wait_for(state="visible")
            assert text in (await shown.inner_text()), (code, await shown.inner_text())
            assert await _state(page, "s.socket") is None  # never tried to join
        finally:
            await page.context.close()


async def _frames(page: Any, participant_id: str) -> tuple[int, int]:
    stats = await page.evaluate("() => window.seoulbridge.stats()")
    entry = stats.get(participant_id) or {}
    return int(entry.get("framesDecoded", 0)), int(entry.get("audioBytesReceived", 0))


async def _wait_growth(page: Any, participant_id: str, timeout_s: float = 20.0) -> None:
    """Decoded frames and audio bytes from a participant keep growing (on the current pc)."""
    first = await _frames(page, participant_id)
    deadline = time.monotonic() + timeout_s
    now = first
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = await _frames(page, participant_id)
        if now[0] > first[0] and now[1] > first[1] and now[0] > 0:
            return
    log = await _state(page, "s.log.slice(-30)")
    raw = await page.evaluate(
        """async () => {
            const s = window.seoulbridge, out = [];
            (await s.pc.getStats()).forEach((r) => {
                if (r.type === "inbound-rtp") out.push([r.mid, r.kind, r.ssrc, r.packetsReceived,
                    r.framesDecoded, r.bytesReceived, r.packetsLost]);
            });
            return {map: s.trackMap, inbound: out};
        }"""
    )
    raise AssertionError(
        f"no new media from {participant_id}: (frames, audio bytes) {first} -> {now}\n"
        f"mids and inbound-rtp: {raw}\npage log:\n" + "\n".join(log)
    )


@pytest.mark.timeout(90)
async def test_receive_only_participant_and_reconnect(
    server: Server, browser: Any, browser_without_permission: Any
) -> None:
    """Without camera/microphone permission one can still join and watch; a dropped
    socket reconnects by itself, joins again and gets media on a new peer connection."""
    _, links = _room(server)
    counselor = await _open(browser, links["counselor"])
    interpreter = await _open(browser_without_permission, links["interpreter"])
    resident = await _open(browser, links["resident"])
    pages = [counselor, interpreter, resident]
    try:
        await _join(counselor)
        await _until(counselor, "s.screen === 'call'")

        # Permission refused: the page explains it and offers joining without media.
        await _until(interpreter, "s.screen === 'check' && s.mediaError === 'blocked'")
        await interpreter.locator("#perm-note").wait_for(state="visible")
        # (The interpreter's link is in Japanese.)
        assert "ブロック" in (await interpreter.locator("#perm-title").inner_text())
        assert await interpreter.locator("#perm-retry").is_visible()
        assert await interpreter.locator("#join-btn").inner_text() == "カメラとマイクなしで参加する"
        await interpreter.locator("#join-btn:enabled").click()
        await _until(interpreter, "s.screen === 'call'")

        await _join(resident)
        await _until(resident, "s.screen === 'lobby'")
        await counselor.locator("#lobby-list button.admit").click()
        await _until(resident, "s.screen === 'call'")
        ids = {
            "counselor": await _state(counselor, "s.you.id"),
            "resident": await _state(resident, "s.you.id"),
        }
        await _wait_growth(interpreter, ids["counselor"])
        await _wait_growth(interpreter, ids["resident"])

        # Drop the resident's transport: socket.io reconnects, the page joins again.
        old_pc = await resident.evaluate_handle("() => window.seoulbridge.pc")
        offers = await _state(resident, "s.offersHandled")
        await resident.evaluate("() => window.seoulbridge.socket.io.engine.close()")
        await _until(resident, "s.socketState === 'reconnecting'", 5)
        assert "再接続中" in (await resident.locator("#conn-text").inner_text())  # ja link
        await _until(resident, "s.socketState === 'connected' && s.screen === 'call'")
        await _until(resident, f"s.offersHandled > {offers} && s.pcState === 'connected'")
        assert not await resident.evaluate("(old) => old === window.seoulbridge.pc", old_pc)
        await _wait_growth(resident, ids["counselor"])
        # The counselor gets the reconnected resident on the server's reused slot (same mids).
        await _wait_growth(counselor, ids["resident"])

        # The same link opened again (another tab): the new page wins and, already
        # admitted, goes straight back into the call without a press of Join (issue 15);
        # the old page says what happened.
        again = await _open(browser, links["resident"])
        pages.append(again)
        await _until(again, "s.screen === 'call'")
        assert await _state(again, "s.rejoin") is True
        await _until(resident, "s.screen === 'final' && s.finalKind === 'replaced'")
        await _wait_growth(again, ids["counselor"])
    finally:
        for page in pages:
            await page.context.close()


@pytest.mark.timeout(60)
async def test_counselor_denies_and_removes(server: Server, browser: Any) -> None:
    """The counselor turns a resident away from the lobby and removes a participant
    (two clicks on the tile's button); each page ends on a screen that says so."""
    _, links = _room(server)
    counselor = await _open(browser, links["counselor"])
    interpreter = await _open(browser, links["interpreter"])
    resident = await _open(browser, links["resident"])
    pages = [counselor, interpreter, resident]
    try:
        for page in (counselor, interpreter):
            await _join(page)
            await _until(page, "s.screen === 'call'")
        await _join(resident)
        await _until(resident, "s.screen === 'lobby'")
        await counselor.locator("#lobby-list button.deny").click()
        await _until(resident, "s.screen === 'final' && s.finalKind === 'denied'")
        assert "入室が許可されませんでした" in await resident.locator("#final-title").inner_text()
        await _until(counselor, "s.waiting.length === 0")

        interpreter_id = await _state(interpreter, "s.you.id")
        remove = counselor.locator(f"#grid .tile[data-pid='{interpreter_id}'] .tile-remove")
        await remove.click()  # arms the button
        assert await remove.get_attribute("data-armed") == "1"
        assert await _state(interpreter, "s.screen") == "call"
        await remove.click()
        await _until(interpreter, "s.screen === 'final' && s.finalKind === 'removed'", 10)
        await _until(counselor, f"!s.participants['{interpreter_id}']")
        assert await counselor.locator("#grid .tile").count() == 0
    finally:
        for page in pages:
            await page.context.close()
