"""Building a consultation out of ``RtcParticipant``s, as the pages do it."""

from __future__ import annotations

import asyncio
import re

from tests.support.rtc_client import RtcParticipant

_TOKEN = re.compile(r"[?&]t=([^&\s]+)")


def tokens_from_cli(output: str) -> tuple[str, dict[str, str]]:
    """``seoulbridge room create`` output -> (room id, role -> token)."""
    room_id = ""
    tokens: dict[str, str] = {}
    for line in output.splitlines():
        role, _, rest = line.partition(" ")
        if role == "room":
            room_id = rest.strip()
        elif (found := _TOKEN.search(rest)) is not None:
            tokens[role] = found.group(1)
    assert room_id and tokens, output
    return room_id, tokens


async def enter_call(
    counselor: RtcParticipant, interpreter: RtcParticipant, resident: RtcParticipant
) -> None:
    """Connect all three; staff join; the counselor admits the resident from the lobby."""
    for p in (counselor, interpreter, resident):
        await p.connect()
        await p.wait_for("welcome")
    await counselor.send({"type": "join"})
    await counselor.wait_for("joined")
    await interpreter.send({"type": "join"})
    await interpreter.wait_for("joined")
    await resident.send({"type": "join"})
    await resident.wait_for("lobby")
    assert resident.you is not None
    await counselor.send({"type": "admit", "participant_id": resident.you["id"]})
    await resident.wait_for("joined")


async def media_everywhere(
    people: list[RtcParticipant], *, frames: int = 10, timeout: float = 30.0
) -> None:
    """Every participant receives audio and video from every other."""
    ids = {id(p): p.you["id"] for p in people if p.you}
    waits = [
        viewer.wait_frames(ids[id(other)], kind, frames, timeout=timeout)
        for viewer in people
        for other in people
        if other is not viewer
        for kind in ("video", "audio")
    ]
    await asyncio.gather(*waits)
