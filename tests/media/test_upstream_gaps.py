"""A subscriber's loss figure without what the publisher's uplink lost
(media.outbound_rtp.UpstreamGaps)."""

from __future__ import annotations

import pytest

from media.outbound_rtp import ReportIntervals, UpstreamGaps


def _send(gaps: UpstreamGaps, seqs: range | list[int]) -> None:
    for seq in seqs:
        gaps.sent(seq & 0xFFFF)


def test_packets_the_publisher_lost_are_not_the_subscribers_loss() -> None:
    """When a resident's uplink was limited, the counselor on loopback reported the
    resident's lost packets (gaps in what we forward) as their own loss, and their
    video was cut to 320x240 for it."""
    gaps = UpstreamGaps()
    # 100 packets expected, 10 of them never reached us (every tenth skipped).
    sent = [s for s in range(1000, 1100) if s % 10 != 5]
    _send(gaps, sent)
    # The subscriber got everything we sent: lost 10 of 100 by its count.
    assert gaps.downlink_loss(10 / 100, 10, 1099) == 0.0
    # Next interval: 100 more, 10 skipped upstream, and 9 of the 90 sent lost on the way.
    _send(gaps, [s for s in range(1100, 1200) if s % 10 != 5])
    assert gaps.downlink_loss(19 / 100, 10 + 19, 1199) == pytest.approx(9 / 90)


def test_without_gaps_the_report_stands_and_sequence_numbers_wrap() -> None:
    gaps = UpstreamGaps()
    _send(gaps, range(65_500, 65_600))  # wraps past 65535
    assert gaps.downlink_loss(0.25, 25, 65_599) == 0.25
    _send(gaps, [s for s in range(65_600, 65_700) if s != 65_650])  # one skipped, wrapped
    assert gaps.downlink_loss(0.02, 25 + 2, 65_699) == pytest.approx(1 / 99)


def test_a_late_packet_fills_its_gap_and_a_repeat_makes_none() -> None:
    gaps = UpstreamGaps()
    _send(gaps, [1, 2, 3, 5, 4, 5, 6, 7, 8, 9, 10])  # 4 came late (the publisher's resend)
    # One of the ten lost on the subscriber's side: all of it theirs.
    assert gaps.downlink_loss(0.1, 1, 10) == pytest.approx(0.1)


def test_a_long_history_of_gaps_is_still_counted_once() -> None:
    """Trimming the list of gaps made a report older than every kept gap count none, and
    the next report then took out every gap since the start (found in review). What a
    report covered becomes the base; the list keeps only what is newer."""
    gaps = UpstreamGaps()
    seq = 0
    for _ in range(300):  # 300 gaps, one every other packet
        gaps.sent(seq)
        seq += 2
    assert gaps.downlink_loss(0.5, 150, 300) == 0.0  # (reported late: up to seq 300)
    for _ in range(600):  # 600 more gaps before the next report
        gaps.sent(seq & 0xFFFF)
        seq += 2
    highest = seq - 2
    assert gaps.downlink_loss(0.5, 899, highest) == 0.0
    for _ in range(100):  # then 100 packets in a row, half lost on the way down
        gaps.sent(seq & 0xFFFF)
        seq += 1
    # (the first of them skipped one more upstream: 101 expected, 1 of the 50 upstream)
    assert gaps.downlink_loss(0.5, 899 + 50, seq - 1) == pytest.approx(49 / 100)
    assert len(gaps._events) <= 1


def test_the_first_report_after_a_pause_is_not_about_the_link_now() -> None:
    """A browser reports on a stream only while packets come: the first block after a
    camera is resumed covers the pause and the losses before it (8 % "lost" one second
    after a resume on a link already lifted, measured at 300 kbit/s)."""
    video = ReportIntervals()
    t = 100.0
    for _ in range(10):  # every second while packets come
        assert video.fresh(t)
        t += 1.0
    t += 9.0  # paused: no blocks for ten seconds
    assert not video.fresh(t)
    assert video.fresh(t + 1.0)  # the next one is about the second before it
    # A little late (a busy browser) is still news.
    assert video.fresh(t + 3.2)


def test_audio_reported_every_five_seconds_always_counts() -> None:
    audio = ReportIntervals()
    t = 0.0
    for _ in range(6):
        assert audio.fresh(t)
        t += 5.0
    assert not audio.fresh(t + 15.0)  # but not after a long silence either
