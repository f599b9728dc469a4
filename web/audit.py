"""The audit log: who touched personal data, when, what, from where — never the data itself.

One Redis stream, ``sb:audit``, that this code only ever appends to (``XADD``);
the retention purge is the one thing that trims it (``XTRIM MINID``, older than
``SEOULBRIDGE_RETAIN_AUDIT_DAYS``), and says so in an entry of its own. Each
entry carries an HMAC-SHA256 over its fields and the previous entry's MAC (a
chain keyed by a key derived from the deployment's token secret), so an entry
edited, removed from the middle or inserted by someone with access to Redis but
not to the secret shows up in ``seoulbridge audit --verify``. Appends from several
nodes are serialised with ``WATCH``: the chain has one order.

What an entry holds: ``action`` (one of ``AuditAction``), ``actor`` (a staff
username, a participant id, ``system`` or ``cli:<user>``), ``role``, ``source``
(an IP address, ``socket``, ``cli@host``, ``server``), ``target`` (a room,
booking or staff id) and ``detail``: counts, formats, languages, methods —
values the code chooses, never text a person typed or said.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import redis.asyncio as aioredis
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import WatchError

logger = logging.getLogger(__name__)

STREAM: Final = "sb:audit"
_GENESIS: Final = "0" * 64
_APPEND_TRIES: Final = 50

DetailValue = str | int | float | bool | None


class AuditAction(StrEnum):
    RECORDING_EXPORT = "recording.export"
    RECORDING_DECRYPT = "recording.decrypt"
    TRANSCRIPT_DOWNLOAD = "transcript.download"
    CONSENT_AGREED = "consent.agreed"
    CONSENT_DECLINED = "consent.declined"
    IDENTITY_VERIFIED = "identity.verified"
    STAFF_CREATED = "staff.created"
    STAFF_UPDATED = "staff.updated"
    STAFF_REMOVED = "staff.removed"
    PURGE = "retention.purge"
    SUBJECT_EXPORT = "subject.export"
    SUBJECT_DELETE = "subject.delete"
    KEY_ROTATED = "keys.rotated"


class AuditRecord(BaseModel):
    """What a caller says happened (the store adds the time and the chain)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: AuditAction
    actor: str = Field(max_length=120)
    role: str = Field(default="", max_length=40)
    source: str = Field(default="", max_length=120)
    target: str = Field(default="", max_length=200)
    detail: dict[str, DetailValue] = Field(default_factory=dict)


class AuditEntry(AuditRecord):
    """One entry as stored and read back."""

    id: str = Field(description="the stream id, in time order")
    at: datetime
    prev: str = Field(description="MAC of the entry before")
    mac: str


class AuditPage(BaseModel):
    """``GET /api/audit``: entries newest first, and where the next page begins."""

    entries: list[AuditEntry]
    next_before: str | None = Field(default=None, description="send as ?before= for older entries")


class ChainCheck(BaseModel):
    entries: int
    ok: bool
    first_bad: str | None = None
    problem: str | None = None


def chain_key(token_secret: str) -> bytes:
    """The MAC key, derived from the secret every node of a deployment shares."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"seoulbridge audit chain v1"
    ).derive(token_secret.encode("utf-8"))


def _canonical(record: AuditRecord, at: float, prev: str) -> bytes:
    body = {"at": round(at, 6), "prev": prev, **record.model_dump(mode="json")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _entries(batch: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """A stream range reply, typed (the client returns bytes: no ``decode_responses``)."""
    return [(_text(entry_id), dict(fields or {})) for entry_id, fields in batch or []]


class AuditLog:
    """Append and read the audit stream."""

    def __init__(
        self, redis: aioredis.Redis, key: bytes, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._key = key
        self._clock = clock

    def _mac(self, record: AuditRecord, at: float, prev: str) -> str:
        return hmac.new(self._key, _canonical(record, at, prev), hashlib.sha256).hexdigest()

    async def record(self, record: AuditRecord) -> str:
        """Append one entry; its stream id."""
        for _ in range(_APPEND_TRIES):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(STREAM)
                    last = _entries(await pipe.xrevrange(STREAM, count=1))
                    prev = _text(last[0][1].get(b"mac", _GENESIS)) if last else _GENESIS
                    at = self._clock()
                    fields = {
                        "at": repr(at),
                        "prev": prev,
                        "mac": self._mac(record, at, prev),
                        "record": record.model_dump_json(),
                    }
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.xadd(STREAM, fields)  # type: ignore[arg-type]
                    (entry_id,) = await pipe.execute()
                except WatchError:
                    continue
            logger.info(
                "audit %s by %s on %s %s",
                record.action.value,
                record.actor,
                record.target,
                record.detail,
            )
            return _text(entry_id)
        raise RuntimeError("the audit log is too busy to append to")

    async def note(
        self,
        action: AuditAction,
        actor: str,
        *,
        role: str = "",
        source: str = "",
        target: str = "",
        **detail: DetailValue,
    ) -> str:
        return await self.record(
            AuditRecord(
                action=action, actor=actor, role=role, source=source, target=target, detail=detail
            )
        )

    @staticmethod
    def _parse(entry_id: str, fields: Mapping[bytes, bytes]) -> AuditEntry:
        record = AuditRecord.model_validate_json(fields[b"record"])
        return AuditEntry(
            id=entry_id,
            at=datetime.fromtimestamp(float(fields[b"at"]), UTC),
            prev=_text(fields[b"prev"]),
            mac=_text(fields[b"mac"]),
            **record.model_dump(),
        )

    async def page(
        self,
        *,
        before: str | None = None,
        limit: int = 100,
        action: str | None = None,
        target: str | None = None,
    ) -> AuditPage:
        """Entries newest first (optionally one action or target), at most ``limit``."""
        found: list[AuditEntry] = []
        cursor = f"({before}" if before else "+"
        while len(found) < limit:
            batch = _entries(await self._redis.xrevrange(STREAM, max=cursor, min="-", count=500))
            if not batch:
                return AuditPage(entries=found)
            for entry_id, fields in batch:
                entry = self._parse(entry_id, fields)
                cursor = f"({entry.id}"
                if action and entry.action.value != action:
                    continue
                if target and entry.target != target:
                    continue
                found.append(entry)
                if len(found) == limit:
                    break
        return AuditPage(entries=found, next_before=found[-1].id if found else None)

    async def about(self, target: str) -> list[AuditEntry]:
        """Every entry about ``target`` (a room), oldest first."""
        entries: list[AuditEntry] = []
        cursor = "-"
        while True:
            batch = _entries(await self._redis.xrange(STREAM, min=cursor, max="+", count=1000))
            if not batch:
                return entries
            for entry_id, fields in batch:
                cursor = f"({entry_id}"
                entry = self._parse(entry_id, fields)
                if entry.target == target:
                    entries.append(entry)

    async def verify(self) -> ChainCheck:
        """Recompute every MAC and link; the first entry out of place, if any."""
        count, prev, cursor = 0, None, "-"
        while True:
            batch = _entries(await self._redis.xrange(STREAM, min=cursor, max="+", count=1000))
            if not batch:
                return ChainCheck(entries=count, ok=True)
            for entry_id, fields in batch:
                cursor = f"({entry_id}"
                entry = self._parse(entry_id, fields)
                record = AuditRecord.model_validate_json(fields[b"record"])
                at = float(fields[b"at"])
                count += 1
                if prev is not None and entry.prev != prev:
                    return ChainCheck(
                        entries=count,
                        ok=False,
                        first_bad=entry.id,
                        problem="an entry before this one was removed or replaced",
                    )
                if not hmac.compare_digest(self._mac(record, at, entry.prev), entry.mac):
                    return ChainCheck(
                        entries=count,
                        ok=False,
                        first_bad=entry.id,
                        problem="this entry was altered (its MAC does not match)",
                    )
                prev = entry.mac

    async def trim_before(self, cutoff: float) -> int:
        """Drop entries older than ``cutoff`` (Unix seconds); how many went."""
        min_id = f"{int(cutoff * 1000)}-0"
        removed: int = await self._redis.xtrim(STREAM, minid=min_id, approximate=False)
        return removed

    async def count_before(self, cutoff: float) -> int:
        count, cursor, end = 0, "-", f"({int(cutoff * 1000)}-0"
        while batch := _entries(await self._redis.xrange(STREAM, min=cursor, max=end, count=1000)):
            count += len(batch)
            cursor = f"({batch[-1][0]}"
        return count
