"""RtpForwarder with real aiortc peers on loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import sfu_loopback

from media.rtp_forwarder import RtpForwarder

pytestmark = pytest.mark.timeout(40)


def _decoder_thread(receiver: Any) -> threading.Thread | None:
    thread: threading.Thread | None = receiver._RTCRtpReceiver__decoder_thread
    return thread


async def test_forwards_video_and_audio_without_server_decoder(
    decoder_threads: list[threading.Thread],
) -> None:
    room = sfu_loopback.Room(RtpForwarder())
    try:
        await room.add_publisher("alice", sfu_loopback.SyntheticVideo(), sfu_loopback.SineAudio())
        await asyncio.wait_for(room.published.wait(), 5)
        assert set(room.publications) == {"alice/video", "alice/audio"}
        _, tracks, _ = await room.add_subscriber(["alice/video", "alice/audio"])
        video = next(t for t in tracks if t.kind == "video")
        audio = next(t for t in tracks if t.kind == "audio")
        frame = await sfu_loopback.first_frame_within(video, 5)
        assert (frame.width, frame.height) == (320, 240)
        for _ in range(10):
            await asyncio.wait_for(video.recv(), 2)
        sound = await asyncio.wait_for(audio.recv(), 5)
        assert sound.sample_rate == 48_000
        server_threads = [_decoder_thread(p.receiver) for p in room.publications.values()]
        assert not [t for t in decoder_threads if t in server_threads], (
            "the server created a decoder for forwarded media"
        )
        assert decoder_threads, "the subscriber should have decoded (positive control)"
    finally:
        await room.aclose()


async def test_late_joiner_gets_keyframe_promptly() -> None:
    forwarder = RtpForwarder(keyframe_min_interval=0.3)
    room = sfu_loopback.Room(forwarder)
    try:
        publisher = await room.add_publisher("alice", sfu_loopback.SyntheticVideo())
        await asyncio.wait_for(room.published.wait(), 5)
        keyframes_asked = 0
        sender: Any = publisher.getSenders()[0]
        original = sender._send_keyframe

        def counting() -> None:
            nonlocal keyframes_asked
            keyframes_asked += 1
            original()

        sender._send_keyframe = counting
        _, first_tracks, _ = await room.add_subscriber(["alice/video"])
        await sfu_loopback.first_frame_within(first_tracks[0], 5)
        # Let the stream run well past the first keyframe (aiortc's gop is 3000 frames).
        for _ in range(30):
            await asyncio.wait_for(first_tracks[0].recv(), 2)
        asked_before = keyframes_asked
        started = time.monotonic()
        _, late_tracks, _ = await room.add_subscriber(["alice/video"])
        await sfu_loopback.first_frame_within(late_tracks[0], 3)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"late joiner waited {elapsed:.2f} s for a decodable frame"
        assert keyframes_asked > asked_before, "no PLI reached the publisher"
    finally:
        await room.aclose()


async def test_subscriber_pli_flood_is_rate_limited() -> None:
    forwarder = RtpForwarder(keyframe_min_interval=0.5)
    room = sfu_loopback.Room(forwarder)
    try:
        publisher = await room.add_publisher("alice", sfu_loopback.SyntheticVideo())
        await asyncio.wait_for(room.published.wait(), 5)
        subscriber, tracks, _ = await room.add_subscriber(["alice/video"])
        await sfu_loopback.first_frame_within(tracks[0], 5)
        await asyncio.sleep(0.6)
        keyframes_asked = 0
        sender: Any = publisher.getSenders()[0]

        def counting() -> None:
            nonlocal keyframes_asked
            keyframes_asked += 1

        sender._send_keyframe = counting
        receiver: Any = subscriber.getReceivers()[0]
        media_ssrc = receiver.getSynchronizationSources()[0].source
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            await receiver._send_rtcp_pli(media_ssrc)  # a misbehaving subscriber
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        # ~90 PLIs in 1 s from the subscriber; at most one per 0.5 s reach the publisher.
        assert 1 <= keyframes_asked <= 3, keyframes_asked
    finally:
        await room.aclose()


async def test_reattach_to_another_publication_continues_numbering() -> None:
    room = sfu_loopback.Room(RtpForwarder(keyframe_min_interval=0.2))
    try:
        await room.add_publisher("alice", sfu_loopback.SyntheticVideo())
        await asyncio.wait_for(room.published.wait(), 5)
        room.published.clear()
        await room.add_publisher("bob", sfu_loopback.SyntheticVideo(160, 120))
        await asyncio.wait_for(room.published.wait(), 5)
        _, tracks, senders = await room.add_subscriber(["alice/video"])
        frame = await sfu_loopback.first_frame_within(tracks[0], 5)
        assert frame.width == 320
        room.forwarder.attach("bob/video", senders[0])
        deadline = time.monotonic() + 5
        while True:
            frame = await asyncio.wait_for(tracks[0].recv(), 2)
            if frame.width == 160:
                break
            assert time.monotonic() < deadline, "never switched to bob's video"
    finally:
        await room.aclose()


async def test_h264_room_forwards_h264() -> None:
    from aiortc import RTCRtpSender

    from media.codecs import RoomCodecs

    room = sfu_loopback.Room(RtpForwarder(RoomCodecs(video="H264")))
    try:
        h264 = [
            c
            for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType in ("video/H264", "video/rtx")
        ]
        publisher = sfu_loopback.new_pc()
        room.pcs.append(publisher)
        transceiver = publisher.addTransceiver(sfu_loopback.SyntheticVideo(), direction="sendonly")
        transceiver.setCodecPreferences(h264)
        server = sfu_loopback.new_pc()
        room.pcs.append(server)
        room.forwarder.prepare_peer(server)

        @server.on("track")
        def on_track(track: Any) -> None:
            receiver = server.getTransceivers()[0].receiver
            publication = sfu_loopback.Publication("alice", "video", track, receiver)
            room.forwarder.publish(publication)
            room.publications[publication.id] = publication
            room.published.set()

        await sfu_loopback.connect(publisher, server)
        await asyncio.wait_for(room.published.wait(), 5)
        _, tracks, _ = await room.add_subscriber(["alice/video"])
        frame = await sfu_loopback.first_frame_within(tracks[0], 8)
        assert frame.width == 320
        assert isinstance(room.forwarder, RtpForwarder)
        assert room.forwarder.source_codec("alice/video") == "H264"
    finally:
        await room.aclose()
