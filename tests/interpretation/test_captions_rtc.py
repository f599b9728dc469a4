"""Captions through the real server with aiortc peers on loopback.

The counselor's peer sends Korean speech (espeak-ng) as Opus; the server taps the
publication, recognises it and
sends ``caption`` messages, with Japanese translations (ko -> en -> ja pivot
through tiny Argos packages), to the interpreter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from interpretation.packages import PackageStore
from media.forwarding import Forwarder
from media.rtp_forwarder import RtpForwarder
from signaling.protocol import Role
from tests.interpretation.speech_fixture import WavAudioTrack, wav_pcm
from tests.support.rtc_client import RtcParticipant
from web.app import build_app
from web.appkeys import CAPTIONS, ROOMS, TOKENS
from web.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


# The browser test covers the default (decoding relay) forwarder; this one the RTP
# forwarder and its Opus tap. Both pass with either.
@pytest.mark.parametrize("forwarder", [RtpForwarder], ids=["rtp"])
async def test_captions_over_webrtc(
    tmp_path: Path,
    redis_url: str,
    redis: object,
    argos_archives: dict[tuple[str, str], Path],
    korean_speech: Path,
    forwarder: Callable[[], Forwarder],
) -> None:
    data = tmp_path / "data"
    store = PackageStore(data / "argos" / "packages")
    for pair in [("ko", "en"), ("en", "ja")]:
        store.install(argos_archives[pair])
    settings = Settings(data_dir=data, redis_url=redis_url, token_secret="r" * 40)
    app = build_app(settings, forwarder_factory=forwarder)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    people: list[RtcParticipant] = []
    try:
        await asyncio.to_thread(app[CAPTIONS].models.get, "ko")
        record = await app[ROOMS].create(title="captions over webrtc")

        def token(role: Role, name: str, lang: str) -> str:
            return app[TOKENS].issue_join(
                room_id=record.id, role=role, name=name, language=lang, ttl_s=600
            )

        listener = RtcParticipant(base, record.id, token(Role.INTERPRETER, "Sato", "ja"))
        speaker = RtcParticipant(base, record.id, token(Role.COUNSELOR, "상담사 김", "ko"))
        people = [listener, speaker]
        for p in people:
            await p.connect()
            await p.wait_for("welcome")
            await p.send({"type": "join"})
            await p.wait_for("joined")
        await speaker.wait_for("offer")
        # speak Korean instead of the client's silent test tone
        for _ in range(100):
            pc = speaker.pc
            senders = [t.sender for t in pc.getTransceivers()] if pc else []
            audio = [s for s in senders if s.track is not None and s.track.kind == "audio"]
            if audio:
                break
            await asyncio.sleep(0.05)
        audio[0].replaceTrack(WavAudioTrack(wav_pcm(korean_speech)))

        def translated(m: dict[str, Any]) -> bool:
            return m["type"] == "caption" and m["final"] and bool(m["translations"].get("ja"))

        for _ in range(600):
            if any(translated(m) for m in listener.messages):
                break
            await asyncio.sleep(0.05)
        caption = next((m for m in listener.messages if translated(m)), None)
        assert caption is not None, [m for m in listener.messages if m["type"] == "caption"]
        assert caption["speaker_name"] == "상담사 김" and caption["language"] == "ko"
        assert any("가" <= ch <= "힣" for ch in caption["text"])
        assert any(m["type"] == "caption" for m in speaker.messages)  # the speaker sees it too
    finally:
        for p in people:
            await p.close()
        await runner.cleanup()
