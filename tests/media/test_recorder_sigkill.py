"""A recording stays playable when the server process is killed mid-session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import probe
import pytest

from media.recorder import read_manifest

pytestmark = pytest.mark.timeout(60)

CHILD = Path(__file__).with_name("record_child.py")


def test_files_survive_sigkill(tmp_path: Path) -> None:
    directory = tmp_path / "recordings" / "killed"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "RECORDING", child.stderr.read() if child.stderr else line
        time.sleep(4.0)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        killed_at = time.time()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    manifest = read_manifest(directory)
    assert {t.kind for t in manifest.tracks} == {"video", "audio"}
    for track in manifest.tracks:
        started = datetime.fromisoformat(track.started_at).timestamp()
        expected = killed_at - started
        codecs, last, count = probe.streams_and_last_pts(directory / track.file)
        assert codecs == (["vp8"] if track.kind == "video" else ["opus"])
        assert count > 0
        assert abs(last - expected) < 2.0, (track.file, last, expected)
        assert probe.decodes_cleanly(directory / track.file), track.file
