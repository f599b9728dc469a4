"""What the privacy commands share: settings from flags, the keyring, an audited action.

A command that opens personal data (``recording export``, ``recording decrypt``)
writes its audit entry *before* it opens anything: when the audit log cannot be
reached, the command refuses (fails closed), as the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
from pydantic import ValidationError

from media.recording_files import RecordingStorage
from web.audit import AuditLog, AuditRecord, chain_key
from web.recording_keys import KeySource, key_source, load_keyring
from web.redis_store import open_redis
from web.settings import Settings

T = TypeVar("T")


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    parser.add_argument("--redis-url", help="Redis URL (default: embedded Redis in the data dir)")


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "redis_url"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SystemExit(f"seoulbridge: bad configuration: {exc}") from None


def keys_of(settings: Settings) -> KeySource:
    return key_source(settings.data_dir, settings.recording_keys, settings.recording_keys_file)


def storage_of(settings: Settings) -> RecordingStorage:
    """Recording storage with the deployment's keyring (created in the data dir if missing)."""
    return RecordingStorage(load_keyring(keys_of(settings)))


def cli_actor() -> tuple[str, str]:
    """Who runs this command and from where, for the audit log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}", f"cli@{socket.gethostname()}"


async def with_redis(
    settings: Settings, work: Callable[[AuditLog, aioredis.Redis], Awaitable[T]]
) -> T:
    handle = await open_redis(settings.redis_url, settings.data_dir)
    try:
        log = AuditLog(handle.client, chain_key(settings.resolved_secret()))
        return await work(log, handle.client)
    finally:
        await handle.aclose()


async def with_audit(settings: Settings, work: Callable[[AuditLog], Awaitable[T]]) -> T:
    return await with_redis(settings, lambda log, _: work(log))


async def audit_staff_added(settings: Settings, username: str, role: str) -> None:
    """``staff add`` from the command line is an admin change to staff, too."""
    from web.audit import AuditAction

    actor, source = cli_actor()
    await with_audit(
        settings,
        lambda log: log.note(
            AuditAction.STAFF_CREATED, actor, source=source, target=username, role_given=role
        ),
    )


def audit_now(settings: Settings, *records: AuditRecord) -> None:
    """Append ``records`` to the audit log, or raise ``SystemExit`` saying why not."""

    async def append(log: AuditLog) -> None:
        for record in records:
            await log.record(record)

    try:
        asyncio.run(with_audit(settings, append))
    except (OSError, RuntimeError) as exc:
        raise SystemExit(
            f"seoulbridge: the audit log cannot be written ({exc}); nothing was opened"
        ) from None


# ------------------------------------------------------------------ commands
def cmd_purge(args: argparse.Namespace) -> int:
    """``seoulbridge purge [--dry-run]``: the retention purge, now."""
    from web.retention import Purger, RetentionPolicy

    settings = settings_from(args)
    actor, source = cli_actor()

    async def run(log: AuditLog, redis: aioredis.Redis) -> PurgeReportLike:
        policy = RetentionPolicy.from_settings(settings)
        purger = Purger(settings.data_dir, redis, policy, audit=log)
        return await purger.run(dry_run=args.dry_run, actor=actor, source=source)

    report = asyncio.run(with_redis(settings, run))
    verb = "would delete" if report.dry_run else "deleted"
    print(f"retention purge ({'dry run' if report.dry_run else 'done'}): {verb}")
    for kind, days in report.policy_days.items():
        counts = getattr(report, "recordings" if kind == "recordings" else kind)
        shown = {k: v for k, v in counts.model_dump().items() if v}
        print(f"  {kind:<12} older than {days:g} days: {shown or 'nothing'}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """``seoulbridge audit``: read (or verify) the audit log."""
    settings = settings_from(args)

    async def read(log: AuditLog) -> int:
        if args.verify:
            check = await log.verify()
            if check.ok:
                print(f"audit log intact: {check.entries} entries, every MAC and link checks")
                return 0
            print(f"audit log NOT intact at entry {check.first_bad}: {check.problem}")
            return 1
        page = await log.page(limit=args.limit, action=args.action, target=args.room)
        for entry in page.entries:
            if args.json:
                print(entry.model_dump_json())
                continue
            detail = " ".join(f"{k}={v}" for k, v in entry.detail.items())
            print(
                f"{entry.at.isoformat(timespec='seconds')}\t{entry.action.value}\t"
                f"{entry.actor}{'/' + entry.role if entry.role else ''}\t{entry.source}\t"
                f"{entry.target}\t{detail}"
            )
        return 0

    return asyncio.run(with_audit(settings, read))


def cmd_keys(args: argparse.Namespace) -> int:
    """``seoulbridge keys list|rotate|new``: the recording keyring."""
    from media.recording_crypto import RecordingKeyError
    from media.recording_files import RECORDINGS_DIR
    from web.audit import AuditAction
    from web.recording_keys import files_by_key, new_key_line, rotate

    settings = settings_from(args)
    source = keys_of(settings)
    try:
        if args.keys_command == "new":
            print(new_key_line())
            return 0
        if args.keys_command == "rotate":
            key_id = rotate(source)
            actor, where = cli_actor()
            audit_now(
                settings,
                AuditRecord(
                    action=AuditAction.KEY_ROTATED,
                    actor=actor,
                    source=where,
                    target="recording-keys",
                    detail={"current": key_id},
                ),
            )
            print(f"new recording key {key_id} is current; restart the server(s) to use it")
            return 0
        ring = load_keyring(source)
        counts = files_by_key(settings.data_dir / RECORDINGS_DIR)
        print(f"keyring: {source.describe()}")
        for key_id in ring.keys:
            mark = "current" if key_id == ring.current else "       "
            print(f"  {mark}  {key_id}\t{counts.pop(key_id, 0)} file(s)")
        for other, count in sorted(counts.items()):
            print(f"           {other}\t{count} file(s)")
    except RecordingKeyError as exc:
        print(f"seoulbridge: {exc}")
        return 1
    return 0


def cmd_subject(args: argparse.Namespace) -> int:
    """``seoulbridge subject export|delete ROOM``: a subject's request about one consultation."""
    from interpretation.service import TRANSCRIPT_KEY_FILE
    from interpretation.transcript import TranscriptStore, load_or_create_key
    from web.audit import AuditAction
    from web.retention import TRANSCRIPTS_DIR
    from web.subject import ConsultationRecords, SubjectError

    settings = settings_from(args)
    if args.subject_command == "delete" and not args.yes:
        print(f"seoulbridge: this deletes every record of {args.room}; add --yes to go ahead")
        return 2
    actor, source = cli_actor()
    storage = storage_of(settings)
    key = load_or_create_key(settings.data_dir / TRANSCRIPT_KEY_FILE)
    transcripts = TranscriptStore(settings.data_dir / TRANSCRIPTS_DIR, key)

    async def run(log: AuditLog, redis: aioredis.Redis) -> str:
        records = ConsultationRecords(
            settings.data_dir, redis, storage=storage, transcripts=transcripts, audit=log
        )
        if args.subject_command == "export":
            await log.note(AuditAction.SUBJECT_EXPORT, actor, source=source, target=args.room)
            return (await records.export(args.room)).model_dump_json(indent=2)
        report = await records.delete(args.room)
        await log.record(
            AuditRecord(
                action=AuditAction.SUBJECT_DELETE,
                actor=actor,
                source=source,
                target=args.room,
                detail=dict(report.model_dump(exclude={"room_id"})),
            )
        )
        return report.model_dump_json(indent=2)

    try:
        text = asyncio.run(with_redis(settings, run))
    except SubjectError as exc:
        print(f"seoulbridge: {exc}")
        return 1
    if args.output is not None:
        with open(args.output, "x", encoding="utf-8") as out:
            out.write(text + "\n")
        print(args.output)
    else:
        print(text)
    return 0


PurgeReportLike = Any  # web.retention.PurgeReport (imported lazily: the CLI starts fast)


def register(subparsers: Any) -> None:
    """``purge``, ``audit``, ``keys`` and ``subject`` commands."""
    purge = subparsers.add_parser(
        "purge", help="delete what the retention policy says is due (SEOULBRIDGE_RETAIN_*_DAYS)"
    )
    purge.add_argument("--dry-run", action="store_true", help="only count what would go")
    add_data_flags(purge)
    purge.set_defaults(func=cmd_purge)

    audit = subparsers.add_parser("audit", help="read the audit log (newest first)")
    audit.add_argument("--room", help="only entries about this room (or staff username)")
    audit.add_argument("--action", help="only this action, e.g. recording.export")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.add_argument("--verify", action="store_true", help="check the chain of MACs instead")
    add_data_flags(audit)
    audit.set_defaults(func=cmd_audit)

    keys = subparsers.add_parser("keys", help="the recording keyring").add_subparsers(
        dest="keys_command", required=True
    )
    for name, text in (
        ("list", "the keys, which is current, and how many files each opens"),
        ("rotate", "add a key to the data directory's keyring and make it current"),
        ("new", "print a new 'id:base64' key for an operator-managed keyring"),
    ):
        command = keys.add_parser(name, help=text)
        add_data_flags(command)
        command.set_defaults(func=cmd_keys)

    subject = subparsers.add_parser(
        "subject", help="a person's request about one consultation"
    ).add_subparsers(dest="subject_command", required=True)
    export = subject.add_parser("export", help="everything held about a consultation, as JSON")
    export.add_argument("room")
    export.add_argument("-o", "--output", type=Path, help="write to this (new) file")
    add_data_flags(export)
    export.set_defaults(func=cmd_subject, yes=False)
    delete = subject.add_parser("delete", help="delete a consultation's records early")
    delete.add_argument("room")
    delete.add_argument("--yes", action="store_true", help="really delete")
    add_data_flags(delete)
    delete.set_defaults(func=cmd_subject, output=None)
