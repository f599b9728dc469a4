"""Writes one room's ``manifest.json``: one write at a time, the newest state last.

Each write takes the manifest as it is when its turn comes and skips a write
that would change nothing. The file is replaced atomically in a thread; a write
that is cancelled (the flush task stopped at a pause) still lands before the lock
is released, so an older state can never land after a newer one. A write that
fails is reported to ``on_error`` (the recording stops), never only logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from media.errors import RecordingWriteError
from media.recording_files import RecordingStorage
from media.recording_model import Manifest

logger = logging.getLogger(__name__)


class ManifestWriter:
    def __init__(
        self,
        room_id: str,
        directory: Path,
        storage: RecordingStorage,
        on_error: Callable[[RecordingWriteError], None],
    ) -> None:
        self.room_id = room_id
        self.directory = directory
        self._storage = storage
        self._on_error = on_error
        self._lock = asyncio.Lock()
        self._last_written: str | None = None

    async def write(self, manifest: Manifest, prepare: Callable[[], None] | None = None) -> bool:
        """Write ``manifest`` (after ``prepare()`` brings it up to date); False if it failed."""
        async with self._lock:
            if prepare is not None:
                prepare()
            text = manifest.model_dump_json(indent=2)
            if text == self._last_written:
                return True
            try:
                await self._write_through(text)
            except OSError as exc:
                logger.exception("room %s: manifest not written", self.room_id)
                self._on_error(RecordingWriteError(f"the manifest could not be written: {exc}"))
                return False
            self._last_written = text
            return True

    async def _write_through(self, text: str) -> None:
        write = asyncio.ensure_future(
            asyncio.to_thread(self._storage.write_manifest, self.directory, text)
        )
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write])  # let it land while the lock is still held
            raise
