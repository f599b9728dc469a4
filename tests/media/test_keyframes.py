from __future__ import annotations

import asyncio
import itertools

from kernel.taskset import TaskSet
from media.keyframes import KeyframeRequester, is_h264_keyframe_start, is_vp8_keyframe_start


def test_vp8_keyframe_detection() -> None:
    # X=1, S=1, PID=0; I=1 with 15-bit picture id; then the frame tag (P=0: keyframe).
    assert is_vp8_keyframe_start(bytes([0x90, 0x80, 0x80, 0x01, 0x10, 0x02]))
    assert not is_vp8_keyframe_start(bytes([0x90, 0x80, 0x80, 0x01, 0x11, 0x02]))
    # Not the start of a partition.
    assert not is_vp8_keyframe_start(bytes([0x80, 0x80, 0x80, 0x01, 0x10, 0x02]))
    # No extension: descriptor is one octet.
    assert is_vp8_keyframe_start(bytes([0x10, 0x10, 0x02]))
    assert not is_vp8_keyframe_start(b"")


def test_h264_keyframe_detection() -> None:
    assert is_h264_keyframe_start(bytes([0x67, 0x42]))  # SPS
    assert is_h264_keyframe_start(bytes([0x65, 0x88]))  # IDR slice
    assert not is_h264_keyframe_start(bytes([0x41, 0x9A]))  # non-IDR slice
    assert is_h264_keyframe_start(bytes([0x7C, 0x85, 0x00]))  # FU-A start of IDR
    assert not is_h264_keyframe_start(bytes([0x7C, 0x05, 0x00]))  # FU-A middle
    stap = bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE])
    assert is_h264_keyframe_start(stap)


async def test_requests_are_coalesced_and_rate_limited() -> None:
    sent: list[float] = []
    loop = asyncio.get_running_loop()

    async def send() -> bool:
        sent.append(loop.time())
        return True

    requester = KeyframeRequester(send, tasks=TaskSet("test"), name="test", min_interval=0.2)
    try:
        started = loop.time()
        for _ in range(100):
            requester.request()
            await asyncio.sleep(0.005)  # 100 requests over >= 0.5 s
        elapsed = loop.time() - started
        await asyncio.sleep(0.25)
        # One right away, then at most one per interval (load may stretch the burst).
        assert 2 <= len(sent) <= int(elapsed / 0.2) + 2, (sent, elapsed)
        gaps = [b - a for a, b in itertools.pairwise(sent)]
        assert all(gap >= 0.19 for gap in gaps), gaps
        assert requester.requested == 100
    finally:
        await requester.aclose()


async def test_retries_until_the_publisher_is_ready() -> None:
    attempts = 0

    async def send() -> bool:
        nonlocal attempts
        attempts += 1
        return attempts >= 3

    requester = KeyframeRequester(send, tasks=TaskSet("test"), name="test", min_interval=0.05)
    try:
        requester.request()
        await asyncio.sleep(0.3)
        assert requester.sent == 1
        assert attempts == 3
    finally:
        await requester.aclose()
