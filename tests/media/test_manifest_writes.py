"""Concurrent manifest writes never collide and the newest state wins."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from media.recorder import RecordingSession


class _NoPackets:
    def add_packet_listener(self, publication_id: str, listener: object) -> object:
        return lambda: None

    def request_keyframe(self, publication_id: str) -> None:
        return None


async def test_concurrent_manifest_writes_keep_the_newest(tmp_path: Path) -> None:
    session = RecordingSession("r-1", "r-1", tmp_path / "r-1", _NoPackets())  # type: ignore[arg-type]
    writes = []
    for n in range(40):
        session.manifest.stop_reason = f"write {n}"
        writes.append(asyncio.create_task(session._write_manifest()))
        await asyncio.sleep(0)
    await asyncio.gather(*writes)
    written = json.loads((tmp_path / "r-1" / "manifest.json").read_text())
    assert written["stop_reason"] == "write 39"
    assert [p.name for p in (tmp_path / "r-1").iterdir()] == ["manifest.json"]  # no temp files left
