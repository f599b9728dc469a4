"""ffprobe helpers for recording tests (imported as ``probe``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def streams_and_last_pts(path: Path) -> tuple[list[str], float, int]:
    """(codec names, last packet pts in seconds, packet count); raises if ffprobe fails."""
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:packet=pts_time",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    data = json.loads(result.stdout)
    codecs = [s["codec_name"] for s in data.get("streams", [])]
    times = [float(p["pts_time"]) for p in data.get("packets", []) if "pts_time" in p]
    return codecs, max(times, default=0.0), len(times)


def decodes_cleanly(path: Path) -> bool:
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0 and not result.stderr.strip()
