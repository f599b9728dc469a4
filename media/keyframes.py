"""Keyframe detection in RTP payloads, and rate-limited keyframe requests.

Like mediasoup's ``RTC::KeyFrameRequestManager`` and Janus's PLI throttling, a
publisher is asked for a keyframe when a subscriber joins or reports loss, but
never more often than ``min_interval``: requests in between are coalesced into
one delayed request, so no subscriber can flood a publisher.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from kernel.taskset import TaskSet

logger = logging.getLogger(__name__)

#: Default minimum spacing between two keyframe requests to one publisher.
DEFAULT_MIN_INTERVAL = 0.5


def is_vp8_keyframe_start(payload: bytes) -> bool:
    """True if this VP8 RTP payload starts a keyframe (RFC 7741 sections 4.2 and 4.3)."""
    if not payload:
        return False
    first = payload[0]
    start = first & 0x10
    partition_id = first & 0x0F
    if not start or partition_id != 0:
        return False
    pos = 1
    if first & 0x80:  # X: extension octet
        if len(payload) < 2:
            return False
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: one shared octet
            pos += 1
    if len(payload) <= pos:
        return False
    # VP8 frame tag: P bit (inverse keyframe flag) is bit 0 of the first byte.
    return payload[pos] & 0x01 == 0


_H264_IDR = 5
_H264_SPS = 7
_H264_STAP_A = 24
_H264_FU_A = 28


def is_h264_keyframe_start(payload: bytes) -> bool:
    """True if this H.264 RTP payload (RFC 6184) carries an SPS or the start of an IDR."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (_H264_IDR, _H264_SPS):
        return True
    if nal_type == _H264_STAP_A:
        pos = 1
        while pos + 2 < len(payload):
            size = int.from_bytes(payload[pos : pos + 2], "big")
            if size == 0 or pos + 2 >= len(payload):
                break
            if payload[pos + 2] & 0x1F in (_H264_IDR, _H264_SPS):
                return True
            pos += 2 + size
        return False
    if nal_type == _H264_FU_A and len(payload) > 1:
        fu_header = payload[1]
        return bool(fu_header & 0x80) and fu_header & 0x1F in (_H264_IDR, _H264_SPS)
    return False


def is_keyframe_start(codec_name: str, payload: bytes) -> bool:
    """Keyframe check by codec name (``VP8`` or ``H264``); audio is always decodable."""
    name = codec_name.upper()
    if name == "VP8":
        return is_vp8_keyframe_start(payload)
    if name == "H264":
        return is_h264_keyframe_start(payload)
    return True


class KeyframeRequester:
    """Sends keyframe requests to one publisher, at most one per ``min_interval``.

    ``request()`` is cheap and may be called for every subscriber PLI, every join
    and every packet dropped while a subscriber waits: calls inside the interval
    collapse into one request at its end.
    """

    def __init__(
        self,
        send: Callable[[], Awaitable[bool]],
        *,
        tasks: TaskSet,
        name: str,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._name = name
        self._min_interval = min_interval
        self._clock = clock
        self._last_sent: float | None = None
        self._wanted = asyncio.Event()
        self.sent = 0
        self.requested = 0
        self._tasks = tasks
        self._task = tasks.spawn(self._run(), name=f"keyframes {name}")

    def request(self) -> None:
        self.requested += 1
        self._wanted.set()

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            if self._last_sent is not None:
                wait = self._last_sent + self._min_interval - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._wanted.clear()
            try:
                ok = await self._send()
            except ConnectionError:
                ok = False
            if ok:
                self._last_sent = self._clock()
                self.sent += 1
                logger.debug("keyframe request sent for %s", self._name)
            else:
                # Publisher not ready yet (no SSRC seen): retry after one interval.
                await asyncio.sleep(self._min_interval)
                self._wanted.set()

    def close(self) -> None:
        """Stop sending; the owning ``TaskSet`` reaps the task."""
        self._task.cancel()

    async def aclose(self) -> None:
        await self._tasks.cancel(self._task)
