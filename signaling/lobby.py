"""Who is in the room: the lobby, admit and deny, remove, leave, end.

Staff go straight in; a resident waits in the lobby until a counselor admits
them. Admission and removal are kept in Redis (``AdmissionStore``), so an
admitted resident who reconnects — after a reload, a network change or a
server restart — goes straight back in, and a removed one stays out.
All of this runs under the room's lock.
"""

from __future__ import annotations

import logging

from signaling.admission import AdmissionStore
from signaling.chat import ChatStore
from signaling.extensions import ExtensionHooks
from signaling.lifecycle import LiveRooms
from signaling.live import LiveRoom, Participant, ParticipantState
from signaling.messenger import Messenger
from signaling.node_events import EventSink, KnockEvent, LobbyEvent
from signaling.protocol import (
    Denied,
    Ended,
    ErrorCode,
    InLobby,
    Joined,
    Knock,
    LeaveReason,
    LobbyChanged,
    ParticipantJoined,
    ParticipantLeft,
    Removed,
    RequestError,
    RoomState,
)

logger = logging.getLogger(__name__)


class Lobby:
    def __init__(
        self,
        *,
        live: LiveRooms,
        admissions: AdmissionStore,
        messenger: Messenger,
        hooks: ExtensionHooks,
        chat: ChatStore,
        events: EventSink | None = None,
    ) -> None:
        self._chat = chat
        self._live = live
        self._admissions = admissions
        self._messenger = messenger
        self._hooks = hooks
        self._events = events

    # ------------------------------------------------------------ requests
    async def join(self, room: LiveRoom, me: Participant) -> None:
        if me.state is not ParticipantState.CONNECTED:
            raise RequestError(ErrorCode.NOT_ALLOWED, "You have already joined.")
        if room.record.state is RoomState.CREATED:
            await self._live.set_state(room, RoomState.LOBBY)
        if me.role.is_staff or await self._admissions.is_admitted(room.id, me.id):
            await self.enter(room, me)
            if me.role.is_staff and room.waiting():
                await self._messenger.send(
                    me, LobbyChanged(waiting=[p.info() for p in room.waiting()])
                )
            return
        me.set_state(ParticipantState.LOBBY)
        await self._messenger.send(me, InLobby())
        for staff in room.staff_in_room():
            await self._messenger.send(staff, Knock(participant=me.info()))
        if self._events is not None:
            self._events.publish(KnockEvent(room_id=room.id, waiting=len(room.waiting())))
        await self.lobby_changed(room)

    async def admit(self, room: LiveRoom, target: Participant) -> None:
        await self._admissions.admit(room.id, target.id)
        if room.record.state is RoomState.LOBBY:
            await self._live.set_state(room, RoomState.LIVE)
        await self.enter(room, target)
        await self.lobby_changed(room)

    async def deny(self, room: LiveRoom, target: Participant, reason: str) -> None:
        await self._messenger.send(
            target, Denied(reason=reason or "The counselor could not admit you now.")
        )
        await self.depart(room, target, "removed")
        await self._messenger.drop(target.sid)

    async def remove(self, room: LiveRoom, target: Participant, reason: str) -> None:
        await self._admissions.ban(room.id, target.id)
        await self._messenger.send(target, Removed(reason=reason or "The counselor removed you."))
        await self.depart(room, target, "removed")
        await self._messenger.drop(target.sid)

    async def end(self, room: LiveRoom, reason: str) -> None:
        await self._live.set_state(room, RoomState.ENDED)
        for participant in list(room.participants.values()):
            await self._messenger.send(participant, Ended(reason=reason))
            await self.depart(room, participant, "left")
            await self._messenger.drop(participant.sid)
        await self._live.close(room, final=True)
        await self._chat.forget(room.id)

    # --------------------------------------------------------- transitions
    async def enter(self, room: LiveRoom, me: Participant) -> None:
        others = room.in_room()
        me.set_state(ParticipantState.IN_ROOM)
        await self._messenger.send(
            me,
            Joined(
                you=me.info(),
                room=room.record.info(),
                participants=[p.info() for p in others],
                chat=await self._chat.history(room.id),
            ),
        )
        for other in others:
            await self._messenger.send(other, ParticipantJoined(participant=me.info()))
        await room.media.add_peer(me.id, receive_only=not me.role.publishes)
        await self._hooks.participant_entered(room, me)

    async def depart(self, room: LiveRoom, me: Participant, reason: LeaveReason) -> None:
        was = me.state
        if was is ParticipantState.GONE:
            return
        me.set_state(ParticipantState.GONE)
        if room.participants.get(me.id) is me:
            del room.participants[me.id]
        if was is ParticipantState.IN_ROOM:
            await self._hooks.participant_left(room, me)
            await room.media.remove_peer(me.id)
            for other in room.in_room():
                await self._messenger.send(
                    other, ParticipantLeft(participant_id=me.id, reason=reason)
                )
        elif was is ParticipantState.LOBBY:
            await self.lobby_changed(room)

    async def lobby_changed(self, room: LiveRoom) -> None:
        waiting = [p.info() for p in room.waiting()]
        for staff in room.staff_in_room():
            await self._messenger.send(staff, LobbyChanged(waiting=waiting))
        if self._events is not None:
            self._events.publish(LobbyEvent(room_id=room.id, waiting=len(waiting)))

    # ------------------------------------------------------------- checks
    @staticmethod
    def require_in_room(me: Participant) -> None:
        if me.state is not ParticipantState.IN_ROOM:
            raise RequestError(ErrorCode.NOT_IN_ROOM, "Join the consultation first.")

    @classmethod
    def require_moderator(cls, me: Participant) -> None:
        cls.require_in_room(me)
        if not me.role.can_moderate:
            raise RequestError(ErrorCode.NOT_ALLOWED, "Only the counselor can do this.")

    @staticmethod
    def waiting(room: LiveRoom, participant_id: str) -> Participant:
        target = room.participants.get(participant_id)
        if target is None or target.state is not ParticipantState.LOBBY:
            raise RequestError(
                ErrorCode.UNKNOWN_PARTICIPANT, "That person is no longer waiting in the lobby."
            )
        return target
