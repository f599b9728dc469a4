"""ffprobe helpers for recording tests (imported as ``probe``).

With ``storage`` (a ``RecordingStorage`` holding the keyring), an encrypted file is
decrypted in this process and handed to ffprobe/ffmpeg on standard input, so the
test writes no plain copy either.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from media.recording_files import RecordingStorage


def _input(path: Path, storage: RecordingStorage | None) -> tuple[str, bytes | None]:
    """What to pass as ``-i`` and what to send on stdin."""
    if storage is None:
        return str(path), None
    with storage.open_track(path) as handle:
        return "pipe:0", handle.read()


def streams_and_last_pts(
    path: Path, storage: RecordingStorage | None = None
) -> tuple[list[str], float, int]:
    """(codec names, last packet pts in seconds, packet count); raises if ffprobe fails."""
    source, data = _input(path, storage)
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:packet=pts_time",
            "-of",
            "json",
            source,
        ],
        input=data,
        capture_output=True,
        check=True,
        timeout=30,
    )
    data = json.loads(result.stdout)
    codecs = [s["codec_name"] for s in data.get("streams", [])]
    times = [float(p["pts_time"]) for p in data.get("packets", []) if "pts_time" in p]
    return codecs, max(times, default=0.0), len(times)


def decodes_cleanly(path: Path, storage: RecordingStorage | None = None) -> bool:
    source, data = _input(path, storage)
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", source, "-f", "null", "-"],
        input=data,
        capture_output=True,
        timeout=60,
    )
    return result.returncode == 0 and not result.stderr.strip()


def stream_ends(path: Path) -> dict[str, float]:
    """Where each kind's media ends (seconds: the last packet's pts plus its duration)."""
    out: dict[str, float] = {}
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
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        ends = []
        for line in result.stdout.split():
            parts = [x for x in line.split(",") if x and x != "N/A"]
            if parts:
                ends.append(sum(float(x) for x in parts))
        if ends:
            out[kind] = max(ends)
    return out
