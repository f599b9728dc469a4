"""``seoulbridge recording ...``: list recorded sessions and export a composite file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from media.errors import MediaError
from media.export import export_composite
from media.recorder import RECORDINGS_DIR, read_manifest, session_directory


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir)
    from web.settings import Settings

    return Settings().data_dir


def cmd_export(args: argparse.Namespace) -> int:
    try:
        directory = session_directory(_data_dir(args), args.session)
        output = export_composite(directory, args.output)
    except MediaError as exc:
        print(f"seoulbridge: {exc}")
        return 1
    print(output)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    root = _data_dir(args) / RECORDINGS_DIR
    sessions = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for directory in sessions:
        try:
            manifest = read_manifest(directory)
        except (MediaError, ValueError, TypeError) as exc:
            print(f"{directory.name}\t(unreadable manifest: {exc})")
            continue
        people = sorted({t.participant_id for t in manifest.tracks})
        print(
            f"{manifest.session_id}\t{manifest.room_id}\t{manifest.started_at}\t"
            f"{manifest.stopped_at or 'not stopped'}\t{len(manifest.tracks)} tracks\t"
            f"{', '.join(people)}"
        )
    return 0


def register(subparsers: Any) -> None:
    """Add ``recording export SESSION`` and ``recording list`` to the CLI."""
    recording = subparsers.add_parser("recording", help="recorded sessions").add_subparsers(
        dest="recording_command", required=True
    )
    export = recording.add_parser(
        "export", help="make one composite WebM of a session (transcodes, offline)"
    )
    export.add_argument("session", help="session id (a directory under DATA_DIR/recordings)")
    export.add_argument("-o", "--output", type=Path, help="output file (default: in the session)")
    export.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    export.set_defaults(func=cmd_export)
    listing = recording.add_parser("list", help="list recorded sessions")
    listing.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    listing.set_defaults(func=cmd_list)
