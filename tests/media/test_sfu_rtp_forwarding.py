"""media.sfu.MediaRoom driving RtpForwarder: three aiortc participants, server-driven offers."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sfu_loopback
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from media.rtp_forwarder import RtpForwarder
from media.sfu import MediaRoom, OfferToSend

pytestmark = pytest.mark.timeout(45)

PARTICIPANTS = ("counselor", "resident", "interpreter")


async def test_three_party_room_forwards_without_server_decoding(
    decoder_threads: list[threading.Thread],
) -> None:
    clients: dict[str, RTCPeerConnection] = {}
    tracks: dict[str, list[MediaStreamTrack]] = {p: [] for p in PARTICIPANTS}
    answers: set[asyncio.Task[None]] = set()
    room: MediaRoom | None = None

    async def send_offer(participant: str, offer: OfferToSend) -> None:
        pc = clients[participant]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.mid in offer.publish.values() and transceiver.sender.track is None:
                transceiver.direction = "sendonly"
                track: MediaStreamTrack = (
                    sfu_loopback.SyntheticVideo()
                    if transceiver.kind == "video"
                    else sfu_loopback.SineAudio()
                )
                transceiver.sender.replaceTrack(track)
        await pc.setLocalDescription(await pc.createAnswer())
        assert room is not None
        task = asyncio.get_running_loop().create_task(
            room.apply_answer(participant, pc.localDescription.sdp)
        )
        answers.add(task)
        task.add_done_callback(answers.discard)

    room = MediaRoom("room-sfu", RtpForwarder(), send_offer=send_offer)
    try:
        for participant in PARTICIPANTS:
            # aiortc as a client needs max-bundle: with its default (balanced) policy the
            # video receivers of a first offer that bundles audio and video never start.
            pc = RTCPeerConnection(
                RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            )
            clients[participant] = pc
            pc.on("track", tracks[participant].append)
            await room.add_peer(participant)
            await asyncio.sleep(0.5)
        for participant in PARTICIPANTS:
            for _ in range(100):
                if sum(t.kind == "video" for t in tracks[participant]) == 2:
                    break
                await asyncio.sleep(0.05)
            videos = [t for t in tracks[participant] if t.kind == "video"]
            assert len(videos) == 2, participant
            for video in videos:
                frame = await sfu_loopback.first_frame_within(video, 8)
                assert frame.width == 320
        server_threads = {
            getattr(p.receiver, "_RTCRtpReceiver__decoder_thread")  # noqa: B009
            for p in room.publications.values()
        }
        assert len(room.publications) == 6
        assert not server_threads.intersection(decoder_threads)
    finally:
        await room.aclose()
        for pc in clients.values():
            await pc.close()
        for task in list(answers):
            task.cancel()
        await asyncio.gather(*answers, return_exceptions=True)
