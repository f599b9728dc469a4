"""REST (transcript export, glossary admin) and the ``models`` CLI, against real services."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from interpretation.service import CaptionService
from interpretation.transcript import TranscriptEntry
from signaling.protocol import Role
from signaling.tokens import TokenService
from web import cli_models
from web.api_transcripts import add_routes, interpretation_ctx
from web.appkeys import CAPTIONS, SETTINGS, TOKENS
from web.settings import Settings


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    app[SETTINGS] = Settings(data_dir=tmp_path, caption_workers=1)
    app[TOKENS] = TokenService("x" * 48)
    app.cleanup_ctx.append(interpretation_ctx)
    add_routes(app)
    async with TestClient(TestServer(app)) as c:
        yield c


def _auth(c: TestClient[web.Request, web.Application], role: Role) -> dict[str, str]:
    token = c.app[TOKENS].issue_staff(username="u", role=role, name="U", ttl_s=600)
    return {"Authorization": f"Bearer {token}"}


async def test_transcript_export_is_staff_only(
    client: TestClient[web.Request, web.Application],
) -> None:
    service: CaptionService = client.app[CAPTIONS]
    service.transcripts.append(
        "room-9",
        TranscriptEntry(
            id="p-1",
            speaker_id="p",
            speaker_name="Kim",
            language="ko",
            text="국적 상담",
            start=0.5,
            end=2.0,
            translations={"ja": "国籍相談"},
        ),
    )
    url = "/api/sessions/room-9/transcript.vtt?lang=ja"
    assert (await client.get(url)).status == 401
    resp = await client.get(url, headers=_auth(client, Role.COUNSELOR))
    assert resp.status == 200
    assert resp.content_type == "text/vtt"
    assert "<v Kim>国籍相談" in await resp.text()
    resp = await client.get(
        "/api/sessions/room-9/transcript.srt?lang=ko", headers=_auth(client, Role.INTERPRETER)
    )
    assert "Kim: 국적 상담" in await resp.text()
    resp = await client.get(
        "/api/sessions/nope/transcript.vtt?lang=ja", headers=_auth(client, Role.COUNSELOR)
    )
    assert resp.status == 404
    resp = await client.get(
        "/api/sessions/room-9/transcript.vtt?lang=fr", headers=_auth(client, Role.COUNSELOR)
    )
    assert resp.status == 400


async def test_glossary_admin(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/api/glossary", headers=_auth(client, Role.COUNSELOR))
    body = await resp.json()
    assert any(e["terms"]["ko"] == "병역" for e in body["entries"])
    new = {"entries": [{"id": "visa", "terms": {"ko": "비자", "en": "visa"}}]}
    resp = await client.put("/api/glossary", json=new, headers=_auth(client, Role.COUNSELOR))
    assert resp.status == 403
    resp = await client.put("/api/glossary", json=new, headers=_auth(client, Role.ADMIN))
    assert resp.status == 200
    assert client.app[CAPTIONS].glossary.get().entries[0].id == "visa"
    bad = {"entries": [{"id": "x", "terms": {"ko": "비자"}}]}
    resp = await client.put("/api/glossary", json=bad, headers=_auth(client, Role.ADMIN))
    assert resp.status == 422
    assert "at least two languages" in (await resp.json())["error"]["message"]


def test_models_cli_install_and_list(
    tmp_path: Path,
    argos_archives: dict[tuple[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="seoulbridge")
    cli_models.register(parser.add_subparsers(dest="command"))
    files = [str(argos_archives[("ko", "en")]), str(argos_archives[("en", "ja")])]
    args = parser.parse_args(["models", "install", *files, "--data-dir", str(tmp_path)])
    assert args.func(args) == 0
    assert "installed ko -> en" in capsys.readouterr().out
    args = parser.parse_args(["models", "list", "--data-dir", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "ko -> en  Korean -> English" in out
    assert "through English: ko -> ja" in out
    assert "ko  " in out  # the Korean speech model
    bogus = tmp_path / "bogus.argosmodel"
    bogus.write_text("no")
    args = parser.parse_args(["models", "install", str(bogus), "--data-dir", str(tmp_path)])
    assert args.func(args) == 1
