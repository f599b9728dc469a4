"""The socket.io signaling server: authentication, lobby and admit, media negotiation.

Every inbound payload is parsed into a typed message (``signaling.protocol``)
before anything acts on it; every refusal goes back as an ``error`` message with
a code and a sentence the person can act on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import socketio
from pydantic import BaseModel

from media.codecs import CodecMismatchError
from media.errors import MediaError
from media.forwarding import Forwarder, Publication
from media.sfu import MediaRoom, OfferToSend
from signaling.errors import IllegalTransition, SignalingError
from signaling.extensions import RoomExtension
from signaling.live import LiveRoom, Participant, ParticipantState
from signaling.placement import NodePlacement
from signaling.protocol import (
    EVENT,
    Admit,
    Answer,
    ChatMessage,
    ChatSend,
    ClientMessage,
    Denied,
    Deny,
    Ended,
    EndRoom,
    Error,
    ErrorCode,
    IceCandidate,
    IceServerInfo,
    InLobby,
    Join,
    Joined,
    Knock,
    Leave,
    LeaveReason,
    LobbyChanged,
    Mute,
    MuteChanged,
    Offer,
    ParticipantJoined,
    ParticipantLeft,
    ProtocolError,
    Remove,
    Removed,
    RoomState,
    RoomStateChanged,
    ServerMessage,
    TrackInfo,
    Welcome,
    parse_client_message,
)
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenError, TokenService

logger = logging.getLogger(__name__)


class RequestError(SignalingError):
    """A client request refused; becomes an ``error`` message on the wire."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Session:
    room_id: str
    participant_id: str


class SignalingServer:
    """Owns the live rooms of this node and the socket.io handlers that drive them."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        tokens: TokenService,
        rooms: RoomDirectory,
        forwarder_factory: Callable[[], Forwarder],
        ice_servers: list[IceServerInfo],
        placement: NodePlacement | None = None,
        empty_room_grace_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sio = sio
        self._tokens = tokens
        self._rooms = rooms
        self._forwarder_factory = forwarder_factory
        self._ice_servers = ice_servers
        self._placement = placement
        self._grace_s = empty_room_grace_s
        self._clock = clock
        self._live: dict[str, LiveRoom] = {}
        self._sessions: dict[str, _Session] = {}
        self._open_lock = asyncio.Lock()
        self.extensions: list[RoomExtension] = []
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on(EVENT, self._on_message)

    # ---------------------------------------------------------------- queries
    @property
    def live_rooms(self) -> dict[str, LiveRoom]:
        return dict(self._live)

    # --------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        """Close every socket and room of this node (clients reconnect elsewhere)."""
        for sid in list(self._sessions):
            await self._drop_socket(sid)
        for room in list(self._live.values()):
            await self._close_live(room)

    # -------------------------------------------------------------- socket.io
    async def _on_connect(self, sid: str, environ: object, auth: object = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        room_id = auth.get("room") if isinstance(auth, dict) else None
        try:
            claims = self._tokens.verify_join(
                token, room_id=room_id if isinstance(room_id, str) else None
            )
        except TokenError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message) from None
        record = await self._rooms.get(claims.room_id)
        if record is None:
            raise socketio.exceptions.ConnectionRefusedError(
                "This consultation does not exist. Check the link you were sent."
            )
        if record.state is RoomState.ENDED:
            raise socketio.exceptions.ConnectionRefusedError("This consultation has ended.")
        if self._placement is not None and record.id not in self._live:
            holder = await self._placement.claim(record.id)
            if holder != self._placement.node_id:
                raise socketio.exceptions.ConnectionRefusedError(
                    f"This consultation is hosted on another server ({holder}). "
                    "Reload the page; if it keeps happening, tell the service center."
                )
        room = await self._open_live(record.id)
        if claims.participant_id in room.banned:
            raise socketio.exceptions.ConnectionRefusedError(
                "You were removed from this consultation by the counselor."
            )
        async with room.lock:
            old = room.participants.get(claims.participant_id)
            if old is not None:
                # The same link connected again (a reload or a new network): the new one wins.
                logger.info("room %s participant %s: replaced by a new connection", room.id, old.id)
                await self._depart(room, old, "disconnected")
                await self._drop_socket(old.sid)
            participant = Participant(claims=claims, sid=sid)
            room.participants[participant.id] = participant
            self._sessions[sid] = _Session(room.id, participant.id)
            self._cancel_empty_timer(room)
        await self._send(
            sid,
            Welcome(you=participant.info(), room=room.record.info(), ice_servers=self._ice_servers),
        )

    async def _on_disconnect(self, sid: str, reason: object = None) -> None:
        session = self._sessions.pop(sid, None)
        if session is None:
            return
        room = self._live.get(session.room_id)
        if room is None:
            return
        async with room.lock:
            participant = room.participants.get(session.participant_id)
            if participant is not None and participant.sid == sid:
                await self._depart(room, participant, "disconnected")
        await self._maybe_idle(room)

    async def _on_message(self, sid: str, data: object) -> None:
        session = self._sessions.get(sid)
        if session is None:
            return
        room = self._live.get(session.room_id)
        participant = room.participants.get(session.participant_id) if room else None
        if room is None or participant is None:
            return
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            await self._send(sid, Error(code=ErrorCode.BAD_MESSAGE, message=str(exc)))
            return
        try:
            await self._dispatch(room, participant, message)
        except RequestError as exc:
            await self._send(sid, Error(code=exc.code, message=exc.message))
        except CodecMismatchError as exc:
            logger.warning("room %s participant %s: %s", room.id, participant.id, exc)
            await self._send(sid, Error(code=ErrorCode.CODEC_UNSUPPORTED, message=str(exc)))
        except MediaError as exc:
            logger.warning("room %s participant %s: %s", room.id, participant.id, exc)
            await self._send(sid, Error(code=ErrorCode.NEGOTIATION_FAILED, message=str(exc)))
        await self._maybe_idle(room)

    # --------------------------------------------------------------- dispatch
    async def _dispatch(self, room: LiveRoom, me: Participant, message: ClientMessage) -> None:
        match message:
            case Answer():
                self._require_in_room(me)
                await room.media.apply_answer(me.id, message.sdp)
            case IceCandidate():
                self._require_in_room(me)
                await room.media.add_candidate(
                    me.id, message.candidate, message.sdp_mid, message.sdp_mline_index
                )
            case _:
                async with room.lock:
                    await self._dispatch_locked(room, me, message)

    async def _dispatch_locked(
        self, room: LiveRoom, me: Participant, message: ClientMessage
    ) -> None:
        match message:
            case Join():
                await self._join(room, me)
            case Admit(participant_id=target_id):
                self._require_moderator(me)
                await self._admit(room, self._waiting(room, target_id))
            case Deny(participant_id=target_id, reason=reason):
                self._require_moderator(me)
                target = self._waiting(room, target_id)
                await self._send(
                    target.sid, Denied(reason=reason or "The counselor could not admit you now.")
                )
                await self._depart(room, target, "removed")
                await self._drop_socket(target.sid)
            case Remove(participant_id=target_id, reason=reason):
                self._require_moderator(me)
                removed = room.participants.get(target_id)
                if removed is None or removed is me:
                    raise RequestError(
                        ErrorCode.UNKNOWN_PARTICIPANT, "That participant is not here."
                    )
                room.banned.add(removed.id)
                await self._send(
                    removed.sid, Removed(reason=reason or "The counselor removed you.")
                )
                await self._depart(room, removed, "removed")
                await self._drop_socket(removed.sid)
            case Leave():
                await self._depart(room, me, "left")
            case EndRoom():
                self._require_moderator(me)
                await self._end(room, "The counselor ended the consultation.")
            case Mute(audio_muted=audio, video_muted=video):
                self._require_in_room(me)
                me.audio_muted, me.video_muted = audio, video
                await self._broadcast(
                    room, MuteChanged(participant_id=me.id, audio_muted=audio, video_muted=video)
                )
            case ChatSend(text=text):
                self._require_in_room(me)
                await self._broadcast(
                    room,
                    ChatMessage(
                        participant_id=me.id, name=me.claims.name, text=text, ts=self._clock()
                    ),
                )
            case _:
                for extension in self.extensions:
                    if await extension.handle(room, me, message):
                        return
                raise RequestError(ErrorCode.BAD_MESSAGE, f"{message.type} is not supported here")

    # ------------------------------------------------------------ transitions
    async def _join(self, room: LiveRoom, me: Participant) -> None:
        if me.state is not ParticipantState.CONNECTED:
            raise RequestError(ErrorCode.NOT_ALLOWED, "You have already joined.")
        if room.record.state is RoomState.CREATED:
            await self._set_room_state(room, RoomState.LOBBY)
        if me.role.is_staff or me.id in room.admitted:
            await self._enter(room, me)
            if me.role.is_staff and room.waiting():
                await self._send(me.sid, LobbyChanged(waiting=[p.info() for p in room.waiting()]))
            return
        me.set_state(ParticipantState.LOBBY)
        await self._send(me.sid, InLobby())
        for staff in room.staff_in_room():
            await self._send(staff.sid, Knock(participant=me.info()))
        await self._lobby_changed(room)

    async def _admit(self, room: LiveRoom, target: Participant) -> None:
        room.admitted.add(target.id)
        if room.record.state is RoomState.LOBBY:
            await self._set_room_state(room, RoomState.LIVE)
        await self._enter(room, target)
        await self._lobby_changed(room)

    async def _enter(self, room: LiveRoom, me: Participant) -> None:
        others = room.in_room()
        me.set_state(ParticipantState.IN_ROOM)
        await self._send(
            me.sid,
            Joined(you=me.info(), room=room.record.info(), participants=[p.info() for p in others]),
        )
        for other in others:
            await self._send(other.sid, ParticipantJoined(participant=me.info()))
        await room.media.add_peer(me.id)
        for extension in self.extensions:
            await self._guard(room, extension.participant_entered(room, me))

    async def _depart(self, room: LiveRoom, me: Participant, reason: LeaveReason) -> None:
        was = me.state
        if was is ParticipantState.GONE:
            return
        me.set_state(ParticipantState.GONE)
        room.participants.pop(me.id, None)
        if was is ParticipantState.IN_ROOM:
            for extension in self.extensions:
                await self._guard(room, extension.participant_left(room, me))
            await room.media.remove_peer(me.id)
            for other in room.in_room():
                await self._send(
                    other.sid,
                    ParticipantLeft(participant_id=me.id, reason=reason),
                )
        elif was is ParticipantState.LOBBY:
            await self._lobby_changed(room)

    async def _end(self, room: LiveRoom, reason: str) -> None:
        await self._set_room_state(room, RoomState.ENDED)
        for participant in list(room.participants.values()):
            await self._send(participant.sid, Ended(reason=reason))
            await self._depart(room, participant, "left")
            await self._drop_socket(participant.sid)
        await self._close_live(room)

    async def _set_room_state(self, room: LiveRoom, state: RoomState) -> None:
        try:
            room.record = await self._rooms.transition(room.id, state)
        except IllegalTransition as exc:
            raise RequestError(ErrorCode.NOT_ALLOWED, str(exc)) from exc
        await self._broadcast(room, RoomStateChanged(state=state), include_lobby=True)

    # ---------------------------------------------------------------- helpers
    def _require_in_room(self, me: Participant) -> None:
        if me.state is not ParticipantState.IN_ROOM:
            raise RequestError(ErrorCode.NOT_IN_ROOM, "Join the consultation first.")

    def _require_moderator(self, me: Participant) -> None:
        self._require_in_room(me)
        if not me.role.can_moderate:
            raise RequestError(ErrorCode.NOT_ALLOWED, "Only the counselor can do this.")

    def _waiting(self, room: LiveRoom, participant_id: str) -> Participant:
        target = room.participants.get(participant_id)
        if target is None or target.state is not ParticipantState.LOBBY:
            raise RequestError(
                ErrorCode.UNKNOWN_PARTICIPANT, "That person is no longer waiting in the lobby."
            )
        return target

    async def _lobby_changed(self, room: LiveRoom) -> None:
        waiting = [p.info() for p in room.waiting()]
        for staff in room.staff_in_room():
            await self._send(staff.sid, LobbyChanged(waiting=waiting))

    async def _broadcast(
        self, room: LiveRoom, message: ServerMessage | BaseModel, *, include_lobby: bool = False
    ) -> None:
        for participant in list(room.participants.values()):
            if participant.state is ParticipantState.IN_ROOM or (
                include_lobby and participant.state is ParticipantState.LOBBY
            ):
                await self._send(participant.sid, message)

    async def _send(self, sid: str, message: ServerMessage | BaseModel) -> None:
        await self._sio.emit(EVENT, message.model_dump(mode="json"), to=sid)

    async def _drop_socket(self, sid: str) -> None:
        """Disconnect a socket we have already dealt with.

        The session is forgotten first: python-socketio runs our disconnect handler
        inline, and it must not wait for the room lock we are holding.
        """
        self._sessions.pop(sid, None)
        await self._sio.disconnect(sid)

    async def _guard(self, room: LiveRoom, work: Awaitable[None]) -> None:
        """Run an extension hook; a failing feature must not take the call down with it."""
        try:
            await work
        except Exception:
            logger.exception("room %s: extension hook failed", room.id)

    # RoomMessenger, for extensions
    async def send(self, participant: Participant, message: BaseModel) -> None:
        await self._send(participant.sid, message)

    async def broadcast(self, room: LiveRoom, message: BaseModel) -> None:
        await self._broadcast(room, message)

    async def _open_live(self, room_id: str) -> LiveRoom:
        async with self._open_lock:
            room = self._live.get(room_id)
            if room is not None:
                return room
            record = await self._rooms.require(room_id)

            async def send_offer(participant_id: str, offer: OfferToSend) -> None:
                target = live.participants.get(participant_id)
                if target is None:
                    return
                await self._send(
                    target.sid,
                    Offer(
                        sdp=offer.sdp,
                        publish=offer.publish,
                        tracks=[
                            TrackInfo(mid=t.mid, participant_id=t.participant_id, kind=t.kind)
                            for t in offer.tracks
                        ],
                    ),
                )

            async def on_publication(publication: Publication) -> None:
                for extension in self.extensions:
                    await self._guard(live, extension.publication_added(live, publication))

            media = MediaRoom(
                room_id,
                self._forwarder_factory(),
                send_offer=send_offer,
                on_publication=on_publication,
            )
            live = LiveRoom(record=record, media=media)
            self._live[room_id] = live
            for extension in self.extensions:
                await self._guard(live, extension.room_opened(live))
            logger.info("room %s: opened on this node", room_id)
            return live

    async def _close_live(self, room: LiveRoom) -> None:
        self._cancel_empty_timer(room)
        if self._live.get(room.id) is room:
            del self._live[room.id]
        for extension in self.extensions:
            await self._guard(room, extension.room_closed(room))
        await room.media.aclose()
        if self._placement is not None:
            await self._placement.release(room.id)
        logger.info("room %s: closed on this node", room.id)

    async def _maybe_idle(self, room: LiveRoom) -> None:
        """Close an empty room; a live one ends after the grace period."""
        if room.participants or self._live.get(room.id) is not room:
            return
        if room.record.state is RoomState.LIVE:
            if room.empty_timer is None:
                room.empty_timer = asyncio.create_task(
                    self._end_when_idle(room), name=f"room {room.id}: idle timer"
                )
        else:
            await self._close_live(room)

    async def _end_when_idle(self, room: LiveRoom) -> None:
        await asyncio.sleep(self._grace_s)
        async with room.lock:
            room.empty_timer = None
            if room.participants:
                return
            logger.info("room %s: empty for %.0f s, ending", room.id, self._grace_s)
            room.record = await self._rooms.transition(room.id, RoomState.ENDED)
        await self._close_live(room)

    def _cancel_empty_timer(self, room: LiveRoom) -> None:
        timer, room.empty_timer = room.empty_timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
