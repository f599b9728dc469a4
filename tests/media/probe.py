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
