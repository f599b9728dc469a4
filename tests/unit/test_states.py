from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from signaling.errors import IllegalTransition
from signaling.live import Participant, ParticipantState
from signaling.protocol import Role, RoomState
from signaling.rooms import TRANSITIONS, RoomDirectory, check_transition
from signaling.tokens import JoinClaims


def test_room_transitions_are_enforced() -> None:
    allowed = {(old, new) for old, targets in TRANSITIONS.items() for new in targets}
    for old in RoomState:
        for new in RoomState:
            if (old, new) in allowed:
                check_transition("r", old, new)
            else:
                with pytest.raises(IllegalTransition, match=f"{old.value} to {new.value}"):
                    check_transition("r", old, new)


async def test_directory_moves_state_atomically(redis: aioredis.Redis) -> None:
    rooms = RoomDirectory(redis)
    record = await rooms.create(title="상담")
    assert record.state is RoomState.CREATED
    assert (await rooms.transition(record.id, RoomState.LOBBY)).state is RoomState.LOBBY
    with pytest.raises(IllegalTransition):
        await rooms.transition(record.id, RoomState.CREATED)
    await rooms.transition(record.id, RoomState.LIVE)
    await rooms.transition(record.id, RoomState.ENDED)
    stored = await rooms.get(record.id)
    assert stored is not None and stored.state is RoomState.ENDED and stored.title == "상담"
    with pytest.raises(IllegalTransition):
        await rooms.transition(record.id, RoomState.LIVE)


async def test_directory_reads_many_rooms_in_one_call(redis: aioredis.Redis) -> None:
    rooms = RoomDirectory(redis)
    first = await rooms.create(title="하나")
    second = await rooms.create(title="둘")
    found = await rooms.get_many([second.id, "r-gone", first.id])
    assert {k: v.title for k, v in found.items()} == {second.id: "둘", first.id: "하나"}
    assert await rooms.get_many([]) == {}


def test_participant_transitions() -> None:
    claims = JoinClaims("p-1", "r-1", Role.RESIDENT, "Kim", "ja", expires_at=0)
    p = Participant(claims=claims, sid="s")
    p.set_state(ParticipantState.LOBBY)
    with pytest.raises(IllegalTransition):
        p.set_state(ParticipantState.CONNECTED)
    p.set_state(ParticipantState.IN_ROOM)
    p.set_state(ParticipantState.GONE)
    with pytest.raises(IllegalTransition):
        p.set_state(ParticipantState.IN_ROOM)
