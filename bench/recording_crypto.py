"""CPU cost of encrypted recording, per track: the real TrackWriter, plain vs sealed files.

    .venv/bin/python bench/recording_crypto.py [--seconds 120] [--rounds 3]

Each round writes ``--seconds`` of media for one video track (VP8-sized frames at
30 fps, ~1 Mb/s, a keyframe every 2 s) and one audio track (Opus-sized, 50 fps,
~48 kb/s) through ``media.track_writer.TrackWriter`` — its writer thread, PyAV's
Matroska muxer with 500 ms clusters, flushed writes — into a real file, once with
``RecordingStorage()`` (plain) and once with ``RecordingStorage(keys)`` (AES-GCM
records). Frames are handed over as fast as the writer takes them; CPU is this
process's user+system time (every thread) while writing, so the figure is the cost of
recording one track for one second of media, as a share of one core. Prints the
machine's load (``uptime``) before and after: the figures are only as quiet as the
machine. Never part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media.depacketize import EncodedFrame
from media.recording_crypto import KeyRing, new_key
from media.recording_files import RecordingStorage
from media.track_writer import TrackWriter

TRACKS = {
    # kind: (codec, clock rate, frames per second, bytes per frame)
    "video": ("VP8", 90_000, 30, 4_200),
    "audio": ("OPUS", 48_000, 50, 120),
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _vp8_keyframe(size: int, rng: random.Random) -> bytes:
    # A VP8 keyframe header (RFC 6386 9.1): 640x480, so the muxer takes its dimensions.
    header = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01])
    return header + rng.randbytes(size - len(header))


async def _write(kind: str, seconds: float, storage: RecordingStorage, path: Path) -> float:
    codec, clock, fps, size = TRACKS[kind]
    rng = random.Random(7)
    frames = []
    for n in range(int(seconds * fps)):
        key = kind == "video" and n % (2 * fps) == 0
        data = _vp8_keyframe(size, rng) if key else rng.randbytes(size)
        if kind == "audio":
            data = b"\xfc" + data[1:]
        frames.append(
            EncodedFrame(timestamp=n * clock // fps, data=data, keyframe=key or kind == "audio")
        )
    started = _cpu()
    writer = TrackWriter(path, codec, clock, name=f"bench {kind}", open_file=storage.create_track)
    for frame in frames:
        writer.write(frame)
        # the queue is bounded: let the writer thread drain (polling: the bench owns no event)
        while writer._queue.qsize() > 500:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
    await writer.aclose()
    assert writer.error is None, writer.error
    assert writer.frames_written == len(frames), (writer.frames_written, len(frames))
    return _cpu() - started


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="media per track and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    keys = KeyRing(current="bench", keys={"bench": new_key()})
    print(f"before: {_uptime()}  (cores: {os.cpu_count()})")
    results: dict[tuple[str, str], list[float]] = {}
    sizes: dict[tuple[str, str], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for kind in TRACKS:
                for mode, storage in (
                    ("plain", RecordingStorage()),
                    ("encrypted", RecordingStorage(keys)),
                ):
                    path = Path(tmp) / f"{round_}-{kind}-{mode}.webm"
                    cpu = await _write(kind, args.seconds, storage, path)
                    results.setdefault((kind, mode), []).append(cpu / args.seconds * 100)
                    sizes[(kind, mode)] = path.stat().st_size
    print(f"after:  {_uptime()}")
    print(
        f"\n{args.rounds} rounds of {args.seconds:.0f} s of media per track; median CPU per track"
    )
    print(f"{'track':<7}{'plain':>10}{'encrypted':>12}{'extra':>10}{'file size +':>14}")
    for kind in TRACKS:
        plain = statistics.median(results[(kind, "plain")])
        sealed = statistics.median(results[(kind, "encrypted")])
        growth = sizes[(kind, "encrypted")] / sizes[(kind, "plain")] - 1
        print(
            f"{kind:<7}{plain:>9.3f}%{sealed:>11.3f}%{sealed - plain:>+9.3f}%{growth * 100:>13.2f}%"
        )
    print("(% of one core while recording one track in real time)")


if __name__ == "__main__":
    asyncio.run(main())
