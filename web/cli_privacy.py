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


async def with_audit(settings: Settings, work: Callable[[AuditLog], Awaitable[T]]) -> T:
    handle = await open_redis(settings.redis_url, settings.data_dir)
    try:
        log = AuditLog(handle.client, chain_key(settings.resolved_secret()))
        return await work(log)
    finally:
        await handle.aclose()


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
