"""Small files written whole: a key, a secret, a manifest, a glossary.

Each is written to a temporary file of its own beside the target (private from its
creation, flushed to disk), then moved into place in one step, so a reader sees the old
file or the new one, never part of one, and never a moment in which a secret is readable
by others (writing it and then ``chmod`` left one readable in between).

``create_once`` is for what must be made once and then shared: several nodes on one data
directory start together, and if each wrote its own key over the other's, one of them went
on sealing with a key the file no longer held (recordings, transcripts), or signing with a
secret the others did not have (tokens, the audit chain). The first one written stands;
the others read it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

PRIVATE: Final = 0o600


@contextlib.contextmanager
def staged(path: Path, data: bytes, *, mode: int = PRIVATE) -> Iterator[str]:
    """``data`` in a temporary file beside ``path`` with ``mode`` from its creation, on
    disk; removed on the way out unless it was moved or linked into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def replace_file(path: Path, data: bytes, *, mode: int = PRIVATE) -> None:
    """Replace ``path`` with ``data`` in one step."""
    with staged(path, data, mode=mode) as tmp:
        os.replace(tmp, path)


def create_once(path: Path, data: bytes, *, mode: int = PRIVATE) -> bool:
    """Write ``path`` with ``data`` only if it does not exist yet; True if ours is the one
    written, False if another was there first (then read theirs)."""
    with staged(path, data, mode=mode) as tmp:
        try:
            os.link(tmp, path)  # fails if another process made it first: theirs stands
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system: the best it allows
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
