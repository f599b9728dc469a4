"""Offline composite of a recorded session: one file with every track, time-aligned.

This is the one place recordings are transcoded (VP8 + Opus into WebM), by
ffmpeg in a subprocess, from the per-track files and their manifest offsets.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

from media.errors import MediaError
from media.recorder import read_manifest

logger = logging.getLogger(__name__)

TILE_W, TILE_H = 640, 480


class ExportError(MediaError):
    """The composite could not be made."""


def composite_command(directory: Path, output: Path) -> list[str]:
    """The ffmpeg command line that builds the composite (exposed for tests and dry runs)."""
    manifest = read_manifest(directory)
    tracks = [t for t in manifest.tracks if (directory / t.file).exists() and t.frames != 0]
    if not tracks:
        raise ExportError(f"{directory}: the manifest lists no recorded track files")
    starts = {t.file: datetime.fromisoformat(t.started_at).timestamp() for t in tracks}
    origin = min(starts.values())
    command = ["ffmpeg", "-v", "error", "-y"]
    filters: list[str] = []
    videos: list[str] = []
    audios: list[str] = []
    for index, track in enumerate(tracks):
        command += ["-i", str(directory / track.file)]
        offset = starts[track.file] - origin
        if track.kind == "video":
            label = f"v{index}"
            filters.append(
                f"[{index}:v]scale={TILE_W}:{TILE_H}:force_original_aspect_ratio=decrease,"
                f"pad={TILE_W}:{TILE_H}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=30,"
                f"tpad=start_duration={offset:.3f}:color=black[{label}]"
            )
            videos.append(f"[{label}]")
        else:
            label = f"a{index}"
            filters.append(f"[{index}:a]adelay={int(offset * 1000)}:all=1[{label}]")
            audios.append(f"[{label}]")
    maps: list[str] = []
    if len(videos) == 1:
        maps += ["-map", videos[0]]
    elif videos:
        filters.append(f"{''.join(videos)}hstack=inputs={len(videos)}[vout]")
        maps += ["-map", "[vout]"]
    if len(audios) == 1:
        maps += ["-map", audios[0]]
    elif audios:
        filters.append(f"{''.join(audios)}amix=inputs={len(audios)}:normalize=0[aout]")
        maps += ["-map", "[aout]"]
    command += ["-filter_complex", ";".join(filters), *maps]
    if videos:
        command += ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"]
    if audios:
        command += ["-c:a", "libopus", "-b:a", "64k"]
    return [*command, str(output)]


def export_composite(directory: Path, output: Path | None = None) -> Path:
    """Write ``composite.webm`` (or ``output``) for the session in ``directory``. Blocking."""
    if shutil.which("ffmpeg") is None:
        raise ExportError("ffmpeg is not installed; install it to export recordings")
    target = output or directory / "composite.webm"
    command = composite_command(directory, target)
    logger.info("exporting %s to %s", directory, target)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ExportError(f"ffmpeg failed for {directory}: {result.stderr.strip()[-500:]}")
    return target
