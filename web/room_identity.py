"""The identity check in a call: a counselor marks the resident as verified, and how.

A ``RoomExtension`` for the ``identity_verify`` message (signaling/PROTOCOL.md,
"Identity check"). Only a counselor or admin in the room may send it, about a
resident in the room. The check is:

* kept in Redis for the room (``sb:room:{room}:identity``, one JSON per resident),
  so a reload, a reconnect or another node shows it again (``identity_verified``
  on entry);
* recorded on the booking the room belongs to (``IdentityCheck``: method, who,
  when, the optional last 2-4 characters) and as a line in the transcript, in
  every language, without the characters;
* written to the audit log (method, who, when; the characters never).

The number itself is never asked for, sent or stored: ``check`` is refused by the
protocol unless it is 2-4 letters or digits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import redis.asyncio as aioredis
from pydantic import ValidationError

from interpretation.transcript import TranscriptEntry, TranscriptStore
from kernel.media_types import PublicationRef
from scheduler.booking_store import BookingStore
from scheduler.errors import SchedulerError
from scheduler.models import IdentityCheck
from signaling.extensions import RoomMessenger
from signaling.live import LiveRoom, Participant
from signaling.protocol import (
    ClientMessage,
    ErrorCode,
    IdentityMethod,
    IdentityVerified,
    IdentityVerify,
    RequestError,
    Role,
)
from signaling.rooms import RoomDirectory
from web.audit import AuditAction, AuditLog

logger = logging.getLogger(__name__)

_KEY: Final = "sb:room:{room}:identity"
#: Kept this long after the last check (longer than any consultation, as admissions).
TTL_S: Final = 3 * 24 * 3600

#: The transcript's line for a check, in each caption language ({method}, {by}).
TRANSCRIPT_LINE: Final = {
    "ko": "본인 확인 완료: {method} (확인: {by})",
    "en": "Identity verified: {method} (checked by {by})",
    "ja": "本人確認済み: {method}（確認者: {by}）",
    "zh": "身份已核实：{method}（核实人：{by}）",
    "ru": "Личность подтверждена: {method} (проверил(а): {by})",
}
METHOD_NAMES: Final = {
    IdentityMethod.MOBILE_ID_CAMERA: {
        "ko": "모바일 신분증(화면 확인)",
        "en": "mobile ID shown on camera",
        "ja": "モバイル身分証（カメラで確認）",
        "zh": "移动身份证（镜头出示）",
        "ru": "мобильное удостоверение (показано на камеру)",
    },
    IdentityMethod.MOBILE_ID_ABROAD: {
        "ko": "재외국민 모바일 신분증",
        "en": "mobile ID for residents abroad",
        "ja": "在外国民モバイル身分証",
        "zh": "海外侨民移动身份证",
        "ru": "мобильное удостоверение для проживающих за рубежом",
    },
    IdentityMethod.FINANCIAL_CERTIFICATE: {
        "ko": "금융인증서",
        "en": "financial certificate",
        "ja": "金融認証書",
        "zh": "金融认证书",
        "ru": "финансовый сертификат",
    },
    IdentityMethod.PASSPORT_CAMERA: {
        "ko": "여권(화면 확인)",
        "en": "passport shown on camera",
        "ja": "旅券（カメラで確認）",
        "zh": "护照（镜头出示）",
        "ru": "паспорт (показан на камеру)",
    },
    IdentityMethod.OTHER: {
        "ko": "기타 방법",
        "en": "another method",
        "ja": "その他の方法",
        "zh": "其他方式",
        "ru": "другой способ",
    },
}


def identity_key(room_id: str) -> str:
    return _KEY.format(room=room_id)


class RoomIdentity:
    """Identity checks of the rooms on this node (state in Redis)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        messenger: RoomMessenger,
        *,
        rooms: RoomDirectory,
        bookings: BookingStore,
        audit: AuditLog,
        transcripts: TranscriptStore | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._messenger = messenger
        self._rooms = rooms
        self._bookings = bookings
        self._audit = audit
        self._transcripts = transcripts
        self._clock = clock

    async def checks(self, room_id: str) -> list[IdentityVerified]:
        raw = await self._redis.hgetall(identity_key(room_id))
        out = []
        for value in raw.values():
            try:
                out.append(IdentityVerified.model_validate_json(value))
            except ValidationError:
                logger.warning("room %s: a stored identity check is unreadable", room_id)
        return sorted(out, key=lambda c: c.at)

    # ------------------------------------------------------------ room hooks
    async def room_opened(self, room: LiveRoom) -> None:
        return None

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None:
        for check in await self.checks(room.id):
            await self._messenger.send(participant, self._for(participant, check))

    async def publication_added(self, room: LiveRoom, publication: PublicationRef) -> None:
        return None

    async def participant_left(self, room: LiveRoom, participant: Participant) -> None:
        return None

    async def room_closed(self, room: LiveRoom, *, final: bool) -> None:
        return None  # kept until its TTL: the booking and the transcript hold the record

    # -------------------------------------------------------------- messages
    async def handle(
        self, room: LiveRoom, participant: Participant, message: ClientMessage
    ) -> bool:
        if not isinstance(message, IdentityVerify):
            return False
        if not participant.role.can_moderate:
            raise RequestError(
                ErrorCode.NOT_ALLOWED, "Only the counselor can mark an identity as verified."
            )
        target = room.participants.get(message.participant_id)
        if target is None or target.role is not Role.RESIDENT:
            raise RequestError(
                ErrorCode.UNKNOWN_PARTICIPANT, "That resident is not in this consultation."
            )
        await self.verify(room, participant, target, message.method, message.check)
        return True

    async def verify(
        self,
        room: LiveRoom,
        by: Participant,
        target: Participant,
        method: IdentityMethod,
        check: str | None,
    ) -> IdentityVerified:
        at = self._clock()
        record = IdentityVerified(
            participant_id=target.id,
            method=method,
            verified_by=by.claims.name,
            verified_by_id=by.id,
            at=at,
            check=check,
        )
        # The audit entry first: a check that cannot be accounted for is not made.
        await self._audit.note(
            AuditAction.IDENTITY_VERIFIED,
            by.id,
            role=by.role.value,
            source="socket",
            target=room.id,
            participant=target.id,
            method=method.value,
            check_noted=check is not None,
        )
        key = identity_key(room.id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, target.id, record.model_dump_json())
            pipe.expire(key, TTL_S)
            await pipe.execute()
        await self._on_booking(room.id, record)
        await self._in_transcript(room.id, record)
        logger.info(
            "room %s: identity of %s verified by %s (%s)", room.id, target.id, by.id, method.value
        )
        for person in room.in_room():
            await self._messenger.send(person, self._for(person, record))
        return record

    @staticmethod
    def _for(person: Participant, record: IdentityVerified) -> IdentityVerified:
        """The message as ``person`` may see it: the noted characters are for moderators."""
        if person.role.can_moderate:
            return record
        return record.model_copy(update={"check": None})

    async def _on_booking(self, room_id: str, record: IdentityVerified) -> None:
        room = await self._rooms.get(room_id)
        if room is None or room.booking_id is None:
            return
        check = IdentityCheck(
            participant_id=record.participant_id,
            method=record.method.value,
            verified_by=record.verified_by_id,
            verified_by_name=record.verified_by,
            verified_at=datetime.fromtimestamp(record.at, UTC),
            check=record.check,
        )
        try:
            await self._bookings.add_identity_check(room.booking_id, check)
        except SchedulerError as exc:
            logger.warning(
                "room %s: identity check not on booking %s: %s", room_id, room.booking_id, exc
            )

    async def _in_transcript(self, room_id: str, record: IdentityVerified) -> None:
        store = self._transcripts
        if store is None:
            return
        texts = {
            lang: line.format(method=METHOD_NAMES[record.method][lang], by=record.verified_by)
            for lang, line in TRANSCRIPT_LINE.items()
        }
        entries = await asyncio.to_thread(store.entries, room_id)
        at = max((e.end for e in entries), default=0.0)
        entry = TranscriptEntry(
            id=f"identity-{record.participant_id}-{int(record.at)}",
            speaker_id="system",
            speaker_name="Seoulbridge",
            language="ko",
            text=texts["ko"],
            start=at,
            end=at,
            translations={lang: text for lang, text in texts.items() if lang != "ko"},
        )
        await asyncio.to_thread(store.append, room_id, entry)
