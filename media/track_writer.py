"""One track remuxed (never transcoded) into a Matroska/WebM file, in its own thread.

Crash safety: FFmpeg's Matroska muxer writes a cluster when it closes, so
clusters are capped at ``CLUSTER_MS`` and every write is flushed. If the
process is killed, the file ends at the last complete cluster: ffprobe reads
it, and at most about one cluster of media is lost. A clean close also
writes the duration and cues.

The file is opened by the caller's ``open_file`` (``RecordingStorage.create_track``:
created exclusively, so nothing is ever overwritten; the seam where encryption at
rest will wrap the bytes). A write that fails — a full disk, an I/O error, a writer
that cannot keep up — stops this writer and is reported once to ``on_error`` on
the event loop; frames after that are dropped, never queued without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import queue
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import av
from av.container import OutputContainer

from media.depacketize import EncodedFrame
from media.errors import MediaError

logger = logging.getLogger(__name__)

CLUSTER_MS: Final = 500
#: Frames waiting for the disk before the writer gives up (~40 s of audio, ~60 s of video).
MAX_QUEUED: Final = 2000
_MS: Final = fractions.Fraction(1, 1000)

#: Matroska codec id per RTP codec name: (PyAV codec to describe the stream, suffix, format).
_CONTAINER: Final = {
    "VP8": ("libvpx", ".webm", "webm"),
    "OPUS": ("libopus", ".webm", "webm"),
    "H264": ("libx264", ".mkv", "matroska"),
}

FileOpener = Callable[[Path], BinaryIO]
ErrorCallback = Callable[[BaseException], None]


class TrackWriteError(MediaError):
    """A track file could not be written."""


def suffix_for(codec_name: str) -> str:
    return _CONTAINER[codec_name.upper()][1]


def supported(codec_name: str) -> bool:
    return codec_name.upper() in _CONTAINER


def _opus_head(channels: int = 2, pre_skip: int = 312, rate: int = 48_000) -> bytes:
    """The Ogg/Matroska Opus identification header (RFC 7845 section 5.1)."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, 0, 0)


def vp8_dimensions(keyframe: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 section 9.1)."""
    if len(keyframe) < 10 or keyframe[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(keyframe[6:8], "little") & 0x3FFF
    height = int.from_bytes(keyframe[8:10], "little") & 0x3FFF
    return width, height


@dataclass(frozen=True)
class _Frame:
    pts_ms: int
    data: bytes
    keyframe: bool


class TrackWriter:
    """Writes frames of one track to ``path``; ``write`` never blocks the event loop."""

    def __init__(
        self,
        path: Path,
        codec_name: str,
        clock_rate: int,
        *,
        name: str,
        open_file: FileOpener,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self.path = path
        self.codec_name = codec_name.upper()
        self._clock_rate = clock_rate
        self._open_file = open_file
        self._on_error = on_error
        self._loop = asyncio.get_running_loop()
        self._first_ts: int | None = None
        self._queue: queue.Queue[_Frame | None] = queue.Queue(maxsize=MAX_QUEUED)
        self.frames_written = 0
        self.last_pts_ms = 0
        self.error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"record {name}", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def duration_s(self) -> float:
        return self.last_pts_ms / 1000 if self.frames_written else 0.0

    def write(self, frame: EncodedFrame) -> None:
        if self.error is not None or self._closing:
            return
        if self._first_ts is None:
            self._first_ts = frame.timestamp
        pts_ms = (frame.timestamp - self._first_ts) * 1000 // self._clock_rate
        try:
            self._queue.put_nowait(_Frame(pts_ms, frame.data, frame.keyframe))
        except queue.Full:
            self._failed(
                TrackWriteError(f"{self.path.name}: the disk does not keep up with the recording")
            )

    # -- the writer thread --------------------------------------------------------------

    def _open(self, first: _Frame) -> tuple[OutputContainer, av.stream.Stream, BinaryIO]:
        codec, _, fmt = _CONTAINER[self.codec_name]
        handle = self._open_file(self.path)
        try:
            container = av.open(
                handle,
                "w",
                format=fmt,
                options={"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
            )
        except BaseException:
            handle.close()
            raise
        stream: av.stream.Stream
        if self.codec_name == "OPUS":
            audio = container.add_stream(codec, rate=48_000)
            assert isinstance(audio.codec_context, av.AudioCodecContext)
            audio.codec_context.layout = "stereo"
            audio.codec_context.extradata = _opus_head()
            stream = audio
        else:
            video = container.add_stream(codec, rate=30)
            assert isinstance(video.codec_context, av.VideoCodecContext)
            size = vp8_dimensions(first.data) if self.codec_name == "VP8" else None
            video.codec_context.width, video.codec_context.height = size or (640, 480)
            stream = video
        stream.time_base = _MS
        return container, stream, handle

    def _run(self) -> None:
        container: OutputContainer | None = None
        stream: av.stream.Stream | None = None
        handle: BinaryIO | None = None
        last_pts = -1
        while True:
            frame = self._queue.get()
            if frame is None:
                break
            if self.error is not None:
                continue  # drain: the file is given up, the owner was told
            try:
                if container is None:
                    container, stream, handle = self._open(frame)
                pts = max(frame.pts_ms, last_pts + 1)  # strictly increasing for the muxer
                packet = av.Packet(frame.data)
                assert stream is not None
                packet.stream = stream
                packet.time_base = _MS
                packet.pts = packet.dts = pts
                packet.is_keyframe = frame.keyframe
                container.mux(packet)
                last_pts = pts
                self.last_pts_ms = pts
                self.frames_written += 1
            except Exception as exc:  # a broken file must not take the call down
                logger.exception("recording %s failed", self.path)
                self._failed_in_thread(exc)
                container, handle = self._close(container, handle)
        self._close(container, handle)

    def _close(
        self, container: OutputContainer | None, handle: BinaryIO | None
    ) -> tuple[None, None]:
        try:
            if container is not None:
                container.close()
            if handle is not None:
                handle.close()
        except Exception as exc:
            logger.exception("recording %s: finishing the file failed", self.path)
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()
            self._failed_in_thread(exc)
        return None, None

    # -- failures reach the owner on the event loop -------------------------------------

    def _failed_in_thread(self, exc: BaseException) -> None:
        if self.error is not None:
            return
        self.error = exc
        if self._on_error is not None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to tell
                self._loop.call_soon_threadsafe(self._on_error, exc)

    def _failed(self, exc: BaseException) -> None:
        if self.error is not None:
            return
        self.error = exc
        logger.error("recording %s failed: %s", self.path, exc)
        if self._on_error is not None:
            self._loop.call_soon(self._on_error, exc)

    async def aclose(self) -> None:
        """Finish the file: everything queued is written, then the trailer."""
        self._closing = True
        await asyncio.to_thread(self._queue.put, None)
        await asyncio.to_thread(self._thread.join)
