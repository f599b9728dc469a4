"""One track remuxed (never transcoded) into a Matroska/WebM file, in its own thread.

Crash safety: FFmpeg's Matroska muxer writes a cluster when it closes, so
clusters are capped at ``CLUSTER_MS`` and every write is flushed. If the
process is killed, the file ends at the last complete cluster: ffprobe reads
it, and at most about one cluster of media is lost. A clean close also
writes the duration and cues.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import av
from av.container import OutputContainer

from media.depacketize import EncodedFrame

logger = logging.getLogger(__name__)

CLUSTER_MS: Final = 500
_MS: Final = fractions.Fraction(1, 1000)

#: Matroska codec id per RTP codec name: (PyAV codec to describe the stream, file suffix).
_CONTAINER: Final = {
    "VP8": ("libvpx", ".webm", "webm"),
    "OPUS": ("libopus", ".webm", "webm"),
    "H264": ("libx264", ".mkv", "matroska"),
}


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

    def __init__(self, path: Path, codec_name: str, clock_rate: int, *, name: str) -> None:
        self.path = path
        self.codec_name = codec_name.upper()
        self._clock_rate = clock_rate
        self._first_ts: int | None = None
        self._queue: queue.Queue[_Frame | None] = queue.Queue()
        self.frames_written = 0
        self.last_pts_ms = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"record {name}", daemon=True)
        self._thread.start()

    def write(self, frame: EncodedFrame) -> None:
        if self._first_ts is None:
            self._first_ts = frame.timestamp
        pts_ms = (frame.timestamp - self._first_ts) * 1000 // self._clock_rate
        self._queue.put(_Frame(pts_ms, frame.data, frame.keyframe))

    def _open(self, first: _Frame) -> tuple[OutputContainer, av.stream.Stream]:
        codec, _, fmt = _CONTAINER[self.codec_name]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(
            str(self.path),
            "w",
            format=fmt,
            options={"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
        )
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
        return container, stream

    def _run(self) -> None:
        container: OutputContainer | None = None
        stream: av.stream.Stream | None = None
        last_pts = -1
        try:
            while True:
                frame = self._queue.get()
                if frame is None:
                    break
                if container is None:
                    container, stream = self._open(frame)
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
            self.error = str(exc)
            logger.exception("recording %s failed", self.path)
        finally:
            if container is not None:
                container.close()

    async def aclose(self) -> None:
        """Finish the file: everything queued is written, then the trailer."""
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
