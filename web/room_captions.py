"""Captions in a room: taps each speaker's audio into the caption pipeline, sends captions out.

Glue owned by the composition root: ``signaling`` knows nothing of speech, and
``interpretation`` nothing of rooms; this extension joins them.
"""

from __future__ import annotations

import logging

from interpretation.events import CaptionEvent
from interpretation.pipeline import CaptionPipeline
from interpretation.service import CaptionService
from media.forwarding import AudioTap, Publication
from signaling.extensions import RoomMessenger
from signaling.live import LiveRoom, Participant
from signaling.protocol import ClientMessage, SetCaptionLanguage

logger = logging.getLogger(__name__)


class _RoomSink:
    def __init__(self, room: LiveRoom, messenger: RoomMessenger) -> None:
        self._room = room
        self._messenger = messenger

    async def publish(self, event: CaptionEvent) -> None:
        await self._messenger.broadcast(self._room, event)


class RoomCaptions:
    """A ``RoomExtension``: one caption pipeline per live room, one audio tap per speaker."""

    def __init__(self, service: CaptionService, messenger: RoomMessenger) -> None:
        self._service = service
        self._messenger = messenger
        self._pipelines: dict[str, CaptionPipeline] = {}
        self._taps: dict[tuple[str, str], AudioTap] = {}

    async def room_opened(self, room: LiveRoom) -> None:
        self._pipelines[room.id] = self._service.pipeline(room.id, _RoomSink(room, self._messenger))

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None:
        pipeline = self._pipelines.get(room.id)
        if pipeline is not None:
            pipeline.set_listener_language(participant.id, participant.claims.language)

    async def publication_added(self, room: LiveRoom, publication: Publication) -> None:
        pipeline = self._pipelines.get(room.id)
        speaker = room.participants.get(publication.participant_id)
        if pipeline is None or speaker is None or publication.kind != "audio":
            return
        key = (room.id, speaker.id)
        if key in self._taps:
            return
        tap = room.media.forwarder.audio_tap(publication.id)
        if pipeline.start_speaker(
            speaker.id, speaker.claims.name, speaker.claims.language, tap.chunks()
        ):
            self._taps[key] = tap
            logger.info(
                "room %s: captioning %s in %s", room.id, speaker.id, speaker.claims.language
            )
        else:
            await tap.aclose()

    async def participant_left(self, room: LiveRoom, participant: Participant) -> None:
        pipeline = self._pipelines.get(room.id)
        if pipeline is not None:
            pipeline.remove_listener(participant.id)
            await pipeline.stop_speaker(participant.id)
        tap = self._taps.pop((room.id, participant.id), None)
        if tap is not None:
            await tap.aclose()

    async def room_closed(self, room: LiveRoom) -> None:
        for key in [k for k in self._taps if k[0] == room.id]:
            await self._taps.pop(key).aclose()
        self._pipelines.pop(room.id, None)
        await self._service.close_pipeline(room.id)

    async def handle(
        self, room: LiveRoom, participant: Participant, message: ClientMessage
    ) -> bool:
        if not isinstance(message, SetCaptionLanguage):
            return False
        pipeline = self._pipelines.get(room.id)
        if pipeline is not None:
            pipeline.set_listener_language(participant.id, message.language)
        return True
