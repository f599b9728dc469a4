"""REST for privacy, admins only: the audit log, the retention purge, subject requests.

* ``GET /api/audit`` — entries newest first (``?action=``, ``?target=``, ``?before=``,
  ``?limit=``); ``GET /api/audit/verify`` — the chain checked end to end;
* ``POST /api/privacy/purge`` — run the retention purge now (``{"dry_run": true}`` only
  counts);
* ``GET``/``DELETE /api/privacy/consultations/{room_id}`` — export everything held
  about one consultation, or delete it early. Both are audited.

Routes are in the one route table (``web.routes``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from interpretation.service import TRANSCRIPT_KEY_FILE
from interpretation.transcript import TranscriptStore, load_or_create_key
from kernel.roles import Role
from scheduler.booking_store import BookingStore
from web.appkeys import AUDIT, CAPTIONS, PRIVACY, RECORDING, REDIS, ROOMS, SETTINGS, SIGNALING
from web.audit import AuditAction, AuditPage, ChainCheck
from web.auth import require_staff
from web.endpoints import AUDIT_DETAIL, Access, Endpoint
from web.http_errors import raise_error
from web.http_json import json_body, query_params
from web.privacy_services import Privacy
from web.retention import TRANSCRIPTS_DIR, Purger, PurgeReport, RetentionPolicy, RetentionTask
from web.room_identity import RoomIdentity
from web.subject import (
    ConsultationDeleted,
    ConsultationExport,
    ConsultationRecords,
    SubjectError,
)


async def privacy_ctx(app: web.Application) -> AsyncIterator[None]:
    """The identity check in rooms, the scheduled purge, subject requests.

    Runs after the captions' context (it writes identity checks into their transcripts).
    """
    settings, redis, audit = app[SETTINGS], app[REDIS], app[AUDIT]
    captions = app.get(CAPTIONS)
    if captions is not None:
        transcripts = captions.transcripts
    else:
        key = await asyncio.to_thread(load_or_create_key, settings.data_dir / TRANSCRIPT_KEY_FILE)
        transcripts = TranscriptStore(settings.data_dir / TRANSCRIPTS_DIR, key)
    purger = Purger(settings.data_dir, redis, RetentionPolicy.from_settings(settings), audit=audit)
    retention = RetentionTask(
        purger, redis, interval_s=settings.purge_interval_s, node_id=settings.resolved_node_id
    )
    signaling = app[SIGNALING]
    identity = RoomIdentity(
        redis,
        signaling.messenger,
        rooms=app[ROOMS],
        bookings=BookingStore(redis),
        audit=audit,
        transcripts=transcripts,
    )
    records = ConsultationRecords(
        settings.data_dir,
        redis,
        storage=app[RECORDING].storage,
        transcripts=transcripts,
        audit=audit,
    )
    app[PRIVACY] = Privacy(purger, retention, records, identity)
    signaling.register(identity)
    retention.start()
    try:
        yield
    finally:
        signaling.unregister(identity)
        await retention.aclose()


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str | None = Field(default=None, description="only this action, e.g. consent.agreed")
    target: str | None = Field(default=None, description="only entries about this room or staff id")
    before: str | None = Field(default=None, description="entries older than this id (paging)")
    limit: int = Field(default=100, ge=1, le=1000)


class PurgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=True, description="only count what would go")


async def audit_page(request: web.Request) -> AuditPage:
    query = query_params(request, AuditQuery)
    return await request.app[AUDIT].page(
        before=query.before, limit=query.limit, action=query.action, target=query.target
    )


async def audit_verify(request: web.Request) -> ChainCheck:
    return await request.app[AUDIT].verify()


async def purge(request: web.Request) -> PurgeReport:
    body = await json_body(request, PurgeRequest)
    claims = require_staff(request, Role.ADMIN)
    return await request.app[PRIVACY].purger.run(
        dry_run=body.dry_run, actor=claims.username, source=request.remote or ""
    )


async def export_consultation(request: web.Request) -> ConsultationExport:
    try:
        return await request.app[PRIVACY].records.export(request.match_info["room_id"])
    except SubjectError as exc:
        raise_error(exc.status, exc.code, str(exc))


async def delete_consultation(request: web.Request) -> ConsultationDeleted:
    try:
        report = await request.app[PRIVACY].records.delete(request.match_info["room_id"])
    except SubjectError as exc:
        raise_error(exc.status, exc.code, str(exc))
    request[AUDIT_DETAIL] = report.model_dump(exclude={"room_id"})
    return report


_ADMIN = (Role.ADMIN,)

ENDPOINTS = (
    Endpoint("GET", "/api/audit", audit_page, "Audit log entries, newest first", "privacy",
             query=AuditQuery, response=AuditPage, access=Access.STAFF, roles=_ADMIN),
    Endpoint("GET", "/api/audit/verify", audit_verify, "Check the audit log's chain", "privacy",
             response=ChainCheck, access=Access.STAFF, roles=_ADMIN),
    Endpoint("POST", "/api/privacy/purge", purge, "Run the retention purge (or count it)",
             "privacy", request=PurgeRequest, response=PurgeReport, access=Access.STAFF,
             roles=_ADMIN),
    Endpoint("GET", "/api/privacy/consultations/{room_id}", export_consultation,
             "Everything held about one consultation (subject access)", "privacy",
             response=ConsultationExport, access=Access.STAFF, roles=_ADMIN, errors=(404, 503),
             audit=AuditAction.SUBJECT_EXPORT, audit_target="room_id"),
    Endpoint("DELETE", "/api/privacy/consultations/{room_id}", delete_consultation,
             "Delete one consultation's records early (subject request)", "privacy",
             response=ConsultationDeleted, access=Access.STAFF, roles=_ADMIN,
             errors=(404, 409, 503), audit=AuditAction.SUBJECT_DELETE, audit_target="room_id"),
)  # fmt: skip
