"""``seoulbridge recording ...``: list a room's recordings and export them as composite files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from media.errors import MediaError
from media.export import export_recording, recording_numbers
from media.recording_files import RECORDINGS_DIR, read_manifest, session_directory
from media.recording_model import Recording


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir)
    from web.settings import Settings

    return Settings().data_dir


def cmd_export(args: argparse.Namespace) -> int:
    try:
        directory = session_directory(_data_dir(args), args.session)
        if args.recording is not None:
            numbers = [args.recording]
        else:
            numbers = recording_numbers(directory)
            if len(numbers) > 1 and args.output is not None:
                print(
                    f"seoulbridge: {args.session} has {len(numbers)} recordings "
                    f"({', '.join(map(str, numbers))}): choose one with --recording N, "
                    "or leave out -o to export each next to its files"
                )
                return 2
        if not numbers:
            print(f"seoulbridge: {args.session} has no recordings")
            return 1
        outputs = [export_recording(directory, n, args.output) for n in numbers]
    except MediaError as exc:
        print(f"seoulbridge: {exc}")
        return 1
    for output in outputs:
        print(output)
    return 0


def _describe(room: str, recording: Recording) -> str:
    ended = recording.ended_at
    length = f"{(ended - recording.started_at).total_seconds():.0f} s" if ended else "?"
    people = sorted({t.participant_id for t in recording.tracks()})
    return (
        f"{room}\t#{recording.number}\t{recording.started_at.isoformat(timespec='seconds')}\t"
        f"{recording.stop_reason or 'not stopped'}\t{length}\t"
        f"{len(recording.segments)} segment{'' if len(recording.segments) == 1 else 's'}\t"
        f"{', '.join(people)}"
    )


def cmd_list(args: argparse.Namespace) -> int:
    root = _data_dir(args) / RECORDINGS_DIR
    rooms = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for directory in rooms:
        try:
            manifest = read_manifest(directory)
        except (MediaError, ValueError, TypeError) as exc:
            print(f"{directory.name}\t(unreadable manifest: {exc})")
            continue
        for recording in manifest.recordings:
            print(_describe(manifest.room_id, recording))
    return 0


def register(subparsers: Any) -> None:
    """Add ``recording export ROOM`` and ``recording list`` to the CLI."""
    recording = subparsers.add_parser("recording", help="recorded sessions").add_subparsers(
        dest="recording_command", required=True
    )
    export = recording.add_parser(
        "export",
        help="make one composite WebM per recording of a room (transcodes, offline)",
        description=(
            "One WebM per recording: a tile per person, audio and video in step; pauses and "
            "restarts show as black and silence. Without --recording, every recording of the "
            "room is exported to DATA_DIR/recordings/ROOM/recording-N.webm."
        ),
    )
    export.add_argument("session", help="room id (a directory under DATA_DIR/recordings)")
    export.add_argument(
        "-r", "--recording", type=int, help="which recording of the room (see 'recording list')"
    )
    export.add_argument(
        "-o", "--output", type=Path, help="output file (one recording only; default: in the room)"
    )
    export.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    export.set_defaults(func=cmd_export)
    listing = recording.add_parser(
        "list",
        help="list every recording: room, number, start, how it stopped, length, segments, people",
    )
    listing.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    listing.set_defaults(func=cmd_list)
