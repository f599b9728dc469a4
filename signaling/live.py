"""A room while people are in it on this node: participants, lobby, media."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from signaling.errors import IllegalTransition
from signaling.media_port import MediaSession
from signaling.protocol import ParticipantInfo, Role
from signaling.rooms import RoomRecord
from signaling.tokens import JoinClaims

logger = logging.getLogger(__name__)


class ParticipantState(StrEnum):
    CONNECTED = "connected"  # welcomed, has not asked to join yet
    LOBBY = "lobby"
    IN_ROOM = "in_room"
    GONE = "gone"


_TRANSITIONS: dict[ParticipantState, frozenset[ParticipantState]] = {
    ParticipantState.CONNECTED: frozenset(
        {ParticipantState.LOBBY, ParticipantState.IN_ROOM, ParticipantState.GONE}
    ),
    ParticipantState.LOBBY: frozenset({ParticipantState.IN_ROOM, ParticipantState.GONE}),
    ParticipantState.IN_ROOM: frozenset({ParticipantState.GONE}),
    ParticipantState.GONE: frozenset(),
}


@dataclass
class Participant:
    claims: JoinClaims
    sid: str
    state: ParticipantState = ParticipantState.CONNECTED
    audio_muted: bool = False
    video_muted: bool = False

    @property
    def id(self) -> str:
        return self.claims.participant_id

    @property
    def role(self) -> Role:
        return self.claims.role

    def set_state(self, new: ParticipantState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"room {self.claims.room_id} participant {self.id}: "
                f"cannot go from {self.state.value} to {new.value}"
            )
        logger.info(
            "room %s participant %s: %s -> %s",
            self.claims.room_id,
            self.id,
            self.state.value,
            new.value,
        )
        self.state = new

    def info(self) -> ParticipantInfo:
        return ParticipantInfo(
            id=self.id,
            name=self.claims.name,
            role=self.role,
            language=self.claims.language,
            audio_muted=self.audio_muted,
            video_muted=self.video_muted,
        )


@dataclass
class LiveRoom:
    """What this node holds of one room while it is open here (admission lives in Redis)."""

    record: RoomRecord
    media: MediaSession
    participants: dict[str, Participant] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    idle_timer: asyncio.Task[None] | None = None
    #: when each participant's media connection was last rebuilt after a failure
    peer_restarts: dict[str, deque[float]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.record.id

    def in_room(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state is ParticipantState.IN_ROOM]

    def waiting(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state is ParticipantState.LOBBY]

    def staff_in_room(self) -> list[Participant]:
        return [p for p in self.in_room() if p.role.is_staff]
