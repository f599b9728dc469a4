"""Live captions in a room: taps each speaker's audio into the caption pipeline.

Composition-root glue (like ``web.room_recording``): ``signaling`` knows nothing of
speech and ``interpretation`` nothing of rooms; this extension joins them, and
:func:`to_wire` is the one place a pipeline's ``CaptionEvent`` becomes the wire's
``signaling.protocol.Caption`` (a member of the ``ServerMessage`` union).

Ownership::

    CaptionsExtension        TaskSet "captions": "stop R:P" (a participant left),
                             "restart R:P" (captions failed), "close room R" (at aclose)
      _RoomCaptions (R)      the room's CaptionPipeline (CaptionService closes it)
        _Speaking (P)        the audio tap feeding speaker P's captions

When a speaker's captions fail (the tap raised, recognition raised or stalled),
the pipeline logs it with room and speaker and shows the speaker as ``FAILED``;
this extension then restarts that speaker once per publication, with a new tap
(what they said before the failure is already stored). If it fails again, their
tap is closed and the pipeline keeps showing ``FAILED`` with the error; captions
for them come back when they publish audio again.

Honest states: after every change (someone enters or leaves, publishes, picks a
caption language, fails, an interpreter switches mode) everyone in the room gets
``caption_status``: per speaker whether their speech is captioned here (``live``,
``no_model``, ``failed``, ``off``) and, for every spoken language and caption
language in the room, whether a translation route exists (from the service's
:class:`~interpretation.coverage.Coverage`). Each final settles (see
:mod:`interpretation.events`), so no page waits for a translation that will not come.

An interpreter in channel mode is captioned in the language they speak into,
labelled as interpretation (``web.room_interpretation`` says which).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Final, Protocol

from interpretation.errors import InterpretationError, SpeakerFailed
from interpretation.events import CaptionEvent
from interpretation.pipeline import CaptionPipeline
from interpretation.service import CaptionService
from interpretation.speaker import SpeakerState
from kernel.languages import Language
from kernel.media_types import PublicationRef
from kernel.taskset import TaskSet
from media.errors import MediaError
from media.forwarding import AudioTap
from signaling.extensions import RoomMessenger
from signaling.live import LiveRoom, Participant
from signaling.protocol import (
    Caption,
    CaptionRoute,
    CaptionSpeaker,
    CaptionStatus,
    ClientMessage,
    SetCaptionLanguage,
    SpeakerCaptionState,
)

log = logging.getLogger(__name__)

#: How long a room closed because this node lets go (not ended) waits for its last finals.
LETTING_GO_FLUSH_S = 0.5

#: How many times a failed speaker's captions are started again (per publication).
MAX_RESTARTS: Final = 1


def to_wire(event: CaptionEvent) -> Caption:
    """The pipeline's caption as the wire's ``caption`` message."""
    return Caption(
        id=event.id,
        speaker_id=event.speaker_id,
        speaker_name=event.speaker_name,
        language=event.language,
        text=event.text,
        final=event.final,
        start=event.start,
        end=event.end,
        ts=event.ts,
        translations=dict(event.translations),
        speaker_role=event.speaker_role,
        kind=event.kind,
        pending=list(event.pending),
        untranslated={lang: reason.value for lang, reason in event.untranslated.items()},
    )


class TapSource(Protocol):
    def audio_tap(self, publication_id: str) -> AudioTap: ...


class MediaRooms(Protocol):
    """Where audio taps come from (``web.media_rooms.SfuRooms``)."""

    def get(self, room_id: str) -> TapSource | None: ...


class Speaking(Protocol):
    """Which language someone speaks now (``web.room_interpretation``)."""

    def speaking(self, room_id: str, participant: Participant) -> tuple[Language, bool]: ...


class _OwnLanguage:
    def speaking(self, room_id: str, participant: Participant) -> tuple[Language, bool]:
        return participant.claims.language, False


@dataclass
class _RoomSink:
    """Caption events to everyone in one room."""

    messenger: RoomMessenger
    room: LiveRoom

    async def publish(self, event: CaptionEvent) -> None:
        await self.messenger.broadcast(self.room, to_wire(event))


@dataclass(eq=False)
class _Speaking:
    publication_id: str
    tap: AudioTap
    restarts: int = 0


@dataclass(eq=False)
class _RoomCaptions:
    room: LiveRoom
    pipeline: CaptionPipeline
    speaking: dict[str, _Speaking] = field(default_factory=dict)
    #: each participant's audio publication, captioned or not (someone whose language
    #: has no speech model now may speak one that has after an interpreter's switch)
    audio: dict[str, str] = field(default_factory=dict)
    #: serialises starting and stopping speakers (hooks, restarts, stops)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False


class CaptionsExtension:
    """``signaling.extensions.RoomExtension``: live captions in every room of this node.

    Each participant's caption language starts as their own language and changes
    with a ``caption_language`` message. Stopping a speaker (which waits for the
    last final) runs in an owned task, so the room's lock is never held for it.
    """

    def __init__(
        self,
        service: CaptionService,
        messenger: RoomMessenger,
        media: MediaRooms,
        *,
        speaking: Speaking | None = None,
    ) -> None:
        self._service = service
        self._messenger = messenger
        self._media = media
        self._speaking = speaking or _OwnLanguage()
        self._rooms: dict[str, _RoomCaptions] = {}
        self._tasks = TaskSet("captions")
        self._closing = False

    def task_names(self) -> list[str]:
        return self._tasks.names()

    def pipeline(self, room_id: str) -> CaptionPipeline | None:
        rc = self._rooms.get(room_id)
        return rc.pipeline if rc is not None else None

    # -- RoomExtension -------------------------------------------------------

    async def room_opened(self, room: LiveRoom) -> None:
        room_id = room.id

        def on_speaker_failed(participant_id: str, error: SpeakerFailed) -> None:
            self._speaker_failed(room_id, participant_id, error)

        pipeline = self._service.pipeline(
            room.id, _RoomSink(self._messenger, room), on_speaker_failed=on_speaker_failed
        )
        self._rooms[room.id] = _RoomCaptions(room, pipeline)

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None:
        rc = self._rooms.get(room.id)
        if rc is not None:
            rc.pipeline.set_listener_language(participant.id, participant.claims.language)
            await self._announce(rc)

    async def publication_added(self, room: LiveRoom, publication: PublicationRef) -> None:
        rc = self._rooms.get(room.id)
        participant = room.participants.get(publication.participant_id)
        if rc is None or participant is None or publication.kind != "audio":
            return
        async with rc.lock:
            rc.audio[participant.id] = publication.id
            await self._stop_speaker(rc, participant.id)
            if not rc.closed:
                await self._start_speaker(rc, participant, publication.id, restarts=0)
        await self._announce(rc)

    async def participant_left(self, room: LiveRoom, participant: Participant) -> None:
        rc = self._rooms.get(room.id)
        if rc is None:
            return
        rc.pipeline.remove_listener(participant.id)
        rc.audio.pop(participant.id, None)
        if not self._closing:
            leaving = rc.speaking.get(participant.id)
            self._tasks.spawn(
                self._stop_locked(rc, participant.id, leaving),
                name=f"stop {room.id}:{participant.id}",
            )
            await self._announce(rc)

    async def room_closed(self, room: LiveRoom, *, final: bool) -> None:
        """A node letting go (a stop, a move) waits little for the last finals; the
        consultation goes on elsewhere and a stop must take seconds."""
        rc = self._rooms.pop(room.id, None)
        if rc is not None:
            await self._close_room(rc, flush_s=None if final else LETTING_GO_FLUSH_S)

    async def handle(
        self, room: LiveRoom, participant: Participant, message: ClientMessage
    ) -> bool:
        if not isinstance(message, SetCaptionLanguage):
            return False
        rc = self._rooms.get(room.id)
        if rc is not None:
            rc.pipeline.set_listener_language(participant.id, message.language)
            await self._announce(rc)
        return True

    async def speaking_changed(self, room: LiveRoom, participant: Participant) -> None:
        """An interpreter switched mode: caption them afresh in what they speak now.

        Called under the room's lock: the restart (which waits for the last final)
        runs in an owned task.
        """
        rc = self._rooms.get(room.id)
        if rc is None or rc.closed or self._closing:
            return
        self._tasks.spawn(
            self._respeak(rc, participant.id), name=f"respeak {room.id}:{participant.id}"
        )

    async def _respeak(self, rc: _RoomCaptions, participant_id: str) -> None:
        async with rc.lock:
            publication_id = rc.audio.get(participant_id)
            participant = rc.room.participants.get(participant_id)
            if publication_id is not None:
                # captioned before or not (no model for the language they spoke till now)
                await self._stop_speaker(rc, participant_id)
                if participant is not None and not rc.closed:
                    await self._start_speaker(rc, participant, publication_id, restarts=0)
        await self._announce(rc)

    # -- honest states -------------------------------------------------------

    async def status(self, room: LiveRoom) -> CaptionStatus | None:
        rc = self._rooms.get(room.id)
        return await self._status(rc) if rc is not None else None

    async def _status(self, rc: _RoomCaptions) -> CaptionStatus:
        coverage = await self._service.coverage()
        speakers: list[CaptionSpeaker] = []
        for p in rc.room.in_room():
            if not p.role.publishes:
                continue
            language, _ = self._speaking.speaking(rc.room.id, p)
            status = rc.pipeline.status(p.id)
            state: SpeakerCaptionState
            if not coverage.has_speech(language):
                state = "no_model"
            elif status is not None and status.state is SpeakerState.FAILED:
                state = "failed"
            elif p.id in rc.speaking:
                state = "live"
            else:
                state = "off"
            speakers.append(CaptionSpeaker(participant_id=p.id, language=language, state=state))
        targets = rc.pipeline.caption_languages
        routes = [
            CaptionRoute(source=s, target=t, route=route.value)
            for s, t, route in coverage.routes({sp.language for sp in speakers}, targets)
        ]
        return CaptionStatus(
            speakers=speakers,
            routes=routes,
            translation_bound_s=self._service.limits.translation_s,
        )

    async def _announce(self, rc: _RoomCaptions) -> None:
        """Tell everyone in the room what captions can do now (never raises)."""
        if rc.closed:
            return
        try:
            await self._messenger.broadcast(rc.room, await self._status(rc))
        except InterpretationError as exc:
            log.warning("room %s: caption status not sent: %s", rc.room.id, exc)

    async def aclose(self) -> None:
        """Close every room's captions (concurrently, each bounded), then every task."""
        self._closing = True
        rooms = list(self._rooms.values())
        self._rooms.clear()
        try:
            closes = [
                self._tasks.spawn(self._close_room(rc), name=f"close room {rc.room.id}")
                for rc in rooms
            ]
            if closes:
                await asyncio.wait(closes)
        finally:
            await self._tasks.aclose()

    # -- speakers ------------------------------------------------------------

    async def _start_speaker(
        self, rc: _RoomCaptions, participant: Participant, publication_id: str, *, restarts: int
    ) -> None:
        """Tap ``publication_id`` into the pipeline. Caller holds ``rc.lock``."""
        media = self._media.get(rc.room.id)
        try:
            if media is None:
                raise MediaError(f"room {rc.room.id} has no media on this node")
            tap = media.audio_tap(publication_id)
        except MediaError as exc:
            log.warning("room %s participant %s: no audio tap: %s", rc.room.id, participant.id, exc)
            return
        claims = participant.claims
        language, interpreting = self._speaking.speaking(rc.room.id, participant)
        try:
            started = rc.pipeline.start_speaker(
                participant.id,
                claims.name,
                language,
                tap.chunks(),
                role=participant.role,
                kind="interpretation" if interpreting else "speech",
            )
        except InterpretationError:
            await tap.aclose()
            raise
        if started:
            rc.speaking[participant.id] = _Speaking(publication_id, tap, restarts)
        else:
            await tap.aclose()

    async def _stop_speaker(self, rc: _RoomCaptions, participant_id: str) -> None:
        """Stop the speaker's captions (bounded), then close their tap."""
        speaking = rc.speaking.pop(participant_id, None)
        try:
            await rc.pipeline.stop_speaker(participant_id)
        finally:
            if speaking is not None:
                await speaking.tap.aclose()

    async def _stop_locked(
        self, rc: _RoomCaptions, participant_id: str, leaving: _Speaking | None
    ) -> None:
        async with rc.lock:
            if rc.speaking.get(participant_id) is leaving:  # not replaced by a rejoin since
                await self._stop_speaker(rc, participant_id)

    def _speaker_failed(self, room_id: str, participant_id: str, error: SpeakerFailed) -> None:
        """From the pipeline (sync): restart the speaker once, or give up on them."""
        rc = self._rooms.get(room_id)
        if rc is None or rc.closed or self._closing:
            return
        speaking = rc.speaking.get(participant_id)
        if speaking is None:
            return
        if speaking.restarts >= MAX_RESTARTS:
            log.error(
                "room %s participant %s: captions stay off after %d restart(s) (%s); "
                "they come back when the participant publishes audio again",
                room_id,
                participant_id,
                speaking.restarts,
                error,
            )
            self._tasks.spawn(
                self._give_up(rc, participant_id, speaking),
                name=f"give up {room_id}:{participant_id}",
            )
            return
        self._tasks.spawn(
            self._restart(rc, participant_id, speaking),
            name=f"restart {room_id}:{participant_id}",
        )

    async def _restart(self, rc: _RoomCaptions, participant_id: str, failed: _Speaking) -> None:
        async with rc.lock:
            if rc.speaking.get(participant_id) is not failed:
                return  # replaced or stopped meanwhile
            await self._stop_speaker(rc, participant_id)
            participant = rc.room.participants.get(participant_id)
            if rc.closed or participant is None:
                return
            log.warning(
                "room %s participant %s: restarting captions (%d of %d)",
                rc.room.id,
                participant_id,
                failed.restarts + 1,
                MAX_RESTARTS,
            )
            await self._start_speaker(
                rc, participant, failed.publication_id, restarts=failed.restarts + 1
            )

    async def _give_up(self, rc: _RoomCaptions, participant_id: str, failed: _Speaking) -> None:
        """Close the tap of a speaker that failed for good; the pipeline keeps the FAILED state."""
        async with rc.lock:
            if rc.speaking.get(participant_id) is failed:
                del rc.speaking[participant_id]
                await failed.tap.aclose()
        await self._announce(rc)

    async def _close_room(self, rc: _RoomCaptions, *, flush_s: float | None = None) -> None:
        rc.closed = True
        try:
            await self._service.close_pipeline(rc.room.id, flush_s=flush_s)
        finally:
            taps = [s.tap for s in rc.speaking.values()]
            rc.speaking.clear()
            for tap in taps:
                try:
                    await tap.aclose()
                except Exception:
                    log.exception("room %s: closing an audio tap failed", rc.room.id)
