"""Captions in the web app: the service's lifetime, the room extension, and REST.

* :func:`interpretation_ctx` creates the :class:`CaptionService` and registers a
  :class:`CaptionsExtension` with the signaling server, so every room gets live
  captions (audio taps -> recognition -> translation -> ``caption`` messages);
* REST: transcript export (WebVTT/SRT) and the admin glossary.

Wiring (in ``web.app.build_app``, after ``app.cleanup_ctx.append(services)``)::

    from web import api_transcripts
    app.cleanup_ctx.append(api_transcripts.interpretation_ctx)
    # the routes: ``endpoints()`` is part of the one route table, ``web.routes``
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from interpretation.errors import InterpretationError
from interpretation.glossary import Glossary
from interpretation.service import CaptionService
from interpretation.transcript import to_srt, to_webvtt
from signaling.protocol import LANGUAGES, Role
from web.appkeys import CAPTIONS, MEDIA_ROOMS, SETTINGS, SIGNALING
from web.audit import AuditAction
from web.auth import require_staff
from web.endpoints import Access, Endpoint, Param, add_endpoints
from web.http_errors import raise_error
from web.http_json import json_body
from web.room_captions import CaptionsExtension


async def interpretation_ctx(app: web.Application) -> AsyncIterator[None]:
    """Create the caption service and hook captions into the signaling server.

    Runs after the lead's ``services`` context (it needs ``SIGNALING``); on exit it
    unhooks, closes every pipeline and the service.
    """
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
        extension = CaptionsExtension(service, signaling.messenger, app[MEDIA_ROOMS])
        signaling.register(extension)
    try:
        yield
    finally:
        if signaling is not None and extension is not None:
            signaling.unregister(extension)
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
    glossary = await json_body(request, Glossary)
    await asyncio.to_thread(request.app[CAPTIONS].glossary.replace, glossary)
    return web.json_response(glossary.model_dump(mode="json"))


def endpoints() -> list[Endpoint]:
    """This module's entries in the route table (``web.routes``)."""
    session = Param("id", "path", "consultation room id")
    lang = Param("lang", description="language of the captions (default ko)")
    staff, admin = Access.STAFF, (Role.ADMIN,)
    return [
        Endpoint("GET", "/api/sessions/{id}/transcript.vtt", transcript_vtt,
                 "Transcript as WebVTT", "transcripts", params=(session, lang),
                 access=staff, content_type="text/vtt", errors=(400, 404, 503),
                 audit=AuditAction.TRANSCRIPT_DOWNLOAD, audit_target="id",
                 audit_detail=("lang",)),
        Endpoint("GET", "/api/sessions/{id}/transcript.srt", transcript_srt,
                 "Transcript as SubRip", "transcripts", params=(session, lang),
                 access=staff, content_type="application/x-subrip", errors=(400, 404, 503),
                 audit=AuditAction.TRANSCRIPT_DOWNLOAD, audit_target="id",
                 audit_detail=("lang",)),
        Endpoint("GET", "/api/glossary", get_glossary, "The translation glossary",
                 "transcripts", response=Glossary, access=staff),
        Endpoint("PUT", "/api/glossary", put_glossary, "Replace the translation glossary",
                 "transcripts", request=Glossary, response=Glossary, access=staff, roles=admin),
    ]  # fmt: skip


def add_routes(app: web.Application) -> None:
    add_endpoints(app, endpoints())
