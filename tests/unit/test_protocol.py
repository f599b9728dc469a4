from __future__ import annotations

import pytest

from signaling.protocol import (
    Admit,
    ChatSend,
    IceCandidate,
    Joined,
    ParticipantInfo,
    ProtocolError,
    Role,
    RoomInfo,
    RoomState,
    parse_client_message,
)


def test_each_client_message_parses_to_its_model() -> None:
    assert parse_client_message({"type": "admit", "participant_id": "p-1"}) == Admit(
        participant_id="p-1"
    )
    assert isinstance(parse_client_message({"type": "chat", "text": "안녕"}), ChatSend)
    candidate = parse_client_message({"type": "ice_candidate", "candidate": None})
    assert isinstance(candidate, IceCandidate) and candidate.candidate is None


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"type": "admit"}, "participant_id"),
        ({"type": "teleport"}, "does not match any of the expected tags"),
        ({"text": "hi"}, "type"),
        ({"type": "chat", "text": ""}, "at least 1"),
        ({"type": "chat", "text": "x" * 2001}, "at most 2000"),
        ({"type": "join", "extra": 1}, "Extra inputs"),
        ("join", "message"),
        ({"type": "answer", "sdp": 5}, "sdp"),
    ],
)
def test_bad_messages_say_what_is_wrong(payload: object, fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(payload)
    assert fragment in str(info.value)


def test_server_messages_serialize_with_their_tag() -> None:
    you = ParticipantInfo(id="p-1", name="Kim", role=Role.RESIDENT, language="ja")
    message = Joined(
        you=you, room=RoomInfo(id="r", title="t", state=RoomState.LIVE), participants=[]
    )
    dumped = message.model_dump(mode="json")
    assert dumped["type"] == "joined" and dumped["you"]["role"] == "resident"
