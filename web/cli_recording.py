"""``seoulbridge recording ...``: list, export (composite) and decrypt recordings.

Recordings are encrypted at rest; these commands read them with the deployment's
keyring (``web.recording_keys``). ``export`` and ``decrypt`` open a recording's
media and are audited first (``web.cli_privacy.audit_now``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from media.errors import MediaError
from media.export import export_recording, recording_numbers
from media.recording_files import RECORDINGS_DIR, read_manifest, session_directory
from media.recording_model import Recording
from web.audit import AuditAction, AuditRecord
from web.cli_privacy import add_data_flags, audit_now, cli_actor, settings_from, storage_of


def cmd_export(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        storage = storage_of(settings)
        directory = session_directory(settings.data_dir, args.session)
        if args.recording is not None:
            numbers = [args.recording]
        else:
            numbers = recording_numbers(directory, storage)
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
        actor, source = cli_actor()
        audit_now(
            settings,
            *(
                AuditRecord(
                    action=AuditAction.RECORDING_EXPORT,
                    actor=actor,
                    source=source,
                    target=args.session,
                    detail={"recording": n},
                )
                for n in numbers
            ),
        )
        outputs = [export_recording(directory, n, args.output, storage) for n in numbers]
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


def cmd_decrypt(args: argparse.Namespace) -> int:
    """The plain bytes of one track file, to standard output or ``-o`` (never a temp file)."""
    settings = settings_from(args)
    path: Path = args.file
    if not path.is_file():
        print(f"seoulbridge: {path} is not a file", file=sys.stderr)
        return 1
    actor, source = cli_actor()
    try:
        storage = storage_of(settings)
        audit_now(
            settings,
            AuditRecord(
                action=AuditAction.RECORDING_DECRYPT,
                actor=actor,
                source=source,
                target=path.parent.name,
                detail={"file": path.name, "to": "file" if args.output else "stdout"},
            ),
        )
        with storage.open_track(path) as plain:
            if args.output is None:
                shutil.copyfileobj(plain, sys.stdout.buffer, 1 << 20)
                sys.stdout.buffer.flush()
            else:
                with open(args.output, "xb") as out:
                    shutil.copyfileobj(plain, out, 1 << 20)
    except (MediaError, FileExistsError) as exc:
        print(f"seoulbridge: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0  # the reader (ffprobe, head) had enough
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    storage = storage_of(settings)
    root = settings.data_dir / RECORDINGS_DIR
    rooms = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for directory in rooms:
        try:
            manifest = read_manifest(directory, storage)
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
    add_data_flags(export)
    export.set_defaults(func=cmd_export)
    decrypt = recording.add_parser(
        "decrypt",
        help="write the plain bytes of one encrypted track file to stdout (or -o FILE)",
        description=(
            "For players and ffprobe: 'seoulbridge recording decrypt FILE | ffprobe -i -'. "
            "Audited. Nothing is written to disk unless -o names a (new) file."
        ),
    )
    decrypt.add_argument("file", type=Path, help="a track file under DATA_DIR/recordings/ROOM/")
    decrypt.add_argument("-o", "--output", type=Path, help="write here instead (must not exist)")
    add_data_flags(decrypt)
    decrypt.set_defaults(func=cmd_decrypt)
    listing = recording.add_parser(
        "list",
        help="list every recording: room, number, start, how it stopped, length, segments, people",
    )
    add_data_flags(listing)
    listing.set_defaults(func=cmd_list)
