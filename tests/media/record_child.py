"""Child process for the SIGKILL test: records a loopback publisher until killed.

Run as ``python tests/media/record_child.py DIRECTORY [KEYRING]``; prints ``RECORDING``
once the recording runs. With ``KEYRING`` (a keyring file), the files are encrypted.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).parent)]

import sfu_loopback  # noqa: E402

from media.recorder import RecordingSession  # noqa: E402
from media.recording_files import RecordingStorage  # noqa: E402
from media.rtp_forwarder import RtpForwarder  # noqa: E402
from web.recording_keys import KeySource, load_keyring  # noqa: E402


async def main(directory: Path, keyring: Path | None) -> None:
    keys = load_keyring(KeySource(path=keyring, managed=True)) if keyring else None
    forwarder = RtpForwarder(keyframe_min_interval=0.2)
    room = sfu_loopback.Room(forwarder)
    await room.add_publisher("alice", sfu_loopback.SyntheticVideo(), sfu_loopback.SineAudio())
    for _ in range(200):
        if len(room.publications) == 2:
            break
        await asyncio.sleep(0.05)
    session = RecordingSession(
        "room-k", directory.name, directory, forwarder, storage=RecordingStorage(keys)
    )
    for publication in room.publications.values():
        session.add_publication(publication.id, "alice", publication.kind)
    await session.start("counselor", ["alice"])
    await session.agree("alice")
    for _ in range(200):
        if await asyncio.to_thread(lambda: len(list(directory.glob("*.webm"))) == 2):
            break
        await asyncio.sleep(0.05)
    print("RECORDING", flush=True)
    await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
