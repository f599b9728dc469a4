"""Retention: personal data is destroyed when its time is up (PIPA Art. 21).

The policy is one number of days per kind of data (``Settings.retain_*_days``):

* recordings: a room's whole directory under ``DATA_DIR/recordings``, that long
  after its last file was written (and while no recording of it can go on);
* transcripts: ``DATA_DIR/transcripts/ROOM.jsonl``, that long after its last line;
* chat: a room's chat in Redis (``sb:room:ROOM:chat``), that long after its last line;
* contact: a booking's resident name and e-mail/phone, the name in the room's
  title, the identity checks' noted characters, that long after the slot ended;
* audit: audit entries, that long after they were written.

``Purger.run(dry_run)`` finds what is due and, unless it is a dry run, deletes it;
the report says what and how many, never which person. A real run writes an audit
entry with the counts. ``RetentionTask`` runs it inside the server every
``purge_interval_s`` (one node at a time, by a lock in Redis); ``seoulbridge purge
[--dry-run]`` runs it by hand. File work happens in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from kernel.taskset import TaskSet
from media.recording_files import RECORDINGS_DIR
from scheduler.booking_store import BookingStore
from signaling.rooms import RoomDirectory
from web.audit import AuditAction, AuditLog, AuditRecord
from web.recording_store import recording_key
from web.settings import Settings

logger = logging.getLogger(__name__)

DAY_S: Final = 86_400.0
TRANSCRIPTS_DIR: Final = "transcripts"
#: the room chat list (signaling/chat.py keeps it there)
CHAT_PATTERN: Final = "sb:room:*:chat"
_LOCK: Final = "sb:purge:lock"
ERASED_TITLE: Final = "(erased)"


@dataclass(frozen=True)
class RetentionPolicy:
    recordings_days: float
    transcripts_days: float
    chat_days: float
    contact_days: float
    audit_days: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            recordings_days=settings.retain_recordings_days,
            transcripts_days=settings.retain_transcripts_days,
            chat_days=settings.retain_chat_days,
            contact_days=settings.retain_contact_days,
            audit_days=settings.retain_audit_days,
        )


class PurgeCounts(BaseModel):
    rooms: int = 0
    files: int = 0
    bytes: int = 0
    keys: int = 0
    bookings: int = 0
    entries: int = 0


class PurgeReport(BaseModel):
    """What a purge deleted (or, in a dry run, would delete): counts, never content."""

    dry_run: bool
    at: datetime
    policy_days: dict[str, float]
    recordings: PurgeCounts = Field(default_factory=PurgeCounts)
    transcripts: PurgeCounts = Field(default_factory=PurgeCounts)
    chat: PurgeCounts = Field(default_factory=PurgeCounts)
    contact: PurgeCounts = Field(default_factory=PurgeCounts)
    audit: PurgeCounts = Field(default_factory=PurgeCounts)

    def summary(self) -> dict[str, str | int | float | bool | None]:
        return {
            "recording_rooms": self.recordings.rooms,
            "recording_files": self.recordings.files,
            "transcripts": self.transcripts.files,
            "chats": self.chat.keys,
            "bookings_erased": self.contact.bookings,
            "audit_entries": self.audit.entries,
        }


def _newest_mtime(directory: Path) -> float:
    times = [p.stat().st_mtime for p in directory.iterdir() if p.is_file()]
    return max(times, default=directory.stat().st_mtime)


def _size(directory: Path) -> tuple[int, int]:
    files = [p for p in directory.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _due_recordings(root: Path, cutoff: float) -> list[tuple[Path, int, int]]:
    if not root.is_dir():
        return []
    due = []
    for room in sorted(root.iterdir()):
        if room.is_dir() and _newest_mtime(room) < cutoff:
            files, size = _size(room)
            due.append((room, files, size))
    return due


def _due_transcripts(root: Path, cutoff: float) -> list[tuple[Path, int]]:
    if not root.is_dir():
        return []
    return [
        (p, p.stat().st_size) for p in sorted(root.glob("*.jsonl")) if p.stat().st_mtime < cutoff
    ]


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path)


def _remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class Purger:
    """Finds and deletes what the policy says is due."""

    def __init__(
        self,
        data_dir: Path,
        redis: aioredis.Redis,
        policy: RetentionPolicy,
        *,
        audit: AuditLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._data_dir = data_dir
        self._redis = redis
        self._policy = policy
        self._audit = audit
        self._clock = clock
        self._bookings = BookingStore(redis)
        self._rooms = RoomDirectory(redis)

    async def run(
        self, *, dry_run: bool, actor: str = "system", source: str = "server"
    ) -> PurgeReport:
        now = self._clock()
        policy = self._policy
        report = PurgeReport(
            dry_run=dry_run,
            at=datetime.fromtimestamp(now, UTC),
            policy_days={
                "recordings": policy.recordings_days,
                "transcripts": policy.transcripts_days,
                "chat": policy.chat_days,
                "contact": policy.contact_days,
                "audit": policy.audit_days,
            },
        )
        await self._recordings(report, now - policy.recordings_days * DAY_S, dry_run)
        await self._transcripts(report, now - policy.transcripts_days * DAY_S, dry_run)
        await self._chat(report, now - policy.chat_days * DAY_S, dry_run)
        await self._contact(report, now - policy.contact_days * DAY_S, dry_run)
        cutoff = now - policy.audit_days * DAY_S
        if dry_run:
            report.audit.entries = await self._audit.count_before(cutoff)
        else:
            report.audit.entries = await self._audit.trim_before(cutoff)
            await self._audit.record(
                AuditRecord(
                    action=AuditAction.PURGE,
                    actor=actor,
                    source=source,
                    target="retention",
                    detail=dict(report.summary()),
                )
            )
        logger.info("retention purge%s: %s", " (dry run)" if dry_run else "", report.summary())
        return report

    async def _recordings(self, report: PurgeReport, cutoff: float, dry_run: bool) -> None:
        root = self._data_dir / RECORDINGS_DIR
        for room, files, size in await asyncio.to_thread(_due_recordings, root, cutoff):
            if await self._redis.exists(recording_key(room.name)):
                continue  # a recording of this room is still going (or may go on)
            report.recordings.rooms += 1
            report.recordings.files += files
            report.recordings.bytes += size
            if not dry_run:
                await asyncio.to_thread(_remove_tree, room)

    async def _transcripts(self, report: PurgeReport, cutoff: float, dry_run: bool) -> None:
        root = self._data_dir / TRANSCRIPTS_DIR
        for path, size in await asyncio.to_thread(_due_transcripts, root, cutoff):
            report.transcripts.files += 1
            report.transcripts.bytes += size
            if not dry_run:
                await asyncio.to_thread(_remove_file, path)

    async def _chat(self, report: PurgeReport, cutoff: float, dry_run: bool) -> None:
        async for key in self._redis.scan_iter(match=CHAT_PATTERN, count=500):
            last = await self._redis.lrange(key, -1, -1)
            try:
                ts = float(json.loads(_text(last[0])).get("ts", 0)) if last else 0.0
            except (ValueError, AttributeError):
                ts = 0.0
            if ts >= cutoff:
                continue
            report.chat.keys += 1
            report.chat.entries += int(await self._redis.llen(key))
            if not dry_run:
                await self._redis.delete(key)

    async def _contact(self, report: PurgeReport, cutoff: float, dry_run: bool) -> None:
        at = datetime.fromtimestamp(self._clock(), UTC)
        for booking in await self._bookings.ended_before(datetime.fromtimestamp(cutoff, UTC)):
            report.contact.bookings += 1
            if dry_run:
                continue
            await self._bookings.erase_contact(booking.id, at)
            if booking.room_id:
                await self._rooms.retitle(booking.room_id, ERASED_TITLE)


class RetentionTask:
    """Runs the purge every ``interval_s`` on one node of the deployment at a time."""

    def __init__(
        self, purger: Purger, redis: aioredis.Redis, *, interval_s: float, node_id: str
    ) -> None:
        self._purger = purger
        self._redis = redis
        self._interval_s = interval_s
        self._node_id = node_id
        self._tasks = TaskSet("retention", on_error=self._failed)
        self.runs = 0
        self.last: PurgeReport | None = None

    def start(self, *, first_after_s: float | None = None) -> None:
        """The first purge a minute after start (or one interval, if shorter), then each."""
        first = min(self._interval_s, 60.0) if first_after_s is None else first_after_s
        self._tasks.spawn(self._loop(first), name="retention purge")

    def _failed(self, name: str, exc: BaseException) -> None:
        logger.error("retention: %s failed: %s", name, exc)

    async def _loop(self, first_after_s: float) -> None:
        await asyncio.sleep(first_after_s)
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("retention purge failed; trying again in %.0f s", self._interval_s)
            await asyncio.sleep(self._interval_s)

    async def run_once(self) -> PurgeReport | None:
        """One purge, unless another node ran one within the interval."""
        claimed = await self._redis.set(
            _LOCK, self._node_id, nx=True, px=max(1, int(self._interval_s * 1000 * 0.9))
        )
        if not claimed:
            return None
        self.last = await self._purger.run(dry_run=False)
        self.runs += 1
        return self.last

    async def aclose(self) -> None:
        await self._tasks.aclose()
