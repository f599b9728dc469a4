"""Recording with consent in a room: the signaling side of ``media.recorder``.

A ``RoomExtension`` (composition-root glue): the counselor asks, every participant
in the room is asked to consent (a late joiner on entry), nothing is written until
all have agreed, a decline stops it, and everyone sees the indicator.

The live state is in the ``RecordingStateStore`` (Redis): when this node opens a
room whose recording was running (a restart, a move from another node), the
session is restored and goes on in a new segment; everyone who (re)enters gets
the indicator. ``room_closed(final=False)`` finishes the files and keeps the
state; ``final=True`` stops the recording and forgets it. A failed write stops
the recording: every page's indicator says so (``error_code``) and the
counselor gets an ``error`` with ``media_unavailable``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kernel.media_types import PublicationRef
from media.consent import ConsentError, RecordingState, Transition
from media.errors import MediaError
from media.recorder import (
    FAILED_REASON,
    RecordingSession,
    RecordingWriteError,
    session_directory,
)
from media.recording_files import RecordingStorage
from media.recording_model import RecordingStateStore
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
from web.audit import AuditAction, AuditLog
from web.media_rooms import SfuRooms

logger = logging.getLogger(__name__)

_RECORDING_MESSAGES = (RecordStart, RecordStop, RecordConsent, RecordDecline)
_ACTIVE = (RecordingState.ASKING, RecordingState.RECORDING, RecordingState.PAUSED)
ENDED_REASON = "the consultation ended"


class RoomRecording:
    """One ``RecordingSession`` per live room: restored on open, or made when first asked."""

    def __init__(
        self,
        data_dir: Path,
        messenger: RoomMessenger,
        media: SfuRooms,
        *,
        store: RecordingStateStore | None = None,
        storage: RecordingStorage | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._audit = audit
        self._messenger = messenger
        self._media = media
        self._store = store
        #: how files are written; tests swap in one that fails on purpose
        self.storage = storage or RecordingStorage()
        self._sessions: dict[str, RecordingSession] = {}
        self._rooms: dict[str, LiveRoom] = {}

    def session(self, room_id: str) -> RecordingSession | None:
        return self._sessions.get(room_id)

    # ------------------------------------------------------------ room hooks
    async def room_opened(self, room: LiveRoom) -> None:
        self._rooms[room.id] = room
        if self._store is None:
            return
        snapshot = await self._store.load(room.id)
        if snapshot is None:
            return
        if snapshot.state not in _ACTIVE and snapshot.failure is None:
            return  # over: nothing to go on with, nothing staff must still be told
        session = self._new_session(room)
        await session.load()
        logger.info("room %s: recording restored (%s)", room.id, session.state.value)

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None:
        session = self._sessions.get(room.id)
        if session is None or session.state is RecordingState.IDLE:
            # Said all the same: a page that comes back must not go on showing what it
            # saw before (a recording that stopped while the room closed on its node).
            await self._messenger.send(participant, RecordIndicator(state="idle"))
            return
        self._introduce(session, participant)
        await self._after(room, session, await session.join(participant.id))
        failure = self._stopped_by(session)
        if participant.role.can_moderate and failure is not None:
            # Told again to staff who come (back) in: a page that reconnected may have
            # missed it on the socket it left, and it is what the counselor can act on.
            # Before the indicator, in the order the failure itself sends them.
            await self._messenger.send(participant, self._failure_error(failure))
        await self._messenger.send(participant, self._indicator(session))
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
        self._rooms.pop(room.id, None)
        session = self._sessions.pop(room.id, None)
        if final:
            if session is not None:
                await session.finish(ENDED_REASON)
            elif self._store is not None:
                await self._store.delete(room.id)
        elif session is not None:
            await session.release()

    async def aclose(self) -> None:
        """The server stops: let go of every room (the state stays for the next start)."""
        self._rooms.clear()
        for room_id in list(self._sessions):
            await self._sessions.pop(room_id).release()

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
        except OSError as exc:  # the recording directory cannot even be read
            logger.exception("room %s: recording files could not be read", room.id)
            await self._messenger.send(
                participant,
                Error(
                    code=ErrorCode.MEDIA_UNAVAILABLE,
                    message=f"Recording is not possible: the server cannot use its files ({exc}).",
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
            present = room.in_room()
            for participant in present:
                self._introduce(session, participant)
            transition = await session.start(me.id, [p.id for p in present])
            await self._note(room, me, AuditAction.CONSENT_AGREED, asked=True)
            await self._after(room, session, transition)
            await self._ask(room, session, session.consent.pending)
            return
        if session is None:
            raise ConsentError("No recording has been requested in this consultation.")
        if isinstance(message, RecordStop):
            await self._after(room, session, await session.stop(me.id))
        elif isinstance(message, RecordConsent):
            agreed = await session.agree(me.id)
            await self._note(room, me, AuditAction.CONSENT_AGREED)
            await self._after(room, session, agreed)
        else:
            declined = await session.decline(me.id)
            await self._note(room, me, AuditAction.CONSENT_DECLINED)
            await self._after(room, session, declined)

    async def _note(
        self, room: LiveRoom, me: Participant, action: AuditAction, **detail: bool
    ) -> None:
        """The answer in the audit log (the manifest's consent log keeps it too)."""
        if self._audit is None:
            return
        try:
            await self._audit.note(
                action, me.id, role=me.role.value, source="socket", target=room.id, **detail
            )
        except Exception:
            logger.exception("room %s: consent of %s not written to the audit log", room.id, me.id)

    # -------------------------------------------------------------- internals
    def _new_session(self, room: LiveRoom) -> RecordingSession:
        media = self._media.get(room.id)
        if media is None:
            raise MediaError(f"room {room.id} has no media on this node")
        directory = session_directory(self._data_dir, room.id)
        room_id = room.id

        async def on_failure(error: RecordingWriteError, transition: Transition | None) -> None:
            await self._failed(room_id, error, transition)

        session = RecordingSession(
            room.id,
            room.id,
            directory,
            media.packets,
            store=self._store,
            storage=self.storage,
            on_failure=on_failure,
        )
        for publication in room.media.publications():
            session.add_publication(publication.id, publication.participant_id, publication.kind)
        self._sessions[room.id] = session
        return session

    @staticmethod
    def _introduce(session: RecordingSession, participant: Participant) -> None:
        session.introduce(participant.id, name=participant.claims.name, role=participant.role.value)

    async def _failed(
        self, room_id: str, error: RecordingWriteError, transition: Transition | None
    ) -> None:
        """A write failed and the session stopped: the counselor is told why, everyone sees it."""
        room, session = self._rooms.get(room_id), self._sessions.get(room_id)
        if room is None or session is None:
            return
        logger.error("room %s: recording stopped after a failed write: %s", room_id, error)
        for participant in room.in_room():
            if participant.role.can_moderate:
                await self._messenger.send(participant, self._failure_error(error))
        reason = transition.reason if transition is not None else FAILED_REASON
        await self._messenger.broadcast(room, self._indicator(session, reason))

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
        reason = transition.reason if transition is not None else None
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
    def _stopped_by(session: RecordingSession) -> RecordingWriteError | None:
        """The failed write that stopped the session, if that is why it is stopped."""
        if session.state is RecordingState.STOPPED:
            return session.failure
        return None

    @staticmethod
    def _failure_error(error: RecordingWriteError) -> Error:
        return Error(
            code=ErrorCode.MEDIA_UNAVAILABLE,
            message=(
                "Recording stopped: the server could not write its files "
                f"({error}). What was written up to now is kept."
            ),
        )

    @classmethod
    def _indicator(cls, session: RecordingSession, reason: str | None = None) -> RecordIndicator:
        """The state as everyone should show it; ``reason`` is the transition's, if one.

        Without a transition (someone joined, a page came back) a stopped recording goes on
        saying who or what stopped it: a page must not lose "stopped by …" because another
        page reconnected.
        """
        if reason is None:
            stopped = session.state is RecordingState.STOPPED
            reason = (session.consent.stop_reason or "") if stopped else ""
        failed = cls._stopped_by(session) is not None
        return RecordIndicator(
            state=session.state.value,
            requested_by=session.consent.requested_by,
            pending=session.consent.pending,
            reason=reason,
            error_code=ErrorCode.MEDIA_UNAVAILABLE if failed else None,
        )
