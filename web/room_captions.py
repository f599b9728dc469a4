"""Live captions in a room: taps each speaker's audio into the caption pipeline.

Composition-root glue (like ``web.room_recording``): ``signaling`` knows nothing of
speech and ``interpretation`` nothing of rooms; this extension joins them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from interpretation.events import CaptionEvent
from interpretation.pipeline import CaptionPipeline
from interpretation.service import CaptionService
from kernel.media_types import PublicationRef
from media.errors import MediaError
from media.forwarding import AudioTap
from signaling.extensions import RoomMessenger
from signaling.live import LiveRoom, Participant
from signaling.protocol import Caption, ClientMessage, SetCaptionLanguage
from web.media_rooms import SfuRooms

log = logging.getLogger(__name__)


def to_wire(event: CaptionEvent) -> Caption:
    """The pipeline's caption as the wire's ``caption`` message."""
    return Caption.model_validate(event.model_dump(exclude={"type", "room_id"}))


@dataclass
class _RoomSink:
    """Caption events to everyone in one room."""

    messenger: RoomMessenger
    room: LiveRoom

    async def publish(self, event: CaptionEvent) -> None:
        await self.messenger.broadcast(self.room, to_wire(event))


@dataclass
class _RoomCaptions:
    pipeline: CaptionPipeline
    taps: dict[str, AudioTap] = field(default_factory=dict)


class CaptionsExtension:
    """``signaling.extensions.RoomExtension``: live captions in every room of this node.

    Each participant's caption language starts as their own language and changes
    with a ``caption_language`` message. Stopping a speaker (which waits for the
    last final) runs in an owned task, so the room's lock is never held for it.
    """

    def __init__(self, service: CaptionService, messenger: RoomMessenger, media: SfuRooms) -> None:
        self._service = service
        self._messenger = messenger
        self._media = media
        self._rooms: dict[str, _RoomCaptions] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def room_opened(self, room: LiveRoom) -> None:
        pipeline = self._service.pipeline(room.id, _RoomSink(self._messenger, room))
        self._rooms[room.id] = _RoomCaptions(pipeline)

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None:
        rc = self._rooms.get(room.id)
        if rc is not None:
            rc.pipeline.set_listener_language(participant.id, participant.claims.language)

    async def publication_added(self, room: LiveRoom, publication: PublicationRef) -> None:
        rc = self._rooms.get(room.id)
        participant = room.participants.get(publication.participant_id)
        if rc is None or participant is None or publication.kind != "audio":
            return
        await self._stop_speaker(rc, participant.id)
        media = self._media.get(room.id)
        try:
            if media is None:
                raise MediaError(f"room {room.id} has no media on this node")
            tap = media.audio_tap(publication.id)
        except MediaError as exc:
            log.warning("room %s participant %s: no audio tap: %s", room.id, participant.id, exc)
            return
        claims = participant.claims
        if rc.pipeline.start_speaker(participant.id, claims.name, claims.language, tap.chunks()):
            rc.taps[participant.id] = tap
        else:
            await tap.aclose()

    async def _stop_speaker(self, rc: _RoomCaptions, participant_id: str) -> None:
        tap = rc.taps.pop(participant_id, None)
        await rc.pipeline.stop_speaker(participant_id)
        if tap is not None:
            await tap.aclose()

    async def participant_left(self, room: LiveRoom, participant: Participant) -> None:
        rc = self._rooms.get(room.id)
        if rc is None:
            return
        rc.pipeline.remove_listener(participant.id)
        self._spawn(
            self._stop_speaker(rc, participant.id), f"captions-stop:{room.id}:{participant.id}"
        )

    async def room_closed(self, room: LiveRoom, *, final: bool) -> None:
        rc = self._rooms.pop(room.id, None)
        if rc is None:
            return
        for participant_id in list(rc.taps):
            await self._stop_speaker(rc, participant_id)
        await self._service.close_pipeline(room.id)

    async def handle(
        self, room: LiveRoom, participant: Participant, message: ClientMessage
    ) -> bool:
        if not isinstance(message, SetCaptionLanguage):
            return False
        rc = self._rooms.get(room.id)
        if rc is not None:
            rc.pipeline.set_listener_language(participant.id, message.language)
        return True

    async def aclose(self) -> None:
        for room_id in list(self._rooms):
            rc = self._rooms.pop(room_id)
            for participant_id in list(rc.taps):
                await self._stop_speaker(rc, participant_id)
            await self._service.close_pipeline(room_id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
