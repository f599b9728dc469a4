"""The Opus tap of the RTP forwarder yields 16 kHz mono PCM without disturbing forwarding."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import sfu_loopback

from media.rtp_forwarder import RtpForwarder

pytestmark = pytest.mark.timeout(30)


async def test_tap_yields_16k_mono_pcm_while_forwarding() -> None:
    room = sfu_loopback.Room(RtpForwarder())
    try:
        await room.add_publisher("alice", sfu_loopback.SineAudio())
        await asyncio.wait_for(room.published.wait(), 5)
        _, tracks, _ = await room.add_subscriber(["alice/audio"])
        tap = room.forwarder.audio_tap("alice/audio")
        pcm = bytearray()
        chunks = tap.chunks()
        while len(pcm) < 16_000 * 2:  # one second of 16 kHz s16 mono
            pcm += await asyncio.wait_for(anext(chunks), 5)
        frame = await asyncio.wait_for(tracks[0].recv(), 5)
        assert frame.sample_rate == 48_000  # the subscriber still gets Opus
        samples = np.frombuffer(bytes(pcm), dtype="<i2")[4000:16000]
        spectrum = np.abs(np.fft.rfft(samples))
        peak_hz = np.argmax(spectrum) * 16_000 / len(samples)
        assert abs(peak_hz - 440) < 10, peak_hz
        await tap.aclose()
        rest = [chunk async for chunk in chunks]
        assert isinstance(rest, list)
    finally:
        await room.aclose()
