"""The identity check as people do it: the counselor marks the resident verified in the call,
the resident reads it in their language; the admin page's privacy section.

Real server (subprocess), real headless Chromium, the pages' own buttons.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from signaling.protocol import Role
from signaling.tokens import TokenService
from tests.browser.conftest import Server
from tests.browser.test_call import PAGE_ERRORS, _join, _open, _room, _state
from tests.browser.test_recording import _shot, _until

pytestmark = pytest.mark.browser


@pytest.mark.timeout(180)
async def test_counselor_verifies_identity_and_the_resident_sees_it(
    server: Server, browser: Any
) -> None:
    PAGE_ERRORS.clear()
    room_id, links = _room(server)
    counselor = await _open(browser, links["counselor"], locale="ko-KR")
    resident = await _open(browser, links["resident"], locale="ja-JP")
    await _join(counselor)
    await _until(counselor, "s.screen === 'call'")
    await _join(resident)
    await _until(resident, "s.screen === 'lobby'")
    assert not await counselor.locator("#btn-identity").is_visible()  # no resident in yet
    await counselor.locator("#lobby-list button.admit").click()
    await _until(resident, "s.screen === 'call'")
    await _until(counselor, "Object.keys(s.participants).length === 1")

    # Only the counselor has the control.
    button = counselor.locator("#btn-identity")
    await button.wait_for(state="visible")
    assert (await button.inner_text()).strip().endswith("본인 확인")
    assert not await resident.locator("#btn-identity").is_visible()

    await button.click()
    dialog = counselor.locator("#id-dialog")
    await dialog.wait_for(state="visible")
    # Confirming without a method says what is missing, in the page's words.
    await counselor.locator("#id-confirm").click()
    assert await counselor.locator("#id-problem").inner_text() == "확인 방법을 고르세요."
    # The field takes at most four letters or digits: a whole number cannot be typed in.
    await counselor.locator("#id-check").fill("M12-345678")
    kept = await counselor.locator("#id-check").input_value()
    assert kept.isalnum() and len(kept) <= 4, kept
    await counselor.locator("#id-check").fill("5678")
    await counselor.locator("label[for=id-m-passport_camera]").click()
    await _shot(counselor, "identity-dialog-ko-phone", phone=True)
    await counselor.locator("#id-confirm").click()
    assert not await dialog.is_visible()

    me = await _state(resident, "s.you.id")
    await _until(resident, f"s.identity['{me}'] !== undefined")
    banner = resident.locator("#id-banner")
    await banner.wait_for(state="visible")
    text = await banner.inner_text()
    assert "本人確認が完了しました" in text and "旅券" in text, text
    assert "5678" not in text  # the noted characters are for the counselor
    counselor_text = await counselor.locator("#id-banner").inner_text()
    assert "본인 확인 완료" in counselor_text and "5678" in counselor_text
    await _shot(resident, "identity-verified-ja-phone", phone=True)

    # The resident changes the page's language: the banner follows.
    await resident.select_option("#lang-select", "ru")
    await _until(
        resident, "document.getElementById('id-banner').innerText.includes('подтверждена')"
    )

    # A reload shows it again (the state is on the server); the admitted resident goes
    # straight back into the call, without pressing Join.
    await resident.reload()
    await _until(resident, f"s.screen === 'call' && s.identity['{me}'] !== undefined")

    errors = [e for e in PAGE_ERRORS if "Failed to load resource" not in e]
    assert not errors, errors
    for page in (counselor, resident):
        await page.context.close()
    assert room_id


def _admin_token(server: Server) -> str:
    return TokenService(server.token_secret).issue_staff(
        username="admin-test", role=Role.ADMIN, name="Admin", ttl_s=600
    )


def _get(server: Server, path: str, token: str) -> Any:
    request = urllib.request.Request(
        server.base_url + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.mark.timeout(120)
async def test_admin_reads_the_audit_log_and_counts_the_purge(server: Server, browser: Any) -> None:
    PAGE_ERRORS.clear()
    token = _admin_token(server)
    page = await _open(browser, server.base_url + "/admin", locale="en-US")
    # The page's own sign-in keeps the token in sessionStorage; an admin's token goes there.
    await page.evaluate(f"() => sessionStorage.setItem('sb-staff-token', {json.dumps(token)})")
    await page.reload()
    await page.locator("#privacy").wait_for(state="attached")
    await page.evaluate("() => { document.getElementById('board').hidden = false; }")
    await page.locator("#pv-audit-verify").click()
    status = page.locator("#pv-audit-status")
    await status.wait_for(state="visible")
    assert "intact" in await status.inner_text()
    await page.locator("#pv-audit-load").click()
    await page.locator("#pv-audit-table").wait_for(state="visible")
    assert "identity.verified" in await page.locator("#pv-audit-rows").inner_text()
    await page.locator("#pv-purge-dry").click()
    await page.locator("#pv-purge-status").wait_for(state="visible")
    assert (await page.locator("#pv-purge-status").inner_text()).startswith("Due: recordings of")
    # A consultation still going on cannot be deleted: said in the page's words, by code.
    live = _get(server, "/api/audit?action=identity.verified", token)["entries"][0]["target"]
    await page.locator("#pv-room").fill(live)
    page.once("dialog", lambda d: d.accept())
    await page.locator("#pv-subject-delete").click()
    await page.locator("#pv-subject-status").wait_for(state="visible")
    text = await page.locator("#pv-subject-status").inner_text()
    assert text == "This consultation is still going on. End it first."  # (its grace period)
    await _shot(page, "admin-privacy-desktop", full=True)
    errors = [e for e in PAGE_ERRORS if "Failed to load resource" not in e]
    assert not errors, errors
    await page.context.close()
