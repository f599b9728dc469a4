"""Simultaneous interpretation in a room: the interpreters' modes on the wire.

Composition-root glue (a ``signaling.extensions.RoomExtension``): an interpreter
sends ``interpretation_mode``; everyone in the room gets ``interpretation`` with
the language groups and, per interpreter, the mode and the *audience* (the
listeners of the language the interpreter speaks into). The SFU keeps forwarding
every track unchanged; each listener's page mixes (the original ducked, the
interpreter at full volume, or the original alone if they chose it). Recordings
keep every track, so both the original and the interpretation.

The rules are :mod:`interpretation.channel`'s. The captions extension asks
:meth:`InterpretationExtension.speaking` which language an interpreter speaks now
and is told (``on_speaking_changed``) when that changes, so the interpreter's
captions are recognised in the channel's language and labelled as interpretation.
Modes live on this node only: after a restart or a move the interpreter switches again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from interpretation.channel import (
    ChannelMode,
    ChannelRefused,
    InterpreterChannel,
    Person,
    language_groups,
)
from interpretation.errors import IllegalTransition
from kernel.languages import Language
from kernel.media_types import PublicationRef
from kernel.roles import Role
from signaling.extensions import RoomMessenger
from signaling.live import LiveRoom, Participant
from signaling.protocol import (
    ClientMessage,
    ErrorCode,
    InterpretationChannel,
    InterpretationState,
    RequestError,
    SetInterpretationMode,
)

log = logging.getLogger(__name__)

#: Told when what an interpreter speaks changed: (room, interpreter).
SpeakingChanged = Callable[[LiveRoom, Participant], Awaitable[None]]


def _people(room: LiveRoom) -> list[Person]:
    return [
        Person(p.id, p.claims.language, interpreter=p.role is Role.INTERPRETER)
        for p in room.in_room()
    ]


@dataclass
class _Room:
    room: LiveRoom
    channels: dict[str, InterpreterChannel] = field(default_factory=dict)


class InterpretationExtension:
    """``RoomExtension``: interpreters' modes and who listens to them, per room."""

    def __init__(self, messenger: RoomMessenger) -> None:
        self._messenger = messenger
        self._rooms: dict[str, _Room] = {}
        #: set by the captions extension
        self.on_speaking_changed: SpeakingChanged | None = None

    # -- queries ----------------------------------------------------------------
    def speaking(self, room_id: str, participant: Participant) -> tuple[Language, bool]:
        """(the language ``participant`` speaks now, whether it is interpretation)."""
        r = self._rooms.get(room_id)
        channel = r.channels.get(participant.id) if r is not None else None
        if channel is None:
            return participant.claims.language, False
        return channel.speaking(participant.claims.language)

    def state(self, room: LiveRoom) -> InterpretationState:
        people = _people(room)
        r = self._rooms.get(room.id)
        channels = list(r.channels.values()) if r is not None else []
        return InterpretationState(
            languages=language_groups(people),
            channels=[
                InterpretationChannel(
                    interpreter_id=c.interpreter_id,
                    mode=c.mode.value,
                    into=c.into,
                    audience=c.audience(people),
                )
                for c in channels
            ],
        )

    # -- RoomExtension ------------------------------------------------------------
    async def room_opened(self, room: LiveRoom) -> None:
        self._rooms[room.id] = _Room(room)

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None:
        r = self._rooms.get(room.id)
        if r is None:
            return
        if participant.role is Role.INTERPRETER and participant.id not in r.channels:
            r.channels[participant.id] = InterpreterChannel(room.id, participant.id)
        await self._messenger.broadcast(room, self.state(room))

    async def publication_added(self, room: LiveRoom, publication: PublicationRef) -> None:
        return None

    async def participant_left(self, room: LiveRoom, participant: Participant) -> None:
        r = self._rooms.get(room.id)
        if r is None:
            return
        r.channels.pop(participant.id, None)
        groups = language_groups(_people(room))
        for channel in r.channels.values():
            if channel.regroup(groups):
                await self._speaking_changed(room, channel.interpreter_id)
        await self._messenger.broadcast(room, self.state(room))

    async def room_closed(self, room: LiveRoom, *, final: bool) -> None:
        self._rooms.pop(room.id, None)

    async def handle(
        self, room: LiveRoom, participant: Participant, message: ClientMessage
    ) -> bool:
        if not isinstance(message, SetInterpretationMode):
            return False
        r = self._rooms.get(room.id)
        channel = r.channels.get(participant.id) if r is not None else None
        if channel is None:
            raise RequestError(
                ErrorCode.NOT_ALLOWED, "Only an interpreter in the call can change the mode."
            )
        try:
            changed = channel.switch(
                ChannelMode(message.mode), message.into, language_groups(_people(room))
            )
        except (IllegalTransition, ChannelRefused) as exc:
            raise RequestError(ErrorCode.NOT_ALLOWED, str(exc)) from None
        if changed:
            await self._speaking_changed(room, participant.id)
        await self._messenger.broadcast(room, self.state(room))
        return True

    async def aclose(self) -> None:
        self._rooms.clear()

    async def _speaking_changed(self, room: LiveRoom, participant_id: str) -> None:
        participant = room.participants.get(participant_id)
        if participant is None or self.on_speaking_changed is None:
            return
        try:
            await self.on_speaking_changed(room, participant)
        except Exception:
            log.exception(
                "room %s interpreter %s: captions did not follow the mode change",
                room.id,
                participant_id,
            )
