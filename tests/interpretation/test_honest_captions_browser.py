"""Honest caption states in the browser, on a fresh install without translation packages.

The counselor speaks Korean (espeak-ng, Chromium's fake microphone); the resident's
language is Japanese and their browser speaks too, but this server has only the
Korean speech model and no translation package. What a person must see:

* the resident: the Korean caption, and *why* there is no Japanese (not installed),
  never an endless "translating…";
* the counselor, while the resident is audibly talking: that this server has no
  live captions for Japanese speech, not "captions appear here when someone speaks";
* the Japanese transcript is refused with a reason, not an empty file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.protocol import Role
from tests.interpretation.browser_support import (
    CHROMIUM,
    admit_all,
    captions_server,
    launch,
    open_and_join,
    open_page,
    until,
)
from tests.interpretation.speech_fixture import korean_wav
from web.appkeys import ROOMS, TOKENS

# solo: the Makefile runs this alone (live recognition in a page
# would measure another test process as well)
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(150), pytest.mark.solo]


async def test_without_translation_packages_pages_say_what_is_missing(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    from aiohttp import ClientSession
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():  # noqa: ASYNC240 (one stat at set-up)
        pytest.skip(f"no Chromium at {CHROMIUM}")
    wav = korean_wav(tmp_path / "ko48k.wav", rate=48_000, pad_s=1.0)
    async with captions_server(tmp_path / "data", redis_url) as srv, async_playwright() as pw:
        record = await srv.app[ROOMS].create(title="정직한 자막")
        counselor_url = srv.link(record.id, Role.COUNSELOR, "상담사 김", "ko")
        resident_url = srv.link(record.id, Role.RESIDENT, "Kim Yui", "ja")
        speaking_ko = await launch(pw, wav)
        speaking_ja = await launch(pw, wav)
        try:
            counselor = await open_and_join(speaking_ko, counselor_url)
            resident = await open_page(speaking_ja, resident_url, locale="ja-JP")
            await resident.locator("#join-btn:enabled").click()
            await admit_all(counselor)
            await until(resident, "s.screen === 'call'")

            # The room is told what is covered: the resident's Japanese has no model,
            # Korean captions have no route into Japanese.
            status = await until(
                resident,
                "c.status && c.status.speakers.length === 2 && c.status.routes.length > 0"
                " && c.status",
            )
            states = {sp["language"]: sp["state"] for sp in status["speakers"]}
            assert states["ja"] == "no_model"
            assert {"source": "ko", "target": "ja", "route": "none"} in status["routes"]
            notes = resident.locator("#captions .cc-notes li")
            kinds = await notes.evaluate_all("els => els.map(e => e.dataset.kind)")
            assert "route_none" in kinds and "no_model" in kinds
            assert (
                "インストールされていません"
                in await resident.locator("#captions .cc-notes [data-kind=route_none]").inner_text()
            )

            # A Korean final reaches the resident and settles as "not installed".
            final = await until(
                resident,
                "c.received.find(m => m.final && m.language === 'ko'"
                " && m.untranslated && m.untranslated.ja)",
                timeout_s=60,
            )
            assert final["untranslated"] == {"ja": "not_installed"}
            assert final["pending"] == [] and final["translations"] == {}
            assert final["speaker_role"] == "counselor"
            item = resident.locator(f"#captions .cc-history li[data-id='{final['id']}']")
            note = item.locator(".cc-item-note")
            assert await note.get_attribute("data-reason") == "not_installed"
            assert "インストールされていません" in await note.inner_text()
            assert "相談員" in await item.locator(".cc-meta strong").inner_text()
            # nothing says "translating" for a caption that can never be translated
            await until(resident, "c.history.length >= 1")
            pending = await resident.locator("#captions .is-pending").count()
            assert pending == 0, await resident.locator("#captions").inner_html()
            assert "翻訳中" not in await resident.locator("#captions").inner_text()

            # The counselor stops talking; the resident goes on, audibly, in Japanese.
            await counselor.locator("#btn-mic").click()
            await until(counselor, "s.audioMuted")
            live = await until(
                counselor,
                "document.querySelector('#captions .cc-live').dataset.state === 'uncaptioned'"
                " && document.querySelector('#captions .cc-live').innerText",
                timeout_s=45,
            )
            assert "Kim Yui" in live and "일본어" in live  # the counselor's page is in Korean
            assert "말하면 자막이" not in live
            no_model = counselor.locator("#captions .cc-notes [data-kind=no_model]")
            assert "Kim Yui" in await no_model.inner_text()

            # Transcripts: Korean is there; Japanese is refused and says why.
            staff = srv.app[TOKENS].issue_staff(
                username="kim", role=Role.COUNSELOR, name="Kim", ttl_s=600
            )
            headers = {"Authorization": f"Bearer {staff}"}
            async with ClientSession(srv.base_url, headers=headers) as http:
                url = f"/api/sessions/{record.id}/transcript.vtt"
                async with http.get(url, params={"lang": "ko"}) as resp:
                    assert resp.status == 200
                    assert "<v 상담사 김>" in await resp.text()
                async with http.get(url, params={"lang": "ja"}) as resp:
                    assert resp.status == 409
                    error = (await resp.json())["error"]
                    assert error["code"] == "nothing_in_language"
                    assert "not installed" in error["message"]
                async with http.get(
                    "/api/sessions/r-nobody/transcript.srt", params={"lang": "ja"}
                ) as resp:
                    assert resp.status == 404
                async with http.get("/api/captions/coverage") as resp:
                    coverage = await resp.json()
                ko = next(r for r in coverage["languages"] if r["language"] == "ko")
                assert ko["speech"] is True and ko["translation"]["ja"] == "none"
                async with http.get("/healthz") as resp:
                    health = await resp.json()
                assert health["captions"] == {"speech": ["ko"], "translation": []}
        finally:
            await speaking_ko.close()
            await speaking_ja.close()
