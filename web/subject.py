"""Subject requests: everything held about one consultation, exported or deleted early.

``export(room)`` gathers the room record, its booking (with identity checks), the
transcript (decrypted), the recordings' manifest (people, consent log, files) and the
list of recording files, the chat kept in Redis, the identity checks and every audit
entry about the room — one JSON document for the person who asked (PIPA Art. 35).
Recordings themselves are exported with ``seoulbridge recording export``.

``delete(room)`` destroys it early (Art. 36): the recordings' directory, the
transcript, the chat, the identity checks, the recording state, and the booking's
contact data (the booking's skeleton stays for the calendar's sake, as after the
retention purge). A consultation still live is refused. The audit entries stay: they
hold no personal data and record that the deletion happened.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from interpretation.transcript import TranscriptEntry, TranscriptStore
from media.errors import MediaError
from media.recording_crypto import is_encrypted, key_id_of
from media.recording_files import RecordingStorage, session_directory
from scheduler.booking_store import BookingStore
from scheduler.models import Booking
from signaling.protocol import IdentityVerified, RoomState
from signaling.rooms import RoomDirectory
from web.audit import AuditEntry, AuditLog
from web.recording_store import recording_key
from web.retention import ERASED_TITLE, TRANSCRIPTS_DIR
from web.room_identity import identity_key

_CHAT: Final = "sb:room:{room}:chat"


class SubjectError(Exception):
    """A subject request that cannot be carried out; ``code`` for the page."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class RecordingFileInfo(BaseModel):
    file: str
    bytes: int
    encrypted: bool
    key_id: str | None = None


class ConsultationExport(BaseModel):
    """``GET /api/privacy/consultations/{room_id}``: everything held about one consultation."""

    room_id: str
    exported_at: datetime
    room: dict[str, Any] | None = None
    booking: Booking | None = None
    identity_checks: list[IdentityVerified] = Field(default_factory=list)
    transcript: list[TranscriptEntry] = Field(default_factory=list)
    recording_manifest: dict[str, Any] | None = None
    recording_files: list[RecordingFileInfo] = Field(default_factory=list)
    chat: list[dict[str, Any]] = Field(default_factory=list)
    audit: list[AuditEntry] = Field(default_factory=list)


class ConsultationDeleted(BaseModel):
    """``DELETE /api/privacy/consultations/{room_id}``: what was destroyed (counts)."""

    room_id: str
    recording_files: int = 0
    transcript_lines: int = 0
    chat_lines: int = 0
    identity_checks: int = 0
    booking_contact_erased: bool = False


def _files(directory: Path) -> list[RecordingFileInfo]:
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        sealed = is_encrypted(path)
        try:
            key_id = key_id_of(path) if sealed else None
        except (OSError, MediaError):
            key_id = None
        out.append(
            RecordingFileInfo(
                file=path.name, bytes=path.stat().st_size, encrypted=sealed, key_id=key_id
            )
        )
    return out


class ConsultationRecords:
    def __init__(
        self,
        data_dir: Path,
        redis: aioredis.Redis,
        *,
        storage: RecordingStorage,
        transcripts: TranscriptStore,
        audit: AuditLog,
    ) -> None:
        self._data_dir = data_dir
        self._redis = redis
        self._storage = storage
        self._transcripts = transcripts
        self._audit = audit
        self._rooms = RoomDirectory(redis)
        self._bookings = BookingStore(redis)

    def _directory(self, room_id: str) -> Path:
        try:
            return session_directory(self._data_dir, room_id)
        except MediaError:
            raise SubjectError(422, "invalid_request", f"{room_id!r} is not a room id") from None

    async def _booking(self, booking_id: str | None) -> Booking | None:
        if booking_id is None:
            return None
        found = await self._bookings.get(booking_id)
        return found[0] if found else None

    async def _chat(self, room_id: str) -> list[dict[str, Any]]:
        raw = await self._redis.lrange(_CHAT.format(room=room_id), 0, -1)
        lines = []
        for item in raw:
            try:
                lines.append(json.loads(item))
            except ValueError:
                continue
        return lines

    async def _identity(self, room_id: str) -> list[IdentityVerified]:
        raw = await self._redis.hgetall(identity_key(room_id))
        return sorted(
            (IdentityVerified.model_validate_json(v) for v in raw.values()), key=lambda c: c.at
        )

    async def export(self, room_id: str) -> ConsultationExport:
        directory = self._directory(room_id)
        room = await self._rooms.get(room_id)
        text = await asyncio.to_thread(self._storage.manifest_text, directory)
        transcript = await asyncio.to_thread(self._transcripts.entries, room_id)
        files = await asyncio.to_thread(_files, directory)
        found = ConsultationExport(
            room_id=room_id,
            exported_at=datetime.now(UTC),
            room=room.model_dump(mode="json") if room else None,
            booking=await self._booking(room.booking_id if room else None),
            identity_checks=await self._identity(room_id),
            transcript=transcript,
            recording_manifest=json.loads(text) if text else None,
            recording_files=files,
            chat=await self._chat(room_id),
            audit=await self._audit.about(room_id),
        )
        if room is None and not (text or transcript or files or found.chat or found.audit):
            raise SubjectError(404, "unknown_room", f"Nothing is held about room {room_id!r}.")
        return found

    async def delete(self, room_id: str) -> ConsultationDeleted:
        directory = self._directory(room_id)
        room = await self._rooms.get(room_id)
        if room is not None and room.state in (RoomState.LOBBY, RoomState.LIVE):
            raise SubjectError(
                409,
                "room_live",
                "The consultation is still going on: end it first, then delete its records.",
            )
        report = ConsultationDeleted(room_id=room_id)
        files = await asyncio.to_thread(_files, directory)
        report.recording_files = len(files)
        if directory.is_dir():
            await asyncio.to_thread(shutil.rmtree, directory)
        entries = await asyncio.to_thread(self._transcripts.entries, room_id)
        report.transcript_lines = len(entries)
        transcript = self._data_dir / TRANSCRIPTS_DIR / f"{room_id}.jsonl"
        await asyncio.to_thread(transcript.unlink, True)
        report.chat_lines = int(await self._redis.llen(_CHAT.format(room=room_id)))
        report.identity_checks = int(await self._redis.hlen(identity_key(room_id)))
        await self._redis.delete(
            _CHAT.format(room=room_id), identity_key(room_id), recording_key(room_id)
        )
        if room is not None:
            if room.booking_id is not None:
                report.booking_contact_erased = await self._bookings.erase_contact(
                    room.booking_id, datetime.now(UTC)
                )
            await self._rooms.retitle(room_id, ERASED_TITLE)
        return report
