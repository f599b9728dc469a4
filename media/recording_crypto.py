"""Recordings encrypted at rest: an append-only log of AES-GCM records, readable after a crash.

A recording file is written by PyAV's Matroska muxer, which appends one cluster at
a time and, on a clean close, seeks back to fill in the header (duration, cues).
Here every ``write()`` the muxer makes becomes one sealed *record* appended to the
file, saying where in the plain file its bytes go. Nothing is ever rewritten in
place, so a killed process leaves every record it finished intact; reading
replays the records in order and gives back exactly the bytes the muxer wrote —
the whole file after a clean close, the file up to its last cluster after a kill.

Layout (all integers big-endian)::

    header  MAGIC (8) | key id length (1) | key id (ASCII) | file id (16)
            | wrap nonce (12) | wrapped file key (32 + 16)
    record  ciphertext length (4) | offset (8) | flags (1) | ciphertext (+ 16-byte tag)

* Each file has its own random 256-bit key, *wrapped* (AES-GCM) by the deployment
  key named in the header; the header is the wrapping's associated data, so a
  header edited to point at another key or file does not open.
* Record ``n`` is sealed with the file key under the nonce ``n`` (96 bits); its
  associated data is the file id, ``n``, the offset, the flags and the length, so
  records cannot be moved, reordered, replayed from another file or relabelled.
  A file key seals at most one file, so counter nonces never repeat.
* ``FINAL`` marks the last record of a cleanly closed file; a file without one
  was interrupted (its tail, a record cut short, is dropped).

Everything here blocks (AES runs in OpenSSL, with the GIL released for large
records); call it from a writer thread or ``asyncio.to_thread``.
"""

from __future__ import annotations

import bisect
import io
import os
import re
import secrets
import struct
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from media.errors import MediaError

MAGIC: Final = b"SBENC01\n"
KEY_BYTES: Final = 32
_NONCE: Final = 12
_TAG: Final = 16
_FILE_ID: Final = 16
_RECORD_HEAD: Final = struct.Struct(">IQB")
#: flags of a record
FINAL: Final = 0x01
#: the largest record a reader accepts (a muxer write is far smaller)
MAX_RECORD: Final = 64 * 1024 * 1024
_KEY_ID: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CACHED_RECORDS: Final = 8


class RecordingKeyError(MediaError):
    """A recording key is missing, malformed, or does not open a file."""


class DecryptionError(MediaError):
    """An encrypted file is damaged or was altered (not merely cut short by a crash)."""


def check_key_id(key_id: str) -> str:
    if not _KEY_ID.match(key_id):
        raise RecordingKeyError(
            f"recording key id {key_id!r} must be 1-64 letters, digits, '.', '_' or '-'"
        )
    return key_id


@dataclass(frozen=True)
class KeyRing:
    """The deployment's recording keys: new files are sealed under ``current``, any opens."""

    current: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            check_key_id(key_id)
            if len(key) != KEY_BYTES:
                raise RecordingKeyError(
                    f"recording key {key_id!r} has {len(key)} bytes; it must have {KEY_BYTES}"
                )
        if self.current not in self.keys:
            raise RecordingKeyError(f"the current recording key {self.current!r} is not given")

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise RecordingKeyError(
                f"this file is sealed under recording key {key_id!r}, which is not in the "
                f"keyring (known: {', '.join(sorted(self.keys))}); add the old key back to "
                "the keyring to read it"
            ) from None


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def is_encrypted(path: Path) -> bool:
    """Whether ``path`` starts like a sealed file (cheap: reads 8 bytes)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


@dataclass(frozen=True)
class _Header:
    key_id: str
    file_id: bytes
    wrap_nonce: bytes
    wrapped: bytes

    def prefix(self) -> bytes:
        kid = self.key_id.encode("ascii")
        return MAGIC + bytes([len(kid)]) + kid + self.file_id

    def encode(self) -> bytes:
        return self.prefix() + self.wrap_nonce + self.wrapped

    @classmethod
    def new(cls, keys: KeyRing) -> tuple[_Header, bytes]:
        file_key = AESGCM.generate_key(bit_length=256)
        draft = cls(keys.current, secrets.token_bytes(_FILE_ID), secrets.token_bytes(_NONCE), b"")
        wrapped = AESGCM(keys.key(keys.current)).encrypt(draft.wrap_nonce, file_key, draft.prefix())
        return cls(draft.key_id, draft.file_id, draft.wrap_nonce, wrapped), file_key

    @classmethod
    def read(cls, handle: BinaryIO, name: str) -> _Header:
        magic = handle.read(len(MAGIC))
        if magic != MAGIC:
            raise DecryptionError(f"{name} is not an encrypted recording file")
        size = handle.read(1)
        kid = handle.read(size[0]) if size else b""
        rest = handle.read(_FILE_ID + _NONCE + KEY_BYTES + _TAG)
        if not size or len(kid) != size[0] or len(rest) != _FILE_ID + _NONCE + KEY_BYTES + _TAG:
            raise DecryptionError(f"{name}: the header is cut short")
        try:
            key_id = check_key_id(kid.decode("ascii"))
        except (UnicodeError, RecordingKeyError):
            raise DecryptionError(f"{name}: the header names no valid key") from None
        return cls(key_id, rest[:_FILE_ID], rest[_FILE_ID : _FILE_ID + _NONCE], rest[-48:])

    def unwrap(self, keys: KeyRing, name: str) -> bytes:
        try:
            return AESGCM(keys.key(self.key_id)).decrypt(
                self.wrap_nonce, self.wrapped, self.prefix()
            )
        except InvalidTag:
            raise RecordingKeyError(
                f"{name}: recording key {self.key_id!r} does not open this file "
                "(a different key under the same id, or an altered header)"
            ) from None


def _aad(file_id: bytes, counter: int, offset: int, flags: int, length: int) -> bytes:
    return file_id + struct.pack(">QQBI", counter, offset, flags, length)


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(_NONCE, "big")


def key_id_of(path: Path) -> str:
    """The id of the deployment key that seals ``path``."""
    with open(path, "rb") as handle:
        return _Header.read(handle, path.name).key_id


class SealedWriter(io.RawIOBase):
    """A write-only, seekable file whose every write is appended as one sealed record.

    ``raw`` is an unbuffered file opened for writing (created exclusively by the
    caller); each record reaches it in one piece, so a crash loses at most the
    record being written. ``close()`` appends an empty ``FINAL`` record.
    """

    def __init__(self, raw: BinaryIO, keys: KeyRing, *, close_raw: bool = True) -> None:
        super().__init__()
        self._raw = raw
        self._close_raw = close_raw
        header, file_key = _Header.new(keys)
        self._file_id = header.file_id
        self._aead = AESGCM(file_key)
        self._counter = 0
        self._pos = 0
        self._size = 0
        self.key_id = header.key_id
        self._put(header.encode())

    def _put(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._raw.write(view)
            if written is None or written <= 0:
                raise OSError("the recording file took no bytes")
            view = view[written:]

    def _seal(self, data: bytes, flags: int) -> None:
        length = len(data) + _TAG
        aad = _aad(self._file_id, self._counter, self._pos, flags, length)
        sealed = self._aead.encrypt(_nonce(self._counter), data, aad)
        self._put(_RECORD_HEAD.pack(length, self._pos, flags) + sealed)
        self._counter += 1

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed recording file")
        chunk = bytes(data)
        if not chunk:
            return 0
        self._seal(chunk, 0)
        self._pos += len(chunk)
        self._size = max(self._size, self._pos)
        return len(chunk)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        elif whence == os.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"unsupported whence {whence}")
        if target < 0:
            raise ValueError("negative seek position")
        self._pos = target
        return target

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._seal(b"", FINAL)
        finally:
            super().close()
            if self._close_raw:
                self._raw.close()


@dataclass
class _Extent:
    start: int
    end: int
    record: int
    #: where the extent's first byte is inside the record's plaintext
    skip: int


@dataclass
class _Record:
    position: int  # of its ciphertext in the file
    length: int
    offset: int
    flags: int


@dataclass
class _Layout:
    records: list[_Record] = field(default_factory=list)
    extents: list[_Extent] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    size: int = 0

    def place(self, index: int, offset: int, length: int) -> None:
        """Record ``index`` covers ``[offset, offset + length)``, over whatever was there."""
        if length == 0:
            return
        end = offset + length
        self.size = max(self.size, end)
        new = _Extent(offset, end, index, 0)
        if not self.extents or offset >= self.extents[-1].end:
            self.extents.append(new)
            self.starts.append(offset)
            return
        kept: list[_Extent] = []
        first = max(0, bisect.bisect_right(self.starts, offset) - 1)
        last = first
        while last < len(self.extents) and self.extents[last].start < end:
            old = self.extents[last]
            if old.end > offset:
                if old.start < offset:
                    kept.append(_Extent(old.start, offset, old.record, old.skip))
                if old.end > end:
                    kept.append(_Extent(end, old.end, old.record, old.skip + end - old.start))
            else:
                kept.append(old)
            last += 1
        kept.append(new)
        kept.sort(key=lambda e: e.start)
        self.extents[first:last] = kept
        self.starts[first:last] = [e.start for e in kept]


class SealedReader(io.RawIOBase):
    """The plain bytes of a sealed file, read-only and seekable (PyAV reads from it).

    Opening scans the record heads (no decryption but the last record's); records
    are opened as they are read, a few kept in memory. ``complete`` says whether
    the file was closed cleanly. A record that fails to open in the middle of the
    file raises ``DecryptionError``; a torn last record (a crash) is dropped.
    """

    def __init__(self, path: Path, keys: KeyRing) -> None:
        super().__init__()
        self.name_for_errors = path.name
        self._handle: BinaryIO = open(path, "rb")
        try:
            header = _Header.read(self._handle, path.name)
            self.key_id = header.key_id
            self._file_id = header.file_id
            self._aead = AESGCM(header.unwrap(keys, path.name))
            self._cache: OrderedDict[int, bytes] = OrderedDict()
            self._layout = self._scan()
        except BaseException:
            self._handle.close()
            raise
        self._pos = 0
        self.complete = bool(self._layout.records) and bool(self._layout.records[-1].flags & FINAL)

    def _scan(self) -> _Layout:
        records: list[_Record] = []
        handle = self._handle
        total = os.fstat(handle.fileno()).st_size
        position = handle.tell()
        while True:
            head = handle.read(_RECORD_HEAD.size)
            if len(head) < _RECORD_HEAD.size:
                break
            length, offset, flags = _RECORD_HEAD.unpack(head)
            body = position + _RECORD_HEAD.size
            if length < _TAG or length > MAX_RECORD or body + length > total:
                break  # cut short by a crash (or garbage after it): the tail is dropped
            records.append(_Record(body, length, offset, flags))
            if flags & FINAL:
                break
            position = body + length
            handle.seek(position)
        layout = _Layout(records=records)
        if records:
            # The last record says whether the file is complete (FINAL), and a killed
            # process may have torn it: open it now, and drop it if it is torn.
            try:
                self._open(layout, len(records) - 1)
            except DecryptionError:
                if records[-1].flags & FINAL:
                    raise
                records.pop()
        for index, record in enumerate(records):
            layout.place(index, record.offset, record.length - _TAG)
        return layout

    def _open(self, layout: _Layout, index: int) -> bytes:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        record = layout.records[index]
        self._handle.seek(record.position)
        sealed = self._handle.read(record.length)
        aad = _aad(self._file_id, index, record.offset, record.flags, record.length)
        try:
            plain = self._aead.decrypt(_nonce(index), sealed, aad)
        except InvalidTag:
            raise DecryptionError(
                f"{self.name_for_errors}: record {index} does not open: the file was "
                "damaged or altered"
            ) from None
        self._cache[index] = plain
        if len(self._cache) > _CACHED_RECORDS:
            self._cache.popitem(last=False)
        return plain

    @property
    def size(self) -> int:
        return self._layout.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"unsupported whence {whence}")
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed recording file")
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        parts: list[bytes] = []
        while self._pos < end:
            layout = self._layout
            at = bisect.bisect_right(layout.starts, self._pos) - 1
            extent = layout.extents[at] if at >= 0 else None
            if extent is None or extent.end <= self._pos:
                # a hole never written: zeros, as a sparse file reads
                following = layout.starts[at + 1] if at + 1 < len(layout.starts) else end
                stop = min(end, following)
                parts.append(bytes(stop - self._pos))
                self._pos = stop
                continue
            plain = self._open(layout, extent.record)
            stop = min(end, extent.end)
            begin = extent.skip + self._pos - extent.start
            parts.append(plain[begin : begin + stop - self._pos])
            self._pos = stop
        return b"".join(parts)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def verify(self) -> int:
        """Open every record, shadowed ones too; how many. ``DecryptionError`` if one fails."""
        for index in range(len(self._layout.records)):
            self._open(self._layout, index)
        return len(self._layout.records)

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The whole plain file from the start, ``size`` bytes at a time."""
        self.seek(0)
        while chunk := self.read(size):
            yield chunk

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
            self._cache.clear()
        super().close()


def seal_bytes(data: bytes, keys: KeyRing) -> bytes:
    """``data`` as one sealed file image (for small files written whole: the manifest)."""
    sink = io.BytesIO()
    with SealedWriter(sink, keys, close_raw=False) as writer:
        writer.write(data)
    return sink.getvalue()


def open_sealed(path: Path, keys: KeyRing) -> bytes:
    """The whole plain content of a small sealed file; it must have been closed cleanly."""
    with SealedReader(path, keys) as reader:
        if not reader.complete:
            raise DecryptionError(f"{path.name} is cut short")
        return reader.read()
