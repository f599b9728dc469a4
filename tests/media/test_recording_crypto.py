"""The sealed file format: exact round trip, crash tails, tampering, keys and rotation.

Real PyAV muxing into real files; the only thing made up is the media (random
Opus-sized payloads), and damage is done to the bytes on disk as a crash or an
attacker would.
"""

from __future__ import annotations

import fractions
import io
import os
import random
import stat
import struct
from pathlib import Path

import av
import pytest

from media.recording_crypto import (
    MAGIC,
    DecryptionError,
    KeyRing,
    RecordingKeyError,
    SealedReader,
    SealedWriter,
    key_id_of,
    new_key,
    open_sealed,
    seal_bytes,
)
from media.recording_files import RecordingStorage
from web.recording_keys import (
    KEYRING_FILE,
    KeySource,
    files_by_key,
    load_keyring,
    parse_inline,
    rotate,
)

_MS = fractions.Fraction(1, 1000)


class _Keep(io.BytesIO):
    def close(self) -> None:  # PyAV closes what it was given; keep the bytes readable
        pass


def _mux(target: object, packets: int, seed: int = 7) -> None:
    """A real WebM (Opus) of ``packets`` 20 ms packets, bit-exact (no random segment id)."""
    rng = random.Random(seed)
    options = {"cluster_time_limit": "500", "flush_packets": "1", "fflags": "+bitexact"}
    container = av.open(target, "w", format="webm", options=options)
    stream = container.add_stream("libopus", rate=48_000)
    stream.codec_context.layout = "stereo"  # type: ignore[attr-defined]
    stream.codec_context.extradata = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, 48000, 0, 0)
    stream.time_base = _MS
    for i in range(packets):
        packet = av.Packet(b"\xfc" + rng.randbytes(119))  # a CELT 20 ms frame's TOC byte
        packet.stream = stream
        packet.time_base = _MS
        packet.pts = packet.dts = i * 20
        packet.is_keyframe = True
        container.mux(packet)
    container.close()


def _keys(*ids: str) -> KeyRing:
    return KeyRing(current=ids[0], keys={i: new_key() for i in ids})


def _sealed(path: Path, keys: KeyRing, packets: int = 300) -> bytes:
    """Write the same media sealed to ``path`` and plain in memory; the plain bytes."""
    plain = _Keep()
    _mux(plain, packets)
    writer = SealedWriter(open(path, "xb", buffering=0), keys)
    _mux(writer, packets)
    writer.close()
    return plain.getvalue()


def _packets(reader: SealedReader) -> int:
    with av.open(reader, "r") as container:
        return sum(1 for p in container.demux() if p.pts is not None)


def test_decrypts_to_exactly_the_bytes_the_muxer_wrote(tmp_path: Path) -> None:
    keys = _keys("k1")
    path = tmp_path / "a.webm"
    plain = _sealed(path, keys)
    data = path.read_bytes()
    assert data.startswith(MAGIC) and b"OpusHead" not in data and b"webm" not in data
    with SealedReader(path, keys) as reader:
        assert reader.complete
        assert reader.read() == plain  # header rewritten at close included
    with SealedReader(path, keys) as reader:
        assert _packets(reader) == 300


def test_a_crash_keeps_every_whole_record_and_drops_a_torn_one(tmp_path: Path) -> None:
    keys = _keys("k1")
    whole = tmp_path / "whole.webm"
    _sealed(whole, keys, packets=500)
    data = whole.read_bytes()
    for cut in (len(data) // 3, len(data) // 2 + 5, len(data) - 20):
        torn = tmp_path / f"torn-{cut}.webm"
        torn.write_bytes(data[:cut])
        with SealedReader(torn, keys) as reader:
            assert not reader.complete
            count = _packets(reader)
        # only the FINAL record is missing in the last cut: every packet is there
        assert 0 < count <= 500 if cut == len(data) - 20 else 0 < count < 500, cut
    # A killed process wrote a complete last record whose bytes never reached the disk.
    garbled = bytearray(data[: len(data) // 2])
    garbled[-3] ^= 0xFF
    (tmp_path / "garbled.webm").write_bytes(bytes(garbled))
    with SealedReader(tmp_path / "garbled.webm", keys) as reader:
        assert not reader.complete and _packets(reader) > 0


def test_altered_or_reordered_records_do_not_open(tmp_path: Path) -> None:
    keys = _keys("k1")
    path = tmp_path / "a.webm"
    _sealed(path, keys)
    data = bytearray(path.read_bytes())
    data[200] ^= 0x01  # inside the first record
    altered = tmp_path / "altered.webm"
    altered.write_bytes(bytes(data))
    with SealedReader(altered, keys) as reader, pytest.raises(DecryptionError):
        reader.read()

    # The same record moved to another offset (its head rewritten) does not open either.
    original = bytearray(path.read_bytes())
    header = len(MAGIC) + 1 + len("k1") + 16 + 12 + 48
    original[header + 4 : header + 12] = (999).to_bytes(8, "big")
    moved = tmp_path / "moved.webm"
    moved.write_bytes(bytes(original))
    with SealedReader(moved, keys) as reader, pytest.raises(DecryptionError):
        reader.verify()  # (what a player reads may not reach the record: verify opens all)
    with SealedReader(path, keys) as reader:
        assert reader.verify() > 10


def test_rotation_seals_new_files_under_the_new_key_and_old_ones_still_open(
    tmp_path: Path,
) -> None:
    source = KeySource(path=tmp_path / KEYRING_FILE, managed=True)
    first = load_keyring(source)
    assert stat.S_IMODE((tmp_path / KEYRING_FILE).stat().st_mode) == 0o600
    (tmp_path / "recordings" / "r1").mkdir(parents=True)
    old = tmp_path / "recordings" / "r1" / "old.webm"
    _sealed(old, first)

    new_id = rotate(source)
    second = load_keyring(source)
    assert second.current == new_id != first.current
    assert set(second.keys) == {first.current, new_id}
    assert stat.S_IMODE((tmp_path / KEYRING_FILE).stat().st_mode) == 0o600
    new = tmp_path / "recordings" / "r1" / "new.webm"
    _sealed(new, second)

    assert key_id_of(old) == first.current and key_id_of(new) == new_id
    for path in (old, new):
        with SealedReader(path, second) as reader:
            assert reader.complete and _packets(reader) == 300
    assert files_by_key(tmp_path / "recordings") == {first.current: 1, new_id: 1}
    # Without the old key, the old file says which key it needs.
    only_new = KeyRing(current=new_id, keys={new_id: second.keys[new_id]})
    with pytest.raises(RecordingKeyError, match=first.current):
        SealedReader(old, only_new)


def test_a_different_key_under_the_same_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.webm"
    _sealed(path, _keys("k1"))
    with pytest.raises(RecordingKeyError, match="does not open"):
        SealedReader(path, _keys("k1"))


def test_inline_keys_and_bad_ones() -> None:
    ring = parse_inline("b:" + "A" * 43 + "=, a:" + "B" * 43 + "=")
    assert ring.current == "b" and set(ring.keys) == {"a", "b"}
    with pytest.raises(RecordingKeyError, match="base64"):
        parse_inline("a:???")
    with pytest.raises(RecordingKeyError, match="32"):
        parse_inline("a:QUJD")
    with pytest.raises(RecordingKeyError):
        parse_inline("no-colon")


def test_manifest_is_sealed_and_its_temp_file_too(tmp_path: Path) -> None:
    keys = _keys("k1")
    storage = RecordingStorage(keys)
    text = '{"format": 2, "room_id": "room-x", "recordings": [], "secret": "Kim Yui"}'
    storage.write_manifest(tmp_path, text)
    on_disk = (tmp_path / "manifest.json").read_bytes()
    assert on_disk.startswith(MAGIC) and b"Kim Yui" not in on_disk
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp left
    assert storage.manifest_text(tmp_path) == text
    assert open_sealed(tmp_path / "manifest.json", keys).decode() == text
    # a plain manifest from before encryption still reads
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.json").write_text(text)
    assert storage.manifest_text(tmp_path / "old") == text
    assert len(seal_bytes(b"x", keys)) < 200
    # sealed, and no keyring given: says what to do
    with pytest.raises(RecordingKeyError, match="keyring"):
        RecordingStorage().manifest_text(tmp_path)


def test_writer_never_leaves_plain_bytes_even_mid_file(tmp_path: Path) -> None:
    keys = _keys("k1")
    path = tmp_path / "mid.webm"
    writer = SealedWriter(open(path, "xb", buffering=0), keys)
    writer.write(b"OpusHead" * 100)
    os.sync()
    assert b"OpusHead" not in path.read_bytes()  # on disk before any close
    writer.close()


def test_nodes_starting_together_on_one_data_directory_share_one_key(tmp_path: Path) -> None:
    """Two nodes on a shared data directory started at once (``make test`` saw it): each
    found no keyring, each wrote a new one, the later file replaced the earlier, and one
    node sealed a recording under a key the keyring no longer held; the node that took
    over the room could not read its manifest. The first keyring written is everyone's."""
    from tests.support.at_once import at_once

    for attempt in range(10):
        directory = tmp_path / str(attempt)
        source = KeySource(path=directory / KEYRING_FILE, managed=True)
        rings: list[KeyRing] = at_once(lambda source=source: load_keyring(source), 4)
        on_disk = load_keyring(source)
        assert [ring.current for ring in rings] == [on_disk.current] * 4, attempt
        assert [p.name for p in directory.iterdir()] == [KEYRING_FILE]  # no temporary left
