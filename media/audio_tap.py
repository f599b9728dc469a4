"""Audio tap on the encoded path: Opus RTP payloads to 16 kHz mono s16le PCM.

The forwarder hands every Opus payload to ``feed`` without waiting; decoding
and resampling (PyAV) run in a worker thread when the consumer pulls
``chunks()``. If the consumer falls behind, the oldest payloads are dropped,
so captions may skip but forwarding never slows down.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final

import av
from aiortc.rtp import RtpPacket

from media.forwarding import TAP_SAMPLE_RATE

logger = logging.getLogger(__name__)

#: Payloads kept while the consumer is busy: 10 s of 20 ms Opus frames.
MAX_PENDING: Final = 500


class OpusDecoder:
    """Opus payloads to 16 kHz mono s16le bytes. Blocking: call from a worker thread."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("opus", "r")
        self._codec.sample_rate = 48_000
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=TAP_SAMPLE_RATE)

    def decode(self, payloads: list[bytes]) -> bytes:
        out = bytearray()
        for payload in payloads:
            try:
                frames = self._codec.decode(av.Packet(payload))
            except av.FFmpegError as exc:
                logger.debug("opus tap: undecodable payload: %s", exc)
                continue
            for frame in frames:
                for resampled in self._resampler.resample(frame):
                    out += bytes(resampled.planes[0])[: resampled.samples * 2]
        return bytes(out)


class OpusAudioTap:
    """``media.forwarding.AudioTap`` fed by the RTP forwarder's packet listener."""

    def __init__(self, publication_id: str, max_pending: int = MAX_PENDING) -> None:
        self.publication_id = publication_id
        self._pending: collections.deque[bytes] = collections.deque(maxlen=max_pending)
        self._ready = asyncio.Event()
        self._ended = False
        self._on_close: list[Callable[[], None]] = []
        self.dropped = 0

    def on_close(self, callback: Callable[[], None]) -> None:
        self._on_close.append(callback)

    def feed(self, packet: RtpPacket, codec_name: str) -> None:
        """Packet listener: never blocks, never raises."""
        if self._ended or codec_name.lower() != "opus" or not packet.payload:
            return
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(packet.payload)
        self._ready.set()

    def end(self) -> None:
        """The publication is gone: ``chunks()`` finishes after what is pending."""
        self._ended = True
        self._ready.set()
        for callback in self._on_close:
            callback()
        self._on_close.clear()

    async def chunks(self) -> AsyncIterator[bytes]:
        decoder = await asyncio.to_thread(OpusDecoder)
        while True:
            if not self._pending:
                if self._ended:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            batch = list(self._pending)
            self._pending.clear()
            pcm = await asyncio.to_thread(decoder.decode, batch)
            if pcm:
                yield pcm

    async def aclose(self) -> None:
        self.end()
