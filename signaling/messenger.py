"""Sockets and what is sent on them: which socket is whom, typed sends, drops.

Every server message goes out through here as a ``ServerMessage`` (one typed
union); nothing else emits on the signaling event.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

import socketio

from signaling.live import LiveRoom, Participant, ParticipantState
from signaling.protocol import EVENT, ServerMessage

logger = logging.getLogger(__name__)

#: How long a stop waits for one engine.io connection to take its close packet.
TRANSPORT_CLOSE_S: Final = 1.0


@dataclass(frozen=True)
class Session:
    room_id: str
    participant_id: str


class Messenger:
    """The ``RoomMessenger`` extensions use, and the socket registry of this node."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self._sessions: dict[str, Session] = {}
        # Sockets whose connect handler is still running, and those of them dropped
        # meanwhile: python-socketio ignores a disconnect until the handler returns,
        # so they are refused when it does (``connect_done``) instead.
        self._connecting: set[str] = set()
        self._superseded: set[str] = set()

    # -- sessions -----------------------------------------------------------------------
    def bind(self, sid: str, session: Session) -> None:
        self._sessions[sid] = session

    def session(self, sid: str) -> Session | None:
        return self._sessions.get(sid)

    def forget(self, sid: str) -> Session | None:
        return self._sessions.pop(sid, None)

    def sids(self) -> list[str]:
        return list(self._sessions)

    def connect_started(self, sid: str) -> None:
        self._connecting.add(sid)

    def connect_done(self, sid: str) -> bool:
        """The connect handler of ``sid`` is returning: whether it was dropped meanwhile.

        Called with no ``await`` between it and the handler's return, so nothing can be
        dropped in between unnoticed (python-socketio marks the socket connected
        without yielding once the handler returns).
        """
        self._connecting.discard(sid)
        if sid in self._superseded:
            self._superseded.discard(sid)
            return True
        return False

    # -- sending ------------------------------------------------------------------------
    async def send_to(self, sid: str, message: ServerMessage) -> None:
        await self._sio.emit(EVENT, message.model_dump(mode="json"), to=sid)

    async def send(self, participant: Participant, message: ServerMessage) -> None:
        await self.send_to(participant.sid, message)

    async def broadcast(
        self, room: LiveRoom, message: ServerMessage, *, include_lobby: bool = False
    ) -> None:
        for participant in list(room.participants.values()):
            if participant.state is ParticipantState.IN_ROOM or (
                include_lobby and participant.state is ParticipantState.LOBBY
            ):
                await self.send(participant, message)

    async def close_transports(self) -> None:
        """Close every engine.io connection, including ones that never authenticated,
        then stop socket.io's background tasks (a stop must not wait on open sockets)."""
        self._sessions.clear()
        # engine.io's own disconnect-all waits for each socket's send queue to drain,
        # forever for a client that already went away: close without waiting, bounded.
        for eio_socket in list(self._sio.eio.sockets.values()):
            try:
                async with asyncio.timeout(TRANSPORT_CLOSE_S):
                    await eio_socket.close(wait=False)
            except (TimeoutError, OSError):
                logger.info("engine.io socket %s did not close cleanly", eio_socket.sid)
        self._sio.eio.sockets.clear()
        await self._sio.shutdown()

    async def drop(self, sid: str) -> None:
        """Disconnect a socket we have already dealt with.

        The session is forgotten first: python-socketio runs our disconnect handler
        inline, and it must not wait for the room lock we may be holding.
        """
        self._sessions.pop(sid, None)
        if sid in self._connecting:
            self._superseded.add(sid)  # refused when its connect handler returns
            return
        await self._sio.disconnect(sid)
