"""Helpers for the recording tests through the real server (imported, not a fixture module)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from media.recording_files import RecordingStorage
from tests.support.rtc_client import RtcParticipant
from web.recording_keys import KEYRING_FILE, KeySource, load_keyring

MEDIA_SUFFIXES = (".webm", ".mkv")


def storage_for(path: Path) -> RecordingStorage:
    """The server's recording storage for a room directory (or a file in one): its keyring
    is the data directory's, ``DATA_DIR/recordings/ROOM/`` two levels up."""
    room = path if path.is_dir() else path.parent
    keyring = room.parent.parent / KEYRING_FILE
    if not keyring.exists():
        return RecordingStorage()
    return RecordingStorage(load_keyring(KeySource(path=keyring, managed=True)))


async def indicator(p: RtcParticipant, state: str, after: int = 0) -> dict[str, Any]:
    """The newest ``record_indicator`` with ``state`` among those after the first ``after``."""
    for _ in range(200):
        found = [m for m in p.received("record_indicator")[after:] if m["state"] == state]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {state} indicator: {p.received('record_indicator')}")


async def enter(counselor: RtcParticipant, *others: RtcParticipant) -> dict[RtcParticipant, str]:
    """Connect and join everyone (the counselor admits whoever waits); their ids."""
    for p in (counselor, *others):
        await p.connect()
        await p.wait_for("welcome")
    await counselor.send({"type": "join"})
    await counselor.wait_for("joined")
    for p in others:
        await p.send({"type": "join"})
        for _ in range(100):
            if p.received("joined") or p.received("lobby"):
                break
            await asyncio.sleep(0.05)
        if not p.received("joined"):
            assert p.you is not None
            await counselor.send({"type": "admit", "participant_id": p.you["id"]})
        await p.wait_for("joined")
    return {p: p.you["id"] for p in (counselor, *others) if p.you}


def media_files(directory: Path, participant_id: str | None = None) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        f
        for f in directory.iterdir()
        if f.suffix in MEDIA_SUFFIXES
        and not f.name.startswith("recording-")
        and (participant_id is None or participant_id in f.name)
    )


def manifest(directory: Path) -> dict[str, Any]:
    """The room's manifest as JSON (decrypted: the server seals it)."""
    text = storage_for(directory).manifest_text(directory)
    assert text is not None, f"{directory} has no manifest"
    data: dict[str, Any] = json.loads(text)
    return data


def _plain(path: Path) -> tuple[str, bytes | None]:
    """ffprobe's ``-i`` and stdin for ``path``: a recording is decrypted in memory, piped."""
    with storage_for(path).open_track(path) as handle:
        return "pipe:0", handle.read()


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's streams (codec, width, height, duration) and format of ``path``."""
    source, data = _plain(path)
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,duration:format=duration",
            "-of",
            "json",
            source,
        ],
        input=data,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def duration(path: Path) -> float:
    return float(probe(path)["format"]["duration"])


def stream_durations(path: Path) -> dict[str, float]:
    """Seconds of media per kind, from the last packet of each stream (decoding the file)."""
    out: dict[str, float] = {}
    source, data = _plain(path)
    for kind, selector in (("video", "v:0"), ("audio", "a:0")):
        result = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-select_streams",
                selector,
                "-show_entries",
                "packet=pts_time,duration_time",
                "-of",
                "csv=p=0",
                source,
            ],
            input=data,
            capture_output=True,
            timeout=60,
            check=False,
        )
        ends = []
        for line in result.stdout.decode().split():
            parts = [x for x in line.split(",") if x and x != "N/A"]
            if parts:
                ends.append(sum(float(x) for x in parts))
        if ends:
            out[kind] = max(ends)
    return out
