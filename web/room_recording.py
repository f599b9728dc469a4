"""Recording with consent in a room: the signaling side of ``media.recorder``.

A ``RoomExtension`` (composition-root glue): the counselor asks, every participant
in the room is asked to consent (a late joiner on entry), nothing is written until
all have agreed, a decline stops it, and everyone sees the indicator.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kernel.media_types import PublicationRef
from media.consent import ConsentError, RecordingState, Transition
from media.errors import MediaError
from media.recorder import RecordingSession, session_directory
from signaling.extensions import RoomMessenger
from signaling.live import LiveRoom, Participant
from signaling.protocol import (
    ClientMessage,
    Error,
    ErrorCode,
    RecordConsent,
    RecordConsentRequest,
    RecordDecline,
    RecordIndicator,
    RecordStart,
    RecordStop,
)
from web.media_rooms import SfuRooms

logger = logging.getLogger(__name__)

_RECORDING_MESSAGES = (RecordStart, RecordStop, RecordConsent, RecordDecline)


class RoomRecording:
    """One ``RecordingSession`` per live room, created when the counselor first asks."""

    def __init__(self, data_dir: Path, messenger: RoomMessenger, media: SfuRooms) -> None:
        self._data_dir = data_dir
        self._messenger = messenger
        self._media = media
        self._sessions: dict[str, RecordingSession] = {}

    def session(self, room_id: str) -> RecordingSession | None:
        return self._sessions.get(room_id)

    # ------------------------------------------------------------ room hooks
    async def room_opened(self, room: LiveRoom) -> None:
        return None

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None:
        session = self._sessions.get(room.id)
        if session is None or session.state is RecordingState.IDLE:
            return
        await self._after(room, session, await session.join(participant.id))
        await self._messenger.send(participant, self._indicator(session, ""))
        if participant.id in session.consent.pending:
            await self._ask(room, session, [participant.id])

    async def publication_added(self, room: LiveRoom, publication: PublicationRef) -> None:
        session = self._sessions.get(room.id)
        if session is not None:
            session.add_publication(publication.id, publication.participant_id, publication.kind)

    async def participant_left(self, room: LiveRoom, participant: Participant) -> None:
        session = self._sessions.get(room.id)
        if session is None:
            return
        for kind in ("audio", "video"):
            await session.remove_publication(f"{participant.id}/{kind}")
        await self._after(room, session, await session.leave(participant.id))

    async def room_closed(self, room: LiveRoom, *, final: bool) -> None:
        session = self._sessions.pop(room.id, None)
        if session is not None:
            await session.aclose()

    async def aclose(self) -> None:
        for room_id in list(self._sessions):
            await self._sessions.pop(room_id).aclose()

    # -------------------------------------------------------------- messages
    async def handle(
        self, room: LiveRoom, participant: Participant, message: ClientMessage
    ) -> bool:
        if not isinstance(message, _RECORDING_MESSAGES):
            return False
        try:
            await self._handle(room, participant, message)
        except (ConsentError, MediaError) as exc:
            await self._messenger.send(
                participant, Error(code=ErrorCode.NOT_ALLOWED, message=str(exc))
            )
        except OSError as exc:
            # Never leave people looking at a stale indicator: stop, say so, tell everyone.
            logger.exception("room %s: recording files could not be written", room.id)
            session = self._sessions.get(room.id)
            if session is not None and session.state is not RecordingState.STOPPED:
                await self._after(room, session, await session.stop("the server could not write"))
            await self._messenger.send(
                participant,
                Error(
                    code=ErrorCode.MEDIA_UNAVAILABLE,
                    message=f"Recording stopped: the server could not write its files ({exc}).",
                ),
            )
        return True

    async def _handle(
        self,
        room: LiveRoom,
        me: Participant,
        message: RecordStart | RecordStop | RecordConsent | RecordDecline,
    ) -> None:
        if isinstance(message, RecordStart | RecordStop) and not me.role.can_moderate:
            raise ConsentError("Only the counselor can start or stop recording.")
        session = self._sessions.get(room.id)
        if isinstance(message, RecordStart):
            if session is None:
                session = self._new_session(room)
            present = [p.id for p in room.in_room()]
            transition = await session.start(me.id, present)
            await self._after(room, session, transition)
            await self._ask(room, session, session.consent.pending)
            return
        if session is None:
            raise ConsentError("No recording has been requested in this consultation.")
        if isinstance(message, RecordStop):
            await self._after(room, session, await session.stop(me.id))
        elif isinstance(message, RecordConsent):
            await self._after(room, session, await session.agree(me.id))
        else:
            await self._after(room, session, await session.decline(me.id))

    # -------------------------------------------------------------- internals
    def _new_session(self, room: LiveRoom) -> RecordingSession:
        media = self._media.get(room.id)
        if media is None:
            raise MediaError(f"room {room.id} has no media on this node")
        directory = session_directory(self._data_dir, room.id)
        session = RecordingSession(room.id, room.id, directory, media.packets)
        for publication in room.media.publications():
            session.add_publication(publication.id, publication.participant_id, publication.kind)
        self._sessions[room.id] = session
        return session

    async def _ask(
        self, room: LiveRoom, session: RecordingSession, participant_ids: list[str]
    ) -> None:
        requested_by = session.consent.requested_by or ""
        for pid in participant_ids:
            participant = room.participants.get(pid)
            if participant is not None:
                await self._messenger.send(
                    participant, RecordConsentRequest(requested_by=requested_by)
                )

    async def _after(
        self, room: LiveRoom, session: RecordingSession, transition: Transition | None
    ) -> None:
        """Everyone's indicator follows every transition; pending answers change it too."""
        reason = transition.reason if transition is not None else ""
        if transition is not None:
            logger.info(
                "room %s: recording %s -> %s (%s)",
                room.id,
                transition.old.value,
                transition.new.value,
                transition.reason,
            )
        await self._messenger.broadcast(room, self._indicator(session, reason))

    @staticmethod
    def _indicator(session: RecordingSession, reason: str) -> RecordIndicator:
        return RecordIndicator(
            state=session.state.value,
            requested_by=session.consent.requested_by,
            pending=session.consent.pending,
            reason=reason,
        )
