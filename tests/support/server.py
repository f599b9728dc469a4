"""Run the real application in-process on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from signaling.protocol import Role
from tests.support.node_process import free_port
from tests.support.rtc_client import RtcParticipant
from web.app import build_app
from web.appkeys import ROOMS, SIGNALING, TOKENS
from web.settings import Settings


@dataclass
class RunningServer:
    app: web.Application
    base_url: str

    async def room_with(self, *people: tuple[Role, str, str]) -> tuple[str, list[str]]:
        """Create a room and one join token per (role, name, language)."""
        record = await self.app[ROOMS].create(title="Test consultation")
        tokens = [
            self.app[TOKENS].issue_join(
                room_id=record.id, role=role, name=name, language=lang, ttl_s=600
            )
            for role, name, lang in people
        ]
        return record.id, tokens

    async def consultation(self) -> tuple[str, RtcParticipant, RtcParticipant, RtcParticipant]:
        """A room with a counselor (ko), an interpreter and a resident (ja); not connected yet."""
        room_id, (t_cou, t_int, t_res) = await self.room_with(
            (Role.COUNSELOR, "Counselor Kim", "ko"),
            (Role.INTERPRETER, "Sato", "ja"),
            (Role.RESIDENT, "Kim Yui", "ja"),
        )
        return (
            room_id,
            RtcParticipant(self.base_url, room_id, t_cou),
            RtcParticipant(self.base_url, room_id, t_int),
            RtcParticipant(self.base_url, room_id, t_res),
        )

    @property
    def signaling(self):  # type: ignore[no-untyped-def]
        return self.app[SIGNALING]


@asynccontextmanager
async def running_server(
    data_dir: Path, redis_url: str, **overrides: object
) -> AsyncIterator[RunningServer]:
    # The port is chosen first, so the settings' public URL (join links, the allowed
    # socket.io origin) is the one the server is reached at.
    overrides.setdefault("port", free_port())
    settings = Settings(data_dir=data_dir, redis_url=redis_url, token_secret="t" * 40, **overrides)  # type: ignore[arg-type]
    app = build_app(settings)
    # A connection left open must not stall a test for aiohttp's default 60 s.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield RunningServer(app, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
