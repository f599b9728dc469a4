"""Captions in the web app: the service's lifetime, the room extensions, and REST.

* :func:`interpretation_ctx` creates the :class:`CaptionService` and registers the
  :class:`InterpretationExtension` (interpreters' channels) and a
  :class:`CaptionsExtension` with the signaling server, so every room gets live
  captions (audio taps -> recognition -> translation -> ``caption`` messages) and
  honest ``caption_status``; the start-up log says what is covered;
* REST: what this server covers (``/api/captions/coverage``), transcript export
  (WebVTT/SRT; a language with nothing in it is refused, saying why) and the
  admin glossary.

Wiring (in ``web.app.build_app``, after ``app.cleanup_ctx.append(services)``)::

    from web import api_transcripts
    app.cleanup_ctx.append(api_transcripts.interpretation_ctx)
    # the routes: ``endpoints()`` is part of the one route table, ``web.routes``
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from interpretation.coverage import Coverage, Route
from interpretation.errors import InterpretationError
from interpretation.glossary import Glossary
from interpretation.service import CaptionService
from interpretation.transcript import TranscriptEntry, to_srt, to_webvtt
from kernel.languages import NATIVE_NAMES, Language
from signaling.protocol import LANGUAGES, Role
from web.appkeys import CAPTIONS, MEDIA_ROOMS, SETTINGS, SIGNALING
from web.audit import AuditAction
from web.auth import require_staff
from web.endpoints import Access, Endpoint, Param, add_endpoints
from web.http_errors import raise_error
from web.http_json import json_body
from web.room_captions import CaptionsExtension
from web.room_interpretation import InterpretationExtension

log = logging.getLogger(__name__)


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
    log.info("captions coverage: %s", (await service.coverage()).summary())
    signaling = app.get(SIGNALING)
    extension = None
    channels = None
    if signaling is not None:
        channels = InterpretationExtension(signaling.messenger)
        extension = CaptionsExtension(
            service, signaling.messenger, app[MEDIA_ROOMS], speaking=channels
        )
        channels.on_speaking_changed = extension.speaking_changed
        signaling.register(channels)
        signaling.register(extension)
    try:
        yield
    finally:
        if signaling is not None and extension is not None and channels is not None:
            signaling.unregister(extension)
            signaling.unregister(channels)
            await extension.aclose()
            await channels.aclose()
        await service.aclose()


class LanguageCoverage(BaseModel):
    """One spoken language: live captions here, and the route into each other language."""

    language: Language
    name: str
    speech: bool = Field(description="a speech model is installed: live captions of this speech")
    translation: dict[Language, Literal["direct", "pivot", "none"]] = Field(
        description="how its captions reach readers of each other language"
    )


class CoverageReport(BaseModel):
    """What this server can caption and translate, language by language."""

    languages: list[LanguageCoverage]
    packages: list[str] = Field(description="installed translation packages, as 'ko->en'")
    summary: str


def coverage_report(coverage: Coverage) -> CoverageReport:
    rows = []
    for lang in LANGUAGES:
        routes: dict[Language, Literal["direct", "pivot", "none"]] = {}
        for other in LANGUAGES:
            if other != lang:
                route = coverage.route(lang, other)
                routes[other] = "none" if route is Route.SAME else route.value  # type: ignore[assignment]
        rows.append(
            LanguageCoverage(
                language=lang,
                name=NATIVE_NAMES[lang],
                speech=coverage.has_speech(lang),
                translation=routes,
            )
        )
    return CoverageReport(
        languages=rows,
        packages=[f"{a}->{b}" for a, b in sorted(coverage.pairs)],
        summary=coverage.summary(),
    )


async def get_coverage(request: web.Request) -> CoverageReport:
    return coverage_report(await request.app[CAPTIONS].coverage())


async def healthz_captions(app: web.Application) -> dict[str, object]:
    """The coverage part of ``/healthz``: spoken languages captioned, routes installed."""
    coverage = await app[CAPTIONS].coverage()
    return {
        "speech": sorted(coverage.speech),
        "translation": sorted(
            f"{s}->{t}" for s, t, r in coverage.routes(LANGUAGES, LANGUAGES) if r is not Route.NONE
        ),
    }


def _language(request: web.Request) -> str:
    lang = request.query.get("lang", "ko")
    if lang not in LANGUAGES:
        raise_error(400, "bad_language", f"lang must be one of {', '.join(LANGUAGES)}")
    return lang


async def _transcript(request: web.Request, fmt: str) -> web.Response:
    require_staff(request)
    session_id = request.match_info["id"]
    lang = _language(request)
    service = request.app[CAPTIONS]
    try:
        entries = await asyncio.to_thread(service.transcripts.entries, session_id)
    except InterpretationError:
        raise_error(404, "unknown_session", f"There is no transcript for session {session_id!r}.")
    if not entries:
        raise_error(
            404,
            "no_transcript",
            f"Nothing was captioned in session {session_id!r}: no one spoke in a language "
            "with a speech model on this server, or captions were off.",
        )
    if not any(e.text_in(lang) for e in entries):
        raise_error(409, "nothing_in_language", await _why_empty(service, entries, lang))
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


async def _why_empty(service: CaptionService, entries: list[TranscriptEntry], lang: str) -> str:
    coverage = await service.coverage()
    spoken = sorted({e.language for e in entries})
    missing = [s for s in spoken if coverage.route(s, lang) is Route.NONE]
    if missing:
        return (
            f"This transcript has no {lang} text: the session was spoken in "
            f"{', '.join(spoken)} and translation from {', '.join(missing)} into {lang} is "
            "not installed (seoulbridge models install FILE.argosmodel). Export it in "
            f"{spoken[0]} instead."
        )
    return (
        f"This transcript has no {lang} text: nobody read captions in {lang} during the "
        f"session, so nothing was translated into it. Export it in {spoken[0]} instead."
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
        Endpoint("GET", "/api/captions/coverage", get_coverage,
                 "What this server captions and translates", "transcripts",
                 response=CoverageReport, access=staff),
        Endpoint("GET", "/api/sessions/{id}/transcript.vtt", transcript_vtt,
                 "Transcript as WebVTT", "transcripts", params=(session, lang),
                 access=staff, content_type="text/vtt", errors=(400, 404, 409, 503),
                 audit=AuditAction.TRANSCRIPT_DOWNLOAD, audit_target="id",
                 audit_detail=("lang",)),
        Endpoint("GET", "/api/sessions/{id}/transcript.srt", transcript_srt,
                 "Transcript as SubRip", "transcripts", params=(session, lang),
                 access=staff, content_type="application/x-subrip", errors=(400, 404, 409, 503),
                 audit=AuditAction.TRANSCRIPT_DOWNLOAD, audit_target="id",
                 audit_detail=("lang",)),
        Endpoint("GET", "/api/glossary", get_glossary, "The translation glossary",
                 "transcripts", response=Glossary, access=staff),
        Endpoint("PUT", "/api/glossary", put_glossary, "Replace the translation glossary",
                 "transcripts", request=Glossary, response=Glossary, access=staff, roles=admin),
    ]  # fmt: skip


def add_routes(app: web.Application) -> None:
    add_endpoints(app, endpoints())
