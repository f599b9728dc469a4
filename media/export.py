"""Offline composite of one recording: one file, one tile per person, audio and video in step.

This is the one place recordings are transcoded (into VP8 + Opus WebM), by ffmpeg
in a subprocess. A recording is made of segments (a pause, a restart or a
failure ends one) and each segment of one file per track; every file is placed
on the recording's timeline at its own start (``TrackFile.started_at``, the
wall-clock time of its first frame), so pauses become black and silence and
both kinds stay in step. What each file holds is read back from the file itself
(a crash leaves the manifest's counts behind), never taken from the manifest.

Encrypted track files are decrypted as ffmpeg reads them: each goes to ffmpeg
through a pipe of its own (``pipe:N``), fed by a thread, so no plain copy is
ever written to disk. The composite itself is the one plain file an export makes,
where the person exporting asked for it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from kernel.media_types import Kind
from media.errors import MediaError
from media.recording_crypto import is_encrypted
from media.recording_files import RecordingStorage, read_manifest

logger = logging.getLogger(__name__)

TILE_W, TILE_H = 640, 480
FPS = 30


class ExportError(MediaError):
    """The composite could not be made."""


@dataclass(frozen=True)
class ExportInput:
    path: Path
    participant_id: str
    kind: Kind
    offset_s: float
    duration_s: float


@dataclass(frozen=True)
class ExportPlan:
    room_id: str
    recording: int
    inputs: tuple[ExportInput, ...]
    #: one tile each, in the order they first appear
    people: tuple[str, ...]
    duration_s: float

    @property
    def has_video(self) -> bool:
        return any(i.kind == "video" for i in self.inputs)


def default_output(directory: Path, number: int) -> Path:
    return directory / f"recording-{number}.webm"


def plan_export(
    directory: Path, number: int, storage: RecordingStorage | None = None
) -> ExportPlan:
    """What goes where in recording ``number`` of the room in ``directory``. Blocking."""
    storage = storage or RecordingStorage()
    manifest = read_manifest(directory, storage)
    recording = manifest.recording(number)
    origin = recording.started_at.timestamp()
    inputs: list[ExportInput] = []
    for track in recording.tracks():
        path = directory / track.file
        if not path.exists():
            logger.warning("room %s: %s is missing", manifest.room_id, track.file)
            continue
        found = storage.probe_track(path)
        if found.packets == 0:
            continue
        offset = max(0.0, track.started_at.timestamp() - origin)
        inputs.append(ExportInput(path, track.participant_id, track.kind, offset, found.duration_s))
    if not inputs:
        raise ExportError(
            f"{directory}: recording {number} has no readable track files "
            "(were they deleted, or did it stop before the first frame?)"
        )
    inputs.sort(key=lambda i: (i.offset_s, i.participant_id, i.kind))
    people = tuple(dict.fromkeys(i.participant_id for i in inputs))
    duration = max(i.offset_s + i.duration_s for i in inputs)
    return ExportPlan(manifest.room_id, number, tuple(inputs), people, round(duration, 3))


def composite_command(
    plan: ExportPlan, output: Path, sources: dict[Path, str] | None = None
) -> list[str]:
    """The ffmpeg command line that builds the composite (exposed for tests and dry runs).

    ``sources`` names where ffmpeg reads an input other than its path (``pipe:N``).
    """
    command = ["ffmpeg", "-v", "error", "-y"]
    filters: list[str] = []
    maps: list[str] = []
    for item in plan.inputs:
        source = (sources or {}).get(item.path)
        if source is not None:
            command += ["-f", "matroska"]
        command += ["-i", source or str(item.path)]
    total = f"{plan.duration_s:.3f}"
    if plan.has_video:
        cols = math.ceil(math.sqrt(len(plan.people)))
        rows = math.ceil(len(plan.people) / cols)
        filters.append(f"color=c=black:s={cols * TILE_W}x{rows * TILE_H}:r={FPS}:d={total}[c0]")
        canvas = 0
        for index, item in enumerate(plan.inputs):
            if item.kind != "video":
                continue
            tile = plan.people.index(item.participant_id)
            x, y = (tile % cols) * TILE_W, (tile // cols) * TILE_H
            filters.append(
                f"[{index}:v]scale={TILE_W}:{TILE_H}:force_original_aspect_ratio=decrease,"
                f"pad={TILE_W}:{TILE_H}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={FPS},"
                f"setpts=PTS-STARTPTS+{item.offset_s:.3f}/TB[v{index}]"
            )
            filters.append(
                f"[c{canvas}][v{index}]overlay=x={x}:y={y}:eof_action=pass:repeatlast=0"
                f"[c{canvas + 1}]"
            )
            canvas += 1
        filters.append(f"[c{canvas}]format=yuv420p[vout]")
        maps += ["-map", "[vout]"]
    audios = [(index, item) for index, item in enumerate(plan.inputs) if item.kind == "audio"]
    if audios:
        labels = []
        for index, item in audios:
            # async=1 fills any hole inside a file with silence; adelay places the file.
            filters.append(
                f"[{index}:a]aresample=async=1:first_pts=0,"
                f"adelay={round(item.offset_s * 1000)}:all=1[a{index}]"
            )
            labels.append(f"[a{index}]")
        mixed = "".join(labels)
        if len(labels) > 1:
            filters.append(
                f"{mixed}amix=inputs={len(labels)}:normalize=0:duration=longest:"
                "dropout_transition=0[mix]"
            )
            mixed = "[mix]"
        filters.append(f"{mixed}apad=whole_dur={total}[aout]")
        maps += ["-map", "[aout]"]
    command += ["-filter_complex", ";".join(filters), *maps, "-t", total]
    if plan.has_video:
        command += ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"]
    if audios:
        command += ["-c:a", "libopus", "-b:a", "64k"]
    return [*command, str(output)]


def _feed(storage: RecordingStorage, path: Path, fd: int, errors: list[BaseException]) -> None:
    """Write the plain bytes of ``path`` into the pipe ``fd`` until done or ffmpeg stops."""
    try:
        with os.fdopen(fd, "wb") as pipe, storage.open_track(path) as source:
            while chunk := source.read(1 << 20):
                pipe.write(chunk)
    except BrokenPipeError:
        pass  # ffmpeg had what it needed (``-t``) and closed its end
    except BaseException as exc:
        errors.append(exc)


def export_recording(
    directory: Path,
    number: int,
    output: Path | None = None,
    storage: RecordingStorage | None = None,
) -> Path:
    """Write recording ``number`` of the room in ``directory`` as one WebM. Blocking."""
    if shutil.which("ffmpeg") is None:
        raise ExportError("ffmpeg is not installed; install it to export recordings")
    storage = storage or RecordingStorage()
    plan = plan_export(directory, number, storage)
    target = output or default_output(directory, number)
    logger.info(
        "room %s: exporting recording %d (%.1f s, %d people) to %s",
        plan.room_id,
        number,
        plan.duration_s,
        len(plan.people),
        target,
    )
    pipes: dict[Path, tuple[int, int]] = {}
    try:
        for item in plan.inputs:
            if is_encrypted(item.path):
                pipes[item.path] = os.pipe()
        sources = {path: f"pipe:{read}" for path, (read, _) in pipes.items()}
        process = subprocess.Popen(
            composite_command(plan, target, sources),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=[read for read, _ in pipes.values()],
        )
    except BaseException:
        for read, write in pipes.values():
            os.close(read)
            os.close(write)
        raise
    errors: list[BaseException] = []
    feeders = []
    for path, (read, write) in pipes.items():
        os.close(read)  # ffmpeg has its own copy
        feeder = threading.Thread(
            target=_feed, args=(storage, path, write, errors), name=f"export {path.name}"
        )
        feeder.start()
        feeders.append(feeder)
    try:
        _, stderr = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for feeder in feeders:
            feeder.join()
    if errors:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise ExportError(f"{directory}: a track could not be decrypted: {errors[0]}")
    if process.returncode != 0:
        raise ExportError(f"ffmpeg failed for {directory}: {stderr.strip()[-500:]}")
    return target


def recording_numbers(directory: Path, storage: RecordingStorage | None = None) -> list[int]:
    return [r.number for r in read_manifest(directory, storage).recordings]
