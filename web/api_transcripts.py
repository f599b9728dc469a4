"""Captions in the web app: the service's lifetime, the room extension, and REST.

* :func:`interpretation_ctx` creates the :class:`CaptionService` and registers a
  :class:`CaptionsExtension` with the signaling server, so every room gets live
  captions (audio taps -> recognition -> translation -> ``caption`` messages);
* REST: transcript export (WebVTT/SRT) and the admin glossary.

Wiring (in ``web.app.build_app``, after ``app.cleanup_ctx.append(services)``)::

    from web import api_transcripts
    app.cleanup_ctx.append(api_transcripts.interpretation_ctx)
    api_transcripts.add_routes(app)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from interpretation.errors import InterpretationError
from interpretation.events import CaptionEvent
from interpretation.glossary import Glossary
from interpretation.pipeline import CaptionPipeline
from interpretation.service import CaptionService
from interpretation.transcript import to_srt, to_webvtt
from media.errors import MediaError
from media.forwarding import AudioTap, Publication
from signaling.extensions import RoomMessenger
from signaling.live import LiveRoom, Participant
from signaling.protocol import LANGUAGES, ClientMessage, Role, SetCaptionLanguage
from web.appkeys import SETTINGS
from web.auth import require_staff
from web.http_errors import raise_error, validation_message

CAPTIONS = web.AppKey("captions", CaptionService)


log = logging.getLogger(__name__)


@dataclass
class _RoomSink:
    """Caption events to everyone in one room."""

    messenger: RoomMessenger
    room: LiveRoom

    async def publish(self, event: CaptionEvent) -> None:
        await self.messenger.broadcast(self.room, event)


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

    def __init__(self, service: CaptionService, messenger: RoomMessenger) -> None:
        self._service = service
        self._messenger = messenger
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

    async def publication_added(self, room: LiveRoom, publication: Publication) -> None:
        rc = self._rooms.get(room.id)
        participant = room.participants.get(publication.participant_id)
        if rc is None or participant is None or publication.kind != "audio":
            return
        await self._stop_speaker(rc, participant.id)
        try:
            tap = room.media.forwarder.audio_tap(publication.id)
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

    async def room_closed(self, room: LiveRoom) -> None:
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


async def interpretation_ctx(app: web.Application) -> AsyncIterator[None]:
    """Create the caption service and hook captions into the signaling server.

    Runs after the lead's ``services`` context (it needs ``SIGNALING``); on exit it
    unhooks, closes every pipeline and the service.
    """
    from web.app import SIGNALING  # web.app imports this module: import late

    settings = app[SETTINGS]
    service = await asyncio.to_thread(
        CaptionService,
        settings.data_dir,
        vosk_models=settings.vosk_models,
        packages_dir=settings.argos_packages_dir,
        workers=settings.caption_workers,
    )
    app[CAPTIONS] = service
    signaling = app.get(SIGNALING)
    extension = None
    if signaling is not None:
        extension = CaptionsExtension(service, signaling)
        signaling.extensions.append(extension)
    try:
        yield
    finally:
        if signaling is not None and extension is not None:
            signaling.extensions.remove(extension)
            await extension.aclose()
        await service.aclose()


def _language(request: web.Request) -> str:
    lang = request.query.get("lang", "ko")
    if lang not in LANGUAGES:
        raise_error(400, "bad_language", f"lang must be one of {', '.join(LANGUAGES)}")
    return lang


async def _transcript(request: web.Request, fmt: str) -> web.Response:
    require_staff(request)
    session_id = request.match_info["id"]
    lang = _language(request)
    store = request.app[CAPTIONS].transcripts
    try:
        entries = await asyncio.to_thread(store.entries, session_id)
    except InterpretationError:
        raise_error(404, "unknown_session", f"There is no transcript for session {session_id!r}.")
    if not entries:
        raise_error(404, "unknown_session", f"There is no transcript for session {session_id!r}.")
    if fmt == "vtt":
        body, ctype = to_webvtt(entries, lang), "text/vtt"
    else:
        body, ctype = to_srt(entries, lang), "application/x-subrip"
    return web.Response(
        text=body,
        content_type=ctype,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{session_id}.{lang}.{fmt}"'},
    )


async def transcript_vtt(request: web.Request) -> web.Response:
    return await _transcript(request, "vtt")


async def transcript_srt(request: web.Request) -> web.Response:
    return await _transcript(request, "srt")


async def get_glossary(request: web.Request) -> web.Response:
    require_staff(request)
    glossary = request.app[CAPTIONS].glossary.get()
    return web.json_response(glossary.model_dump(mode="json"))


async def put_glossary(request: web.Request) -> web.Response:
    require_staff(request, Role.ADMIN)
    try:
        glossary = Glossary.model_validate_json(await request.read())
    except ValidationError as exc:
        raise_error(422, "bad_glossary", validation_message(exc))
    await asyncio.to_thread(request.app[CAPTIONS].glossary.replace, glossary)
    return web.json_response(glossary.model_dump(mode="json"))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/sessions/{id}/transcript.vtt", transcript_vtt)
    app.router.add_get("/api/sessions/{id}/transcript.srt", transcript_srt)
    app.router.add_get("/api/glossary", get_glossary)
    app.router.add_put("/api/glossary", put_glossary)
