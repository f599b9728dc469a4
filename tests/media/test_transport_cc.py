"""Transport-wide feedback on probe padding (media.transport_cc): asked for in the offer
on the video a page receives only, read from the answer, parsed as libwebrtc writes
it, and turned into how far a probe grew the link's queue."""

from __future__ import annotations

import struct

import pytest
from aiortc import RTCPeerConnection

from media.transport_cc import (
    TRANSPORT_CC_ID,
    TRANSPORT_CC_URI,
    FeedbackError,
    QueueDelay,
    TransportFeedback,
    TransportSequencer,
    answered_transport_cc,
    feedback_messages,
    offer_transport_cc,
    parse_feedback,
)
from tests.media.test_simulcast_offer import _sections


async def _aiortc_offer() -> str:
    """An offer as the server makes one: a publish camera (recvonly), a publish
    microphone, and a remote camera and voice sent to the page (sendonly)."""
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="sendonly")
        pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


async def test_the_offer_asks_for_feedback_on_the_video_the_page_receives_only() -> None:
    """The publish camera is left alone: a browser that stamped what it sends would
    expect feedback from us and its own estimate would fall back without it."""
    sdp = await _aiortc_offer()
    sections = _sections(sdp)
    publish_mid = next(line[6:] for line in sections[0] if line.startswith("a=mid:"))
    shaped = offer_transport_cc(sdp, skip_mids=[publish_mid])
    after = _sections(shaped)
    assert len(after) == 4
    publish, mic, camera, voice = after
    assert not any(TRANSPORT_CC_URI in line for line in publish + mic + voice)
    assert f"a=extmap:{TRANSPORT_CC_ID} {TRANSPORT_CC_URI}" in camera
    rtpmaps = {
        line.split()[0][9:]: line.split()[1] for line in camera if line.startswith("a=rtpmap:")
    }
    for pt, name in rtpmaps.items():
        has = f"a=rtcp-fb:{pt} transport-cc" in camera
        assert has == (not name.lower().startswith("rtx/")), (pt, name)
    assert offer_transport_cc(shaped, skip_mids=[publish_mid]) == shaped  # once only
    # Everything else is byte for byte aiortc's.
    added = [line for line in shaped.split("\r\n") if line not in sdp.split("\r\n")]
    assert all(TRANSPORT_CC_URI in line or line.endswith(" transport-cc") for line in added)


def test_the_answer_tells_which_videos_took_it() -> None:
    answer = "\r\n".join(
        [
            "v=0",
            "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
            "a=mid:0",
            "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=rtpmap:97 VP8/90000",
            "a=rtcp-fb:97 nack",
            "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
            "a=mid:2",
            f"a=extmap:5 {TRANSPORT_CC_URI}",
            "a=rtpmap:97 VP8/90000",
            "a=rtcp-fb:97 transport-cc",
            "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
            "a=mid:4",
            f"a=extmap:7/recvonly {TRANSPORT_CC_URI}",  # no transport-cc on a codec
            "a=rtpmap:97 VP8/90000",
            "",
        ]
    )
    assert answered_transport_cc(answer) == {"2": 5}


# libwebrtc-written messages (RTPFB, FMT 15, the padding bit set), with what they say:
# webrtc-rs's transport_layer_cc tests, "example4" and "example6".
_ONE_RUN = bytes.fromhex("afcd0007 fa17fa17 193dd8bb 00040007 10636e01 20074c24 24100c0c 10000003")
_VECTOR_AND_RUN = bytes.fromhex(
    "afcd0007 9b74f61f 9371dcbc 853c0009 63f916b3 d5520030 9baa6aaa 7b010901"
)


def _deltas_ms(feedback: TransportFeedback, reference: int) -> list[float | None]:
    out: list[float | None] = []
    last = reference * 0.064
    for _seq, at in feedback.arrivals:
        if at is None:
            out.append(None)
            continue
        out.append(round((at - last) * 1000, 3))
        last = at
    return out


def test_a_run_length_chunk_with_small_deltas() -> None:
    (payload,) = feedback_messages(_ONE_RUN)
    feedback = parse_feedback(payload)
    assert feedback.media_ssrc == 423483579 and feedback.feedback_count == 1
    assert [seq for seq, _ in feedback.arrivals] == list(range(4, 11))
    assert _deltas_ms(feedback, 1074030) == [19.0, 9.0, 9.0, 4.0, 3.0, 3.0, 4.0]


def test_a_two_bit_vector_a_large_delta_and_a_run_not_received() -> None:
    (payload,) = feedback_messages(_VECTOR_AND_RUN)
    feedback = parse_feedback(payload)
    assert feedback.feedback_count == 179
    assert [seq for seq, _ in feedback.arrivals] == list(range(34108, 34117))
    assert _deltas_ms(feedback, 6551830) == [
        38.75,
        42.5,
        26.5,
        42.5,
        30.75,
        None,
        66.25,
        None,
        None,
    ]


def test_feedback_is_found_in_a_compound_packet_and_other_rtcp_is_skipped() -> None:
    receiver_report = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)
    nack = struct.pack("!BBHIIHH", 0x81, 205, 3, 1, 2, 100, 0)
    remb = struct.pack("!BBHII", 0x8F, 206, 2, 1, 0)
    assert feedback_messages(receiver_report + nack + _ONE_RUN + remb) == [
        feedback_messages(_ONE_RUN)[0]
    ]
    assert feedback_messages(receiver_report + nack) == []
    assert feedback_messages(_ONE_RUN[:-4]) == []  # its length runs past the packet


def test_a_truncated_message_says_what_is_missing() -> None:
    (payload,) = feedback_messages(_ONE_RUN)
    with pytest.raises(FeedbackError, match="at least 16"):
        parse_feedback(payload[:12])
    with pytest.raises(FeedbackError, match="ends after 0 of 7 packet statuses"):
        parse_feedback(payload[:16])
    with pytest.raises(FeedbackError, match="inside its receive deltas"):
        parse_feedback(payload[:20])
    reserved = bytearray(payload)
    reserved[16:18] = struct.pack("!H", 0b0110_0000_0000_0111)  # run of status 3
    with pytest.raises(FeedbackError, match="reserved"):
        parse_feedback(bytes(reserved))


def _feedback(arrivals: list[tuple[int, float | None]]) -> TransportFeedback:
    return TransportFeedback(media_ssrc=1, feedback_count=0, arrivals=arrivals)


def test_the_queue_growth_of_a_probe_and_a_late_read_that_is_no_queue() -> None:
    """Padding every 10 ms: on a link that takes it the delay stays flat; one packet
    read 80 ms late by a busy receiver is no queue; a link whose queue fills delays
    each packet 3 ms more than the one before."""
    sent = TransportSequencer()
    clock_offset = 500.0  # the receiver's clock is its own
    for i in range(40):
        seq = sent.next()
        sent.sent(seq, 100.0 + i * 0.01, 1100)
    queue = QueueDelay()
    flat = [(i, 100.0 + i * 0.01 + clock_offset + 0.02) for i in range(20)]
    late = dict(flat)
    late[12] += 0.08
    queue.on_feedback(_feedback(sorted(late.items())), sent.lookup)
    growth = queue.growth_s(100.0)
    assert growth is not None and abs(growth) < 1e-9
    filling = [
        (i, 100.0 + i * 0.01 + clock_offset + 0.02 + (i - 19) * 0.003) for i in range(20, 40)
    ]
    queue.on_feedback(_feedback(filling), sent.lookup)
    growth = queue.growth_s(100.0)
    assert growth is not None and 0.05 < growth < 0.06
    later = queue.growth_s(100.325)  # the last 7 packets only: 3 of them behind the first
    assert later is not None and abs(later - 0.009) < 1e-6
    assert queue.growth_s(100.5) is None  # too few packets since then
    # Reported missing: counted per probe, by when they were sent.
    queue.on_feedback(_feedback([(38, None), (39, None), (7777, None)]), sent.lookup)
    assert queue.lost_since(100.0) == 2 and queue.lost_since(100.395) == 0


def test_sequence_numbers_wrap_and_old_send_records_are_dropped() -> None:
    sent = TransportSequencer()
    for i in range(70_000):
        sent.sent(sent.next(), float(i), 100)
    assert sent.next() == 70_000 & 0xFFFF
    assert sent.lookup((70_000 - 1) & 0xFFFF) == (69_999.0, 100)
    assert sent.lookup((70_000 - 5000) & 0xFFFF) is None
