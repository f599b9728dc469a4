"""Keys and secrets made once per data directory, by nodes that start together.

``make test`` started two nodes on one data directory at once: both found no transcript
key, both wrote ``transcript.tmp``, one renamed it into place and the other's rename
failed (``FileNotFoundError``: the node did not start). Had the two renames not met, each
node would have kept a key of its own, one of them sealing transcripts under a key the file
no longer held. The token secret had the same shape (and with it the audit chain's key).
"""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from interpretation.glossary import Glossary, GlossaryStore, starter_glossary
from interpretation.transcript import load_or_create_key
from kernel.private_files import create_once, replace_file
from tests.support.at_once import at_once
from web.settings import SERVING_URL_FILE, TOKEN_SECRET_FILE, Settings

NODES = 4  # at_once's threads


def test_nodes_starting_together_share_one_transcript_key(tmp_path: Path) -> None:
    for attempt in range(10):
        path = tmp_path / str(attempt) / "transcript.key"
        keys = at_once(lambda path=path: load_or_create_key(path))
        assert keys == [path.read_bytes().strip()] * NODES, attempt
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_nodes_starting_together_share_one_token_secret(tmp_path: Path) -> None:
    for attempt in range(10):
        data_dir = tmp_path / str(attempt)
        secrets = at_once(lambda d=data_dir: Settings(data_dir=d).resolved_secret())
        path = data_dir / TOKEN_SECRET_FILE
        assert secrets == [path.read_text().strip()] * NODES, attempt
        assert [p.name for p in data_dir.iterdir()] == [TOKEN_SECRET_FILE]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_empty_token_secret_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / TOKEN_SECRET_FILE).write_text("\n")
    secret = Settings(data_dir=tmp_path).resolved_secret()
    assert len(secret) >= 32 and (tmp_path / TOKEN_SECRET_FILE).read_text() == secret
    assert Settings(data_dir=tmp_path).resolved_secret() == secret


def test_two_nodes_saving_the_glossary_at_once_each_write_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "glossary.json"
    stores = [GlossaryStore(path) for _ in range(NODES)]
    glossary = starter_glossary()
    shorter = Glossary(entries=glossary.entries[:1])
    lock = threading.Lock()
    for _ in range(10):
        turn = iter(stores)

        def save(turn: Iterator[GlossaryStore] = turn) -> None:
            with lock:
                store = next(turn)
            store.replace(shorter if store is stores[0] else glossary)

        at_once(save)
        assert GlossaryStore(path).get() in (glossary, shorter)  # a whole file, either one
        assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_create_once_keeps_the_first_and_replace_file_replaces(tmp_path: Path) -> None:
    path = tmp_path / "k"
    assert create_once(path, b"first") is True
    assert create_once(path, b"second") is False
    assert path.read_bytes() == b"first" and stat.S_IMODE(path.stat().st_mode) == 0o600
    replace_file(path, b"third", mode=0o644)
    assert path.read_bytes() == b"third" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_nodes_starting_together_each_tell_the_commands_where_links_go(tmp_path: Path) -> None:
    """``serve`` writes the serving URL at start: the rename of a shared temporary name
    failed when two nodes started at once (one of them did not start)."""
    for attempt in range(10):
        data_dir = tmp_path / str(attempt)
        at_once(lambda d=data_dir: Settings(data_dir=d).write_serving_url())
        assert Settings(data_dir=data_dir).links_base_url().startswith("http"), attempt
        assert [p.name for p in data_dir.iterdir()] == [SERVING_URL_FILE]


def test_a_token_secret_another_node_writes_meanwhile_is_the_one_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The moment the race of the test above needs, made on purpose: another node's
    secret appears after this one looked and found none. A second look then took it for
    an empty file and replaced it (a fresh-clone run met it: two secrets, two audit
    chains)."""
    import web.settings as settings_module

    path = tmp_path / TOKEN_SECRET_FILE
    theirs = "t" * 64
    made = settings_module.secrets.token_urlsafe

    def meanwhile(n: int) -> str:
        create_once(path, theirs.encode("ascii"))  # the other node, right now
        return made(n)

    monkeypatch.setattr(settings_module.secrets, "token_urlsafe", meanwhile)
    assert Settings(data_dir=tmp_path).resolved_secret() == theirs
    assert path.read_text() == theirs
