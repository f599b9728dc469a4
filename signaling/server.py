"""The socket.io signaling server: connections, message dispatch, media events, shutdown.

Every inbound payload is parsed into a typed message (``signaling.protocol``)
before anything acts on it; every refusal goes back as an ``error`` message —
or, for a refused connection, as ``connect_error`` data — with a code and a
sentence the person can act on. The lobby rules live in ``signaling.lobby``,
the rooms' lifetimes in ``signaling.lifecycle``; this module joins them to the
sockets. Nothing here imports aiortc: media comes from a ``MediaRoomFactory``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import redis.asyncio as aioredis
import socketio

from kernel.log_limits import RateLimitedLog
from kernel.media_types import LinkReport, OfferToSend, PublicationRef
from signaling.admission import AdmissionStore
from signaling.chat import ChatStore, Redactor
from signaling.errors import SignalingError, UnknownRoomError
from signaling.extensions import ExtensionHooks, RoomExtension
from signaling.lifecycle import LiveRooms
from signaling.live import LiveRoom, Participant, ParticipantState
from signaling.lobby import Lobby
from signaling.media_port import MediaEvents, MediaRefused, MediaRoomFactory
from signaling.messenger import Messenger, Session
from signaling.node_events import EventSink
from signaling.placement import NodePlacement
from signaling.protocol import (
    EVENT,
    Admit,
    Answer,
    ChatSend,
    ClientMessage,
    ConnectRefusal,
    Deny,
    EndRoom,
    Error,
    ErrorCode,
    IceCandidate,
    IceServerInfo,
    Join,
    Leave,
    LinkQualityMessage,
    Mute,
    MuteChanged,
    Offer,
    ParticipantLink,
    ProtocolError,
    Remove,
    RequestError,
    RoomState,
    ServerRestarting,
    TrackInfo,
    Welcome,
    parse_client_message,
)
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenError, TokenService

logger = logging.getLogger(__name__)

_REPLACED_MESSAGE = (
    "This link was opened again (another window or device); this connection was closed."
)
#: Bad input a client can repeat at will is logged once per kind per interval.
_BAD_INPUT_LOG = RateLimitedLog(logger, interval_s=10.0)

#: A participant whose media connection fails is given a new one at most this often.
PEER_RESTARTS_ALLOWED = 3
PEER_RESTART_WINDOW_S = 60.0
#: times a connect opens its room again when it closed under it before giving up
_OPEN_ATTEMPTS = 3


def _refused(code: ErrorCode, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """A refused connection: the page reads ``err.data.code`` (never the English)."""
    data = ConnectRefusal(code=code, message=message).model_dump(mode="json")
    return socketio.exceptions.ConnectionRefusedError(message, data)


class _RoomEvents(MediaEvents):
    """What one room's media tells signaling."""

    def __init__(self, server: SignalingServer, room_id: str) -> None:
        self._server = server
        self._room_id = room_id

    async def send_offer(self, participant_id: str, offer: OfferToSend) -> None:
        await self._server._send_offer(self._room_id, participant_id, offer)

    async def publication_added(self, publication: PublicationRef) -> None:
        room = self._server._live.get(self._room_id)
        if room is not None:
            await self._server.hooks.publication_added(room, publication)

    async def peer_failed(self, participant_id: str, reason: str) -> None:
        await self._server._peer_failed(self._room_id, participant_id, reason)

    async def link_quality(self, participant_id: str, report: LinkReport) -> None:
        await self._server._send_link_quality(self._room_id, participant_id, report)


class SignalingServer:
    """Owns the live rooms of this node and the socket.io handlers that drive them."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        redis: aioredis.Redis,
        tokens: TokenService,
        rooms: RoomDirectory,
        media_factory: MediaRoomFactory,
        ice_servers: list[IceServerInfo],
        placement: NodePlacement | None = None,
        events: EventSink | None = None,
        empty_room_grace_s: float = 600.0,
        sweep_interval_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        redact_chat: Redactor,
    ) -> None:
        self._tokens = tokens
        self._rooms = rooms
        self._ice_servers = ice_servers
        self._clock = clock
        self._admissions = AdmissionStore(redis)
        self._closing = False
        self.messenger = Messenger(sio)
        self.hooks = ExtensionHooks()
        self._live = LiveRooms(
            redis=redis,
            rooms=rooms,
            admissions=self._admissions,
            media_factory=media_factory,
            events_for=lambda room_id: _RoomEvents(self, room_id),
            hooks=self.hooks,
            messenger=self.messenger,
            placement=placement,
            events=events,
            grace_s=empty_room_grace_s,
            sweep_interval_s=sweep_interval_s,
            clock=clock,
        )
        self._chat = ChatStore(redis, redact_chat)
        self._lobby = Lobby(
            live=self._live,
            admissions=self._admissions,
            messenger=self.messenger,
            hooks=self.hooks,
            events=events,
            chat=self._chat,
        )
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on(EVENT, self._on_message)

    # ---------------------------------------------------------------- queries
    @property
    def live_rooms(self) -> dict[str, LiveRoom]:
        return self._live.all()

    @property
    def lifecycle(self) -> LiveRooms:
        return self._live

    def register(self, extension: RoomExtension) -> None:
        self.hooks.register(extension)

    def unregister(self, extension: RoomExtension) -> None:
        self.hooks.unregister(extension)

    # --------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._live.start()

    async def shutdown(self) -> None:
        """Tell every page the server is restarting, then let go of every room and socket.

        Rooms are closed, not ended: admission and recording state stay in Redis, so
        the pages come back (here after a restart, or on another node) still admitted.
        """
        if self._closing:
            return
        self._closing = True
        sids = self.messenger.sids()
        logger.info("shutting down: %d sockets, %d rooms", len(sids), len(self.live_rooms))
        for sid in sids:
            await self.messenger.send_to(sid, ServerRestarting())
        for room in list(self.live_rooms.values()):
            async with room.lock:
                for participant in list(room.participants.values()):
                    participant.set_state(ParticipantState.GONE)
                room.participants.clear()
                await self._live.close(room, final=False)
        for sid in self.messenger.sids():
            await self.messenger.drop(sid)
        await self.messenger.close_transports()

    async def aclose(self) -> None:
        await self.shutdown()
        await self._live.aclose()

    # -------------------------------------------------------------- socket.io
    async def _on_connect(self, sid: str, environ: object, auth: object = None) -> None:
        self.messenger.connect_started(sid)
        try:
            await self._connect_or_refuse(sid, auth)
        finally:
            replaced = self.messenger.connect_done(sid)
        if replaced:
            # A newer connection with the same link won while this one was connecting.
            raise _refused(ErrorCode.REPLACED, _REPLACED_MESSAGE)

    async def _connect_or_refuse(self, sid: str, auth: object) -> None:
        try:
            await self._connect(sid, auth)
        except RequestError as exc:
            raise _refused(exc.code, exc.message) from None
        except TokenError as exc:
            raise _refused(ErrorCode(exc.code.value), exc.message) from None
        except UnknownRoomError:
            raise _refused(
                ErrorCode.UNKNOWN_ROOM,
                "This consultation does not exist. Check the link you were sent.",
            ) from None
        except Exception:
            _BAD_INPUT_LOG.exception("connect", "socket %s: connect failed", sid)
            self.messenger.forget(sid)
            raise _refused(
                ErrorCode.SERVER_ERROR, "The server could not connect you. Try again shortly."
            ) from None

    async def _connect(self, sid: str, auth: object) -> None:
        if self._closing:
            raise RequestError(
                ErrorCode.SERVER_RESTARTING, "The server is restarting. Try again in a moment."
            )
        token = auth.get("token") if isinstance(auth, dict) else None
        room_id = auth.get("room") if isinstance(auth, dict) else None
        claims = self._tokens.verify_join(
            token if isinstance(token, str) else None,
            room_id=room_id if isinstance(room_id, str) else None,
        )
        record = await self._rooms.require(claims.room_id)
        if record.state is RoomState.ENDED:
            raise RequestError(ErrorCode.ROOM_ENDED, "This consultation has ended.")
        if await self._admissions.is_banned(record.id, claims.participant_id):
            raise RequestError(
                ErrorCode.REMOVED, "You were removed from this consultation by the counselor."
            )
        participant = Participant(claims=claims, sid=sid)
        for _ in range(_OPEN_ATTEMPTS):
            room = await self._live.open(record.id)
            # Everything that can fail is done before the participant is registered.
            welcome = Welcome(
                you=participant.info(), room=room.record.info(), ice_servers=self._ice_servers
            )
            if await self._seat(room, participant):
                break
            # The room closed while this connection waited for it (its last participant's
            # disconnect came first): a seat there would answer nothing. Open it again.
            logger.info("room %s: closed while %s connected; opening it again", room.id, sid)
        else:
            raise RequestError(
                ErrorCode.SERVER_ERROR,
                "The consultation kept closing as you connected. Try again in a moment.",
            )
        await self.messenger.send_to(sid, welcome)

    async def _seat(self, room: LiveRoom, participant: Participant) -> bool:
        """Register a new connection in the room; False when the room closed meanwhile."""
        claims, sid = participant.claims, participant.sid
        async with room.lock:
            if self._live.get(room.id) is not room:
                return False
            old = room.participants.get(claims.participant_id)
            if old is not None:
                # The same link connected again (a reload or a new network): the new one wins.
                logger.info("room %s participant %s: replaced by a new connection", room.id, old.id)
                await self._lobby.depart(room, old, "disconnected")
                await self.messenger.send_to(
                    old.sid, Error(code=ErrorCode.REPLACED, message=_REPLACED_MESSAGE)
                )
                await self.messenger.drop(old.sid)
            room.participants[participant.id] = participant
            self.messenger.bind(sid, Session(room.id, participant.id))
            self._live.cancel_idle(room)
        return True

    async def _on_disconnect(self, sid: str, reason: object = None) -> None:
        session = self.messenger.forget(sid)
        if session is None:
            return
        room = self._live.get(session.room_id)
        if room is None:
            return
        async with room.lock:
            participant = room.participants.get(session.participant_id)
            if participant is not None and participant.sid == sid:
                await self._lobby.depart(room, participant, "disconnected")
        await self._live.maybe_idle(room)

    async def _on_message(self, sid: str, data: object = None, *extra: object) -> None:
        session = self.messenger.session(sid)
        room = self._live.get(session.room_id) if session is not None else None
        participant = room.participants.get(session.participant_id) if room and session else None
        if room is None or participant is None or participant.sid != sid:
            # A socket no participant owns (replaced, or its room closed): say so, close it.
            _BAD_INPUT_LOG.info("orphan", "socket %s: message from a socket without a seat", sid)
            await self.messenger.send_to(
                sid,
                Error(
                    code=ErrorCode.NOT_IN_ROOM,
                    message="This connection no longer belongs to a consultation; reconnect.",
                ),
            )
            await self.messenger.drop(sid)
            return
        try:
            if extra:
                raise ProtocolError("send exactly one message object per event")
            message = parse_client_message(data)
            await self._dispatch(room, participant, message)
        except ProtocolError as exc:
            _BAD_INPUT_LOG.info(
                "bad_message", "room %s participant %s: %s", room.id, participant.id, exc
            )
            await self.messenger.send_to(sid, Error(code=ErrorCode.BAD_MESSAGE, message=str(exc)))
        except (RequestError, MediaRefused) as exc:
            if isinstance(exc, MediaRefused):
                _BAD_INPUT_LOG.warning(
                    f"media:{exc.code}", "room %s participant %s: %s", room.id, participant.id, exc
                )
            await self.messenger.send_to(sid, Error(code=exc.code, message=exc.message))
        except SignalingError as exc:
            await self.messenger.send_to(sid, Error(code=ErrorCode.NOT_ALLOWED, message=str(exc)))
        except Exception as exc:
            _BAD_INPUT_LOG.exception(
                f"failed:{type(exc).__name__}",
                "room %s participant %s: message failed",
                room.id,
                participant.id,
            )
            await self.messenger.send_to(
                sid,
                Error(code=ErrorCode.SERVER_ERROR, message="The server could not do that now."),
            )
        await self._live.maybe_idle(room)

    # --------------------------------------------------------------- dispatch
    async def _dispatch(self, room: LiveRoom, me: Participant, message: ClientMessage) -> None:
        match message:
            case Answer():
                Lobby.require_in_room(me)
                await room.media.apply_answer(me.id, message.sdp)
            case IceCandidate():
                Lobby.require_in_room(me)
                await room.media.add_candidate(
                    me.id, message.candidate, message.sdp_mid, message.sdp_mline_index
                )
            case _:
                async with room.lock:
                    if room.participants.get(me.id) is not me:
                        return  # replaced or gone while this message waited for the lock
                    await self._dispatch_locked(room, me, message)

    async def _dispatch_locked(
        self, room: LiveRoom, me: Participant, message: ClientMessage
    ) -> None:
        lobby = self._lobby
        match message:
            case Join():
                await lobby.join(room, me)
            case Admit(participant_id=target_id):
                lobby.require_moderator(me)
                await lobby.admit(room, lobby.waiting(room, target_id))
            case Deny(participant_id=target_id, reason=reason):
                lobby.require_moderator(me)
                await lobby.deny(room, lobby.waiting(room, target_id), reason)
            case Remove(participant_id=target_id, reason=reason):
                lobby.require_moderator(me)
                target = room.participants.get(target_id)
                if target is None or target is me:
                    raise RequestError(
                        ErrorCode.UNKNOWN_PARTICIPANT, "That participant is not here."
                    )
                await lobby.remove(room, target, reason)
            case Leave():
                await lobby.depart(room, me, "left")
            case EndRoom():
                lobby.require_moderator(me)
                await lobby.end(room, "The counselor ended the consultation.")
            case Mute(audio_muted=audio, video_muted=video):
                lobby.require_in_room(me)
                me.audio_muted, me.video_muted = audio, video
                await self.messenger.broadcast(
                    room, MuteChanged(participant_id=me.id, audio_muted=audio, video_muted=video)
                )
            case ChatSend(text=text):
                lobby.require_in_room(me)
                line = await self._chat.add(
                    room.id, participant_id=me.id, name=me.claims.name, text=text, ts=self._clock()
                )
                await self.messenger.broadcast(room, line)
            case _:
                if not await self.hooks.handle(room, me, message):
                    raise RequestError(
                        ErrorCode.BAD_MESSAGE, f"{message.type} is not supported here"
                    )

    # ------------------------------------------------------------ media events
    async def _send_offer(self, room_id: str, participant_id: str, offer: OfferToSend) -> None:
        room = self._live.get(room_id)
        target = room.participants.get(participant_id) if room else None
        if target is None:
            return
        await self.messenger.send(
            target,
            Offer(
                sdp=offer.sdp,
                publish=offer.publish,
                tracks=[
                    TrackInfo(mid=t.mid, participant_id=t.participant_id, kind=t.kind)
                    for t in offer.tracks
                ],
            ),
        )

    async def _send_link_quality(
        self, room_id: str, participant_id: str, report: LinkReport
    ) -> None:
        room = self._live.get(room_id)
        target = room.participants.get(participant_id) if room else None
        if target is None or target.state is not ParticipantState.IN_ROOM:
            return
        message = LinkQualityMessage(
            you=report.you,
            participants=[
                ParticipantLink(participant_id=p.participant_id, link=p.link, video=p.video)
                for p in report.participants
            ],
        )
        await self.messenger.send(target, message)

    async def _peer_failed(self, room_id: str, participant_id: str, reason: str) -> None:
        """A participant's media connection was closed: give them a new one, within limits."""
        room = self._live.get(room_id)
        if room is None:
            return
        async with room.lock:
            me = room.participants.get(participant_id)
            if me is None or me.state is not ParticipantState.IN_ROOM:
                return
            now = self._clock()
            restarts = room.peer_restarts.setdefault(participant_id, deque(maxlen=16))
            while restarts and now - restarts[0] > PEER_RESTART_WINDOW_S:
                restarts.popleft()
            if len(restarts) >= PEER_RESTARTS_ALLOWED:
                logger.warning(
                    "room %s participant %s: media failed %d times in %.0f s; disconnecting",
                    room.id,
                    participant_id,
                    len(restarts),
                    PEER_RESTART_WINDOW_S,
                )
                await self._lobby.depart(room, me, "disconnected")
                await self.messenger.drop(me.sid)
                return
            restarts.append(now)
            await self.messenger.send(
                me,
                Error(
                    code=ErrorCode.NEGOTIATION_FAILED,
                    message=f"Your media connection was rebuilt: {reason}.",
                ),
            )
            await room.media.add_peer(participant_id, receive_only=not me.role.publishes)
        await self._live.maybe_idle(room)
