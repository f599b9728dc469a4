"""The room's chat comes back with ``joined``: bounded, redacted, kept in Redis.

Issue 15, item 4: a participant who reloaded mid-call lost the chat. The history now
lives in Redis, so it also survives a server restart; personal numbers are masked
before a line is sent or stored.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from interpretation.redaction import redact
from signaling.chat import KEPT, ChatStore
from signaling.protocol import Role
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server

pytestmark = pytest.mark.timeout(60)


async def test_a_reloaded_page_gets_the_chat_back_redacted(
    data_dir: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    async with running_server(data_dir, redis_url) as server:
        room_id, (t_cou, t_res) = await server.room_with(
            (Role.COUNSELOR, "Counselor Kim", "ko"), (Role.RESIDENT, "Kim Yui", "ja")
        )
        counselor = RtcParticipant(server.base_url, room_id, t_cou, publish=False)
        resident = RtcParticipant(server.base_url, room_id, t_res, publish=False)
        try:
            await counselor.connect()
            await counselor.wait_for("welcome")
            await counselor.send({"type": "join"})
            first = await counselor.wait_for("joined")
            assert first["chat"] == []
            await counselor.send({"type": "chat", "text": "주민등록번호 900101-1234567 확인"})
            line = await counselor.wait_for("chat")
            assert "1234567" not in line["text"] and "*" in line["text"]

            await resident.connect()
            await resident.wait_for("welcome")
            await resident.send({"type": "join"})
            await resident.wait_for("lobby")
            assert resident.you is not None
            await counselor.send({"type": "admit", "participant_id": resident.you["id"]})
            joined = await resident.wait_for("joined")
            assert [m["text"] for m in joined["chat"]] == [line["text"]]
            assert joined["chat"][0]["name"] == "Counselor Kim"

            # The counselor reloads: a new socket with the same link gets the history.
            await counselor.close()
            again = RtcParticipant(server.base_url, room_id, t_cou, publish=False)
            try:
                await again.connect()
                await again.wait_for("welcome")
                await again.send({"type": "join"})
                rejoined = await again.wait_for("joined")
                assert [m["text"] for m in rejoined["chat"]] == [line["text"]]
            finally:
                await again.close()
        finally:
            await resident.close()
            await counselor.close()


async def test_the_history_is_bounded_and_forgotten(redis: aioredis.Redis) -> None:
    store = ChatStore(redis, redact)
    for n in range(KEPT + 5):
        await store.add("r-1", participant_id="p-1", name="A", text=f"line {n}", ts=float(n))
    lines = await store.history("r-1")
    assert len(lines) == KEPT and lines[0].text == "line 5" and lines[-1].text == f"line {KEPT + 4}"
    assert 0 < await redis.ttl("sb:room:r-1:chat")
    await store.forget("r-1")
    assert await store.history("r-1") == []
