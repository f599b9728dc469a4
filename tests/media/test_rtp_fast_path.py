"""The synchronous forwarding path (datagram_path.DatagramPath) with real aiortc peers.

Every packet reaches every subscriber, in order and renumbered without gaps;
the path is the one actually used (no packet falls back to aiortc's queue once
the receiver is known); NACKs are answered over RTX from the sender's history;
the RTCP sender-report counters follow what was forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import sfu_loopback
from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from kernel.taskset import TaskSet
from media.adaptation import AdaptationConfig
from media.aiortc_internals import ReceiveHook, now_ms
from media.datagram_path import DatagramPath
from media.pacer import PacerConfig
from media.rtp_forwarder import RtpForwarder
from media.rtp_header import RtpView, abs_send_time_of, ntp_of
from media.transport_cc import TRANSPORT_CC_ID, TRANSPORT_CC_URI

pytestmark = pytest.mark.timeout(60)


class Recorder:
    """Client-side sink: every packet a subscriber receives, in arrival order."""

    def __init__(self) -> None:
        self.packets: list[RtpView] = []
        #: When each sequence number first arrived.
        self.first_seen: dict[int, float] = {}

    def __call__(self, packet: RtpView, arrival_ms: int) -> None:
        self.packets.append(packet)
        self.first_seen.setdefault(packet.sequence_number, time.monotonic())


def _hook_client(
    client: RTCPeerConnection, tasks: TaskSet, kind: str, recorder: Recorder | None = None
) -> Recorder:
    recorder = recorder or Recorder()
    for transceiver in client.getTransceivers():
        if transceiver.kind == kind:
            ReceiveHook(transceiver.receiver, recorder, tasks=tasks, estimate_bandwidth=False)
    return recorder


async def _wait_for(condition: Any, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_every_packet_reaches_every_subscriber_in_order() -> None:
    forwarder = RtpForwarder(keyframe_min_interval=0.2)
    room = sfu_loopback.Room(forwarder)
    tasks = TaskSet("test clients")
    try:
        await room.add_publisher("alice", sfu_loopback.SyntheticVideo(), sfu_loopback.SineAudio())
        await asyncio.wait_for(room.published.wait(), 5)
        subscribers = []
        for _ in range(3):
            client, _tracks, senders = await room.add_subscriber(["alice/video", "alice/audio"])
            video = _hook_client(client, tasks, "video")
            audio = _hook_client(client, tasks, "audio")
            subscribers.append((video, audio, senders))
        await _wait_for(lambda: all(len(v.packets) > 30 for v, _, _ in subscribers), 15)
        # From here on every hook is on the fast path (the first packets of a client that
        # was hooked after connecting may still come through aiortc's queue, out of order).
        for video, audio, _ in subscribers:
            video.packets.clear()
            audio.packets.clear()
        await _wait_for(lambda: all(len(v.packets) > 100 for v, _, _ in subscribers), 15)
        # Stop the publisher, let the last packets land, then compare.
        room.forwarder.unpublish("alice/video")
        room.forwarder.unpublish("alice/audio")
        await asyncio.sleep(0.5)
        for video, audio, _senders in subscribers:
            for recorder in (video, audio):
                seqs = [p.sequence_number for p in recorder.packets]
                assert len(seqs) > 40
                gaps = [(b - a) % 65536 for a, b in itertools.pairwise(seqs)]
                assert all(gap < 0x8000 for gap in gaps), "a packet was forwarded out of order"
                # Renumbered without holes: a gap is a datagram the kernel dropped on loopback
                # (only seen at load averages of 40+ here); every other step is exactly 1.
                lost = sum(gap - 1 for gap in gaps)
                assert lost <= len(seqs) // 100, f"{lost} of {len(seqs)} packets missing"
                assert len({p.ssrc for p in recorder.packets}) == 1
        # The same payloads in the same order at every subscriber.
        common = set.intersection(*({p.payload for p in v.packets} for v, _, _ in subscribers))
        orders = [[p.payload for p in v.packets if p.payload in common] for v, _, _ in subscribers]
        assert len(common) > 90
        assert orders[0] == orders[1] == orders[2]
        server_pcs = room.pcs[1::2]
        for pc in server_pcs:
            dtls: Any = pc.getTransceivers()[0].receiver.transport
            path = DatagramPath.of(dtls, tasks)
            assert path.fallbacks <= 2, "packets went through aiortc's queue, not the fast path"
    finally:
        await room.aclose()
        await tasks.aclose()


@dataclass
class _Subscribed:
    forwarder: RtpForwarder
    sender: Any
    receiver: Any
    recorder: Recorder


@contextlib.asynccontextmanager
async def _one_video_subscriber(
    packets: int, adaptation: AdaptationConfig | None = None, recorder: Recorder | None = None
) -> AsyncIterator[_Subscribed]:
    """Alice's synthetic video forwarded to one subscriber, ``packets`` received so far
    (by ``recorder``, a new ``Recorder`` by default)."""
    forwarder = RtpForwarder(keyframe_min_interval=0.2, adaptation=adaptation)
    room = sfu_loopback.Room(forwarder)
    tasks = TaskSet("test clients")
    try:
        await room.add_publisher("alice", sfu_loopback.SyntheticVideo())
        await asyncio.wait_for(room.published.wait(), 5)
        client, _tracks, senders = await room.add_subscriber(["alice/video"])
        recorder = _hook_client(client, tasks, "video", recorder)
        await _wait_for(lambda: len(recorder.packets) > packets, 10)
        yield _Subscribed(forwarder, senders[0], client.getTransceivers()[0].receiver, recorder)
    finally:
        await room.aclose()
        await tasks.aclose()


async def test_nack_is_answered_over_rtx_and_sender_reports_count_forwarded_packets() -> None:
    async with _one_video_subscriber(30) as sub:
        forwarder, receiver, recorder = sub.forwarder, sub.receiver, sub.recorder
        wanted = recorder.packets[-5]
        before = sum(p.sequence_number == wanted.sequence_number for p in recorder.packets)
        await receiver._send_rtcp_nack(wanted.ssrc, [wanted.sequence_number])
        await _wait_for(
            lambda: (
                sum(p.sequence_number == wanted.sequence_number for p in recorder.packets) > before
            ),
            5,
        )
        again = [p for p in recorder.packets if p.sequence_number == wanted.sequence_number][-1]
        assert again.payload == wanted.payload
        assert again.timestamp == wanted.timestamp
        streams: dict[int, Any] = receiver._RTCRtpReceiver__remote_streams
        rtx_ssrcs = set(streams) - {wanted.ssrc}
        assert rtx_ssrcs, "the retransmission did not come over RTX"

        forwarded, _ = forwarder.subscription_stats(sub.sender)
        stats = await sub.sender.getStats()
        outbound = next(s for s in stats.values() if s.type == "outbound-rtp")
        # Retransmissions are not counted (as in aiortc); a packet may be in flight.
        assert abs(outbound.packetsSent - forwarded) <= 1
        assert sub.sender._RTCRtpSender__octet_count > 1000
        # The subscriber got a sender report carrying those counters.
        await _wait_for(lambda: wanted.ssrc in receiver._RTCRtpReceiver__lsr, 5)


async def test_nacks_are_answered_once_per_round_trip_recently_and_within_a_budget() -> None:
    """On a full link every resent packet is lost and asked for again: answering every
    NACK sent 2-7 Mbit/s into a 300 kbit/s link. A packet is resent at most once per
    round trip, not once it is a second old, and resending uses at most half of what the
    sender sends (after a burst allowance)."""
    async with _one_video_subscriber(60) as sub:
        receiver, recorder, sender = sub.receiver, sub.recorder, sub.sender
        out: Any = sub.forwarder._outbound[sender]
        ssrc = recorder.packets[-1].ssrc

        def copies(seq: int) -> int:
            return sum(p.sequence_number == seq for p in recorder.packets)

        # Ten NACKs for one packet within a round trip: one retransmission.
        wanted = recorder.packets[-3].sequence_number
        before = copies(wanted)
        for _ in range(10):
            await receiver._send_rtcp_nack(ssrc, [wanted])
        await _wait_for(lambda: copies(wanted) > before, 5)
        await asyncio.sleep(0.3)
        assert copies(wanted) == before + 1
        assert out.resends_refused >= 9
        # A packet sent more than a second ago: not resent.
        await asyncio.sleep(1.2)
        now = time.monotonic()
        old = next(s for s, t in recorder.first_seen.items() if 1.1 < now - t < 1.8)
        before = copies(old)
        await receiver._send_rtcp_nack(ssrc, [old])
        await asyncio.sleep(0.3)
        assert copies(old) == before
        # Everything recent asked for again and again for two seconds: what is resent
        # stays within half of what was sent meanwhile, plus the burst allowance.
        octets0, count0, resent0 = (
            sender._RTCRtpSender__octet_count,
            len(recorder.packets),
            out.resent,
        )
        asked = 0
        for _ in range(25):
            now = time.monotonic()
            recent = [s for s, t in recorder.first_seen.items() if now - t < 0.9][-100:]
            asked += len(recent)
            await receiver._send_rtcp_nack(ssrc, recent)
            await asyncio.sleep(0.08)
        await asyncio.sleep(0.3)
        sent = sender._RTCRtpSender__octet_count - octets0
        seen = {p.sequence_number for p in recorder.packets[:count0]}
        resent_bytes = 0
        for packet in recorder.packets[count0:]:
            if packet.sequence_number in seen:
                resent_bytes += len(packet.payload)
            seen.add(packet.sequence_number)
        assert asked > 1000 and out.resent - resent0 < asked // 4
        assert 0 < resent_bytes <= 48_000 + 0.5 * sent + 2_000, (resent_bytes, sent)


async def test_probe_padding_is_rtx_copies_of_recent_packets_and_adds_nothing_new() -> None:
    """A padding probe's packets: as libwebrtc pads, RTX copies of the packets just sent
    (the browser counts them in its estimate and drops the duplicates; 4x fewer packets
    than padding-only ones), counted in the transport's bytes, not in the stream's."""
    async with _one_video_subscriber(30) as sub:
        receiver, recorder, sender = sub.receiver, sub.recorder, sub.sender
        out: Any = sub.forwarder._outbound[sender]
        ssrc = recorder.packets[-1].ssrc
        octets0 = sender._RTCRtpSender__octet_count
        bytes0, packets0 = out.sent_counters()
        seen = {p.sequence_number for p in recorder.packets}
        count0 = len(recorder.packets)
        sent = out.send_padding(8000)
        bytes1, packets1 = out.sent_counters()
        assert 8000 <= sent and bytes1 - bytes0 >= sent
        streams: dict[int, Any] = receiver._RTCRtpReceiver__remote_streams

        def rtx_packets() -> int:
            return sum(s.packets_received for k, s in streams.items() if k != ssrc)

        await _wait_for(lambda: rtx_packets() >= packets1 - packets0, 5)
        copies = [p for p in recorder.packets[count0:] if p.sequence_number in seen]
        assert len(copies) >= packets1 - packets0 - 1  # (media kept flowing meanwhile)
        originals = {p.sequence_number: p.payload for p in recorder.packets[:count0]}
        assert all(originals[p.sequence_number] == p.payload for p in copies)
        media = [p.sequence_number for p in recorder.packets if p.ssrc == ssrc]
        new = [q for q in media if q not in seen]
        assert all(b == (a + 1) & 0xFFFF for a, b in itertools.pairwise(new)), "a gap"
        # The stream's own counters (sender reports, loss cuts) are the media's alone.
        media_octets = sender._RTCRtpSender__octet_count - octets0
        forwarded = sum(len(p.payload) for p in recorder.packets[count0:] if p not in copies)
        assert media_octets <= forwarded + 1500
        # With nothing sent lately (a paused video), padding-only packets.
        out._state.history[:] = [None] * len(out._state.history)
        assert out.send_padding(1000) >= 1000


async def test_a_packet_asked_for_again_and_again_counts_once_for_the_estimate() -> None:
    """A browser repeats its NACK for a missing packet every round trip; counted each time,
    packets lost during a 300 kbit/s limit failed every padding probe after it was lifted
    (4 NACKs within 0.5 s on a free link, measured)."""
    async with _one_video_subscriber(60) as sub:
        receiver, recorder = sub.receiver, sub.recorder
        out: Any = sub.forwarder._outbound[sub.sender]
        counted: list[int] = []
        out._nack_listener = counted.append
        ssrc = recorder.packets[-1].ssrc
        wanted = recorder.packets[-3].sequence_number
        for _ in range(10):
            await receiver._send_rtcp_nack(ssrc, [wanted])
        await asyncio.sleep(0.3)
        assert sum(counted) == 1
        await asyncio.sleep(1.2)  # a packet sent over a second ago is no news either
        now = time.monotonic()
        old = next(s for s, t in recorder.first_seen.items() if 1.1 < now - t < 1.8)
        await receiver._send_rtcp_nack(ssrc, [old])
        fresh = [p.sequence_number for p in recorder.packets[-3:]]
        await receiver._send_rtcp_nack(ssrc, fresh)
        await asyncio.sleep(0.3)
        assert sum(counted) == 1 + len(set(fresh))


async def test_paced_video_arrives_in_order_stamped_with_the_time_it_left() -> None:
    """Video held by the subscriber link's pacer goes out later, in order, with no gap,
    and with the abs-send-time of when it left (a browser's delay-based estimate reads
    it: stamped on arrival, every held packet would look like queueing on the link).
    The pacer here runs at a third of what is sent, so that most packets wait."""
    slow = AdaptationConfig(pacer=PacerConfig(factor=0.3, max_wait_s=0.3))
    async with _one_video_subscriber(30, slow) as sub:
        out: Any = sub.forwarder._outbound[sub.sender]
        pacer = out.pacer
        assert pacer is not None
        link = sub.forwarder.adaptation.link_of(sub.sender)
        assert link is not None
        link.estimator.capacity_bps = 50_000  # a capacity is known: the link is paced
        stamps: list[tuple[int, int]] = []
        reported: list[tuple[int, int]] = []  # held packets: (sender-report NTP, leave NTP)
        write = out._write

        def recording_write(
            state: Any, packet: Any, seq: int, ts: int, ast: int, ntp: int, report: Any = None
        ) -> bool:
            stamps.append((ast, abs_send_time_of(ntp_of(time.time()))))
            if report is not None:
                reported.append((report, ntp))
            return bool(write(state, packet, seq, ts, ast, ntp, report))

        out._write = recording_write
        count0 = len(sub.recorder.packets)
        await _wait_for(lambda: pacer.held >= 40, 15)
        await asyncio.sleep(0.5)
        new = [p.sequence_number for p in sub.recorder.packets[count0:]]
        assert len(new) >= 40
        assert all(b == (a + 1) & 0xFFFF for a, b in itertools.pairwise(new)), "out of order"
        # Every packet carries the time it was written, within a few milliseconds
        # (abs-send-time is 1/262144 s and wraps every 64 s).
        late = [((now - ast) & 0xFFFFFF) / 262144 for ast, now in stamps]
        assert max(late) < 0.02, max(late)
        assert pacer.waited_max_s > 0.05  # (and they did wait)
        # The sender report pairs a held packet's RTP timestamp with when it was
        # forwarded, not when it left (audio never waits: lip sync would drift).
        assert len(reported) >= 30
        assert max(leave - forwarded for forwarded, leave in reported) > 0.05 * (1 << 32)


def _transport_feedback(base: int, count: int, reference: int) -> bytes:
    """An RTPFB FMT 15 message: ``count`` packets from ``base`` received 1 ms apart."""
    fci = struct.pack("!HHI", base, count, (reference << 8) | 1)
    fci += struct.pack("!H", (1 << 13) | count)  # one run of "received, small delta"
    fci += bytes([4] * count)  # 4 x 250 us each
    fci += bytes(-len(fci) % 4)
    body = struct.pack("!II", 1, 0) + fci
    return struct.pack("!BBH", 0x80 | 15, 205, len(body) // 4) + body


async def test_probe_padding_is_numbered_and_the_browsers_feedback_reaches_the_estimate() -> None:
    """Where the answer took transport-wide feedback, every padding packet carries the
    next transport-wide sequence number (none is skipped: the browser reports gaps as
    lost), and the browser's feedback about them reaches the subscriber's estimate."""
    async with _one_video_subscriber(30) as sub:
        out: Any = sub.forwarder._outbound[sub.sender]
        out.transport_cc_id = TRANSPORT_CC_ID
        assert out.queue_delay is not None
        path = out._state.path
        wire: list[bytes] = []
        original = path.send_rtp

        def capture(plain: bytes) -> bool:
            wire.append(plain)
            return bool(original(plain))

        path.send_rtp = capture
        out.send_padding(6000)
        out.send_padding(3000)
        path.send_rtp = original
        ids = HeaderExtensionsMap()
        ids.configure(
            RTCRtpParameters(
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(id=TRANSPORT_CC_ID, uri=TRANSPORT_CC_URI)
                ]
            )
        )
        numbers = [RtpPacket.parse(p, ids).extensions.transport_sequence_number for p in wire]
        assert len(numbers) >= 6 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        await sub.receiver.transport._send_rtp(_transport_feedback(numbers[0], len(numbers), 1000))
        queue = out.queue_delay
        await _wait_for(lambda: len(queue.samples) >= len(numbers), 5)
        assert queue.messages == 1 and queue.lost == 0
        delays = [s.delay_s for s in queue.samples]
        sent_at = [s.sent_at for s in queue.samples]
        # Arrivals 1 ms apart against the send times: the delay moves with the sends only.
        for k in range(1, len(delays)):
            expected = 0.001 - (sent_at[k] - sent_at[k - 1])
            assert abs((delays[k] - delays[k - 1]) - expected) < 1e-6
        # Media packets stay unnumbered: a browser builds its REMB from those.
        wire.clear()
        path.send_rtp = capture
        count = len(sub.recorder.packets)
        await _wait_for(lambda: len(sub.recorder.packets) > count + 5, 5)
        path.send_rtp = original
        media = [RtpPacket.parse(p, ids) for p in wire]
        assert len(media) >= 5
        assert all(p.extensions.transport_sequence_number is None for p in media)


async def test_rtp_on_the_fast_path_is_stamped_with_the_kernels_arrival(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The arrival a receiver's hook (REMB, statistics) gets is media.arrival's."""
    from media import arrival

    asked: list[int] = []

    def kernel_arrival(fd: int, now: int) -> int:
        asked.append(fd)
        return now - 5_000  # unmistakable: no loop time is 5 s old

    monkeypatch.setattr(arrival, "arrival_ms", kernel_arrival)
    arrivals: list[tuple[int, int]] = []

    class Stamps(Recorder):
        def __call__(self, packet: RtpView, arrival_ms: int) -> None:
            super().__call__(packet, arrival_ms)
            arrivals.append((arrival_ms, now_ms()))

    async with _one_video_subscriber(60, recorder=Stamps()):
        pass
    assert asked and all(fd >= 0 for fd in asked)
    # The first packets may take aiortc's queue before the hook's path is known.
    late = arrivals[20:]
    assert all(4_900 < now - stamp < 5_500 for stamp, now in late), late[:5]
