"""The deployment's recording keys: where they come from, and how a new one is made current.

Three sources, the first that is set wins:

1. ``SEOULBRIDGE_RECORDING_KEYS`` — ``id:base64key[,id:base64key…]``, the first is
   current (for operators whose secrets arrive as environment variables);
2. ``SEOULBRIDGE_RECORDING_KEYS_FILE`` — a keyring file kept elsewhere (a secrets
   mount), in the format below; the server only reads it;
3. ``DATA_DIR/recording-keys.json`` (mode 600), created with one key on first use.

Keyring file::

    {"format": 1, "current": "20260101-3fa2c1d0",
     "keys": {"20260101-3fa2c1d0": {"key": "<base64 of 32 bytes>", "created_at": "…"}}}

Rotation (``seoulbridge keys rotate``) adds a key and makes it current: files
started after the server next starts are sealed under it, and every older file
still opens because its header names its key and the old key stays in the ring.
A key is never removed by the server; removing one makes its files unreadable.
Everything here blocks; call it at start-up or from the CLI.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError

from kernel.private_files import create_once, replace_file
from media.recording_crypto import (
    KEY_BYTES,
    DecryptionError,
    KeyRing,
    RecordingKeyError,
    check_key_id,
    is_encrypted,
    key_id_of,
    new_key,
)

KEYRING_FILE: Final = "recording-keys.json"
FORMAT: Final = 1


class _StoredKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    created_at: datetime | None = None


class _KeyringFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: int = FORMAT
    current: str
    keys: dict[str, _StoredKey]


@dataclass(frozen=True)
class KeySource:
    """Where this deployment's keyring is: an inline list, or a file (ours or the operator's)."""

    inline: str | None = None
    path: Path | None = None
    #: the data directory's own file, which may be created and rotated here
    managed: bool = False

    def describe(self) -> str:
        if self.inline is not None:
            return "SEOULBRIDGE_RECORDING_KEYS"
        return f"{self.path}{'' if self.managed else ' (read only)'}"


def key_source(data_dir: Path, inline: str | None, path: Path | None) -> KeySource:
    if inline:
        return KeySource(inline=inline)
    if path is not None:
        return KeySource(path=path)
    return KeySource(path=data_dir / KEYRING_FILE, managed=True)


def _decode(key_id: str, text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise RecordingKeyError(f"recording key {key_id!r} is not base64") from None
    if len(key) != KEY_BYTES:
        raise RecordingKeyError(
            f"recording key {key_id!r} decodes to {len(key)} bytes; it must be {KEY_BYTES}"
        )
    return key


def parse_inline(text: str) -> KeyRing:
    """``id:base64[,id:base64…]``; the first is current."""
    keys: dict[str, bytes] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key_id, sep, value = item.partition(":")
        if not sep:
            raise RecordingKeyError(
                "SEOULBRIDGE_RECORDING_KEYS must look like 'id:base64key,…' (the first is current)"
            )
        keys[check_key_id(key_id.strip())] = _decode(key_id, value)
    if not keys:
        raise RecordingKeyError("SEOULBRIDGE_RECORDING_KEYS is set but names no key")
    return KeyRing(current=next(iter(keys)), keys=keys)


def _read_file(path: Path) -> KeyRing:
    try:
        stored = _KeyringFile.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise RecordingKeyError(f"{path} is not a recording keyring: {exc}") from None
    keys = {check_key_id(k): _decode(k, v.key) for k, v in stored.keys.items()}
    return KeyRing(current=stored.current, keys=keys)


def _new_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


def _stored_bytes(stored: _KeyringFile) -> bytes:
    return stored.model_dump_json(indent=2).encode("utf-8")


def _write_file(path: Path, stored: _KeyringFile) -> None:
    """Replace ``path`` atomically with ``stored``."""
    replace_file(path, _stored_bytes(stored))


def _create_file(path: Path, stored: _KeyringFile) -> None:
    """Write ``path`` atomically only if it does not exist yet: nodes sharing a data
    directory start at once, and a keyring each wrote over the other's left one node
    sealing recordings under a key the file no longer held."""
    create_once(path, _stored_bytes(stored))


def _fresh(previous: _KeyringFile | None) -> _KeyringFile:
    key_id = _new_id()
    entry = _StoredKey(
        key=base64.b64encode(new_key()).decode("ascii"), created_at=datetime.now(UTC)
    )
    keys = dict(previous.keys) if previous else {}
    keys[key_id] = entry
    return _KeyringFile(current=key_id, keys=keys)


def load_keyring(source: KeySource) -> KeyRing:
    """The keyring; the data directory's file is created (0600) with one key when missing."""
    if source.inline is not None:
        return parse_inline(source.inline)
    assert source.path is not None
    if not source.path.exists():
        if not source.managed:
            raise RecordingKeyError(f"the recording keyring {source.path} does not exist")
        _create_file(source.path, _fresh(None))
    if source.managed and source.path.stat().st_mode & 0o077:
        source.path.chmod(0o600)
    return _read_file(source.path)


def rotate(source: KeySource) -> str:
    """A new key in the data directory's keyring, made current; its id."""
    if not source.managed or source.path is None:
        raise RecordingKeyError(
            f"the keyring comes from {source.describe()}, which this server does not manage: "
            "add a new key there (first in SEOULBRIDGE_RECORDING_KEYS, or as 'current' in "
            "the file); 'seoulbridge keys new' prints one"
        )
    previous = None
    if source.path.exists():
        previous = _KeyringFile.model_validate_json(source.path.read_bytes())
    stored = _fresh(previous)
    _write_file(source.path, stored)
    return stored.current


def new_key_line() -> str:
    """A fresh ``id:base64`` entry for an operator-managed keyring."""
    return f"{_new_id()}:{base64.b64encode(new_key()).decode('ascii')}"


def files_by_key(recordings: Path) -> dict[str, int]:
    """How many sealed files under ``recordings`` each key id opens (``plain`` for the rest)."""
    counts: dict[str, int] = {}
    for path in _files(recordings):
        if not is_encrypted(path):
            key_id = "plain"
        else:
            try:
                key_id = key_id_of(path)
            except (OSError, DecryptionError):
                key_id = "unreadable"
        counts[key_id] = counts.get(key_id, 0) + 1
    return counts


def _files(recordings: Path) -> Iterator[Path]:
    if not recordings.is_dir():
        return
    for room in sorted(recordings.iterdir()):
        if room.is_dir():
            yield from sorted(p for p in room.iterdir() if p.is_file())
