"""The per-subscriber estimate and allocation: audio first, video down at once on congestion,
up slowly with hysteresis, paused when nothing fits, and the connection quality a page shows.
(Padding probes: tests/media/test_padding_probes.py.)"""

from __future__ import annotations

import itertools

from kernel.media_types import LinkQuality, VideoState
from media.allocation import SubscriberAllocator
from media.bandwidth import LinkEstimator
from media.layers import ALL_TEMPORAL
from media.video_ladder import VideoTrack, ladder
from tests.media.adaptation_links import (
    Clock,
    all_in_full,
    camera,
    congest,
    make_link,
    paused_camera,
    remb_stays,
    settled_on_low_rungs,
)


def test_the_ladder_climbs_temporal_layers_then_encodings() -> None:
    tracker, _ = camera()
    rungs = ladder(tracker)
    assert [(r.ssrc, r.temporal) for r in rungs] == [(1, 0), (1, 1), (1, 2), (2, ALL_TEMPORAL)]
    assert all(a.bps < b.bps for a, b in itertools.pairwise(rungs))
    assert 550_000 < rungs[-1].bps < 750_000  # the high encoding as sent (with packet overhead)
    low = tracker.layers[0]
    assert [round(low.frame_rate(t)) for t in range(3)] == [10, 20, 40]


def test_a_temporal_layer_below_8_fps_is_no_rung() -> None:
    tracker, _ = camera(fps=20)  # L1T3 at 20 fps: 5, 10 and 20 fps
    assert [(r.ssrc, r.temporal) for r in ladder(tracker)] == [(1, 1), (1, 2), (2, ALL_TEMPORAL)]


def test_remb_drop_while_sending_near_it_is_congestion_but_not_when_we_send_less() -> None:
    clock = Clock()
    e = LinkEstimator(clock=clock)
    e.sent_bps = 600_000
    for remb in (300_000, 330_000, 360_000):  # a browser's start-up ramp, below what we send
        e.on_remb(remb)
        clock.t += 0.2
    assert e.estimate_bps is None and e.congestions == 0  # no limit: not a measurement yet
    e.on_remb(2_000_000)
    assert e.estimate_bps is None and e.congestions == 0
    e.sent_bps = 1_500_000
    clock.t += 0.2
    e.on_remb(1_200_000)  # falls below what we send: the browser's queues grow
    assert e.estimate_bps == 1_200_000 and e.congestions == 1
    e.sent_bps = 200_000
    clock.t += 0.2
    e.on_remb(500_000)  # falls, but we send far less: REMB follows what it receives
    assert e.congestions == 1 and e.estimate_bps == 1_200_000


def test_per_stream_rembs_are_compared_with_their_own_streams() -> None:
    """A receiver that sends one REMB per stream (aiortc) is not congested because one
    stream's REMB is below what the whole connection carries."""
    clock = Clock()
    e = LinkEstimator(clock=clock)
    sent = {1: (0, 0), 2: (0, 0), 3: (0, 0)}  # two small videos and an audio stream
    e.sample(0, 0, sent)
    for step in range(1, 9):
        clock.t += 0.5
        sent = {1: (step * 1250, step * 5), 2: (step * 1250, step * 5), 3: (step * 4000, step * 25)}
        e.sample(step * 7000, step * 40, sent)
    assert e.sent_bps > 80_000
    for remb in (40_000, 36_000, 33_000):  # each video's own estimate, wobbling down
        e.on_remb(remb, (1,))
        e.on_remb(remb + 1000, (2,))
        clock.t += 0.3
    assert e.congestions == 0 and e.estimate_bps is None
    assert e.remb_bps is not None and e.remb_bps > 60_000 + 60_000  # both videos + audio
    e.on_remb(10_000, (1,))  # below what stream 1 carries (~30 kbit/s with overhead)
    assert e.congestions == 1 and e.estimate_bps is not None


def test_heavy_loss_cuts_the_estimate_from_what_was_sent() -> None:
    clock = Clock()
    e = LinkEstimator(clock=clock)
    e.sample(0, 0)
    clock.t += 1.0
    e.sample(100_000, 100)  # 800 kbit/s of payload, plus UDP/IP headers
    for _ in range(5):
        clock.t += 0.6
        e.on_report(0.4, 0.05)
    assert e.congestions >= 1 and e.rtt_s == 0.05
    assert e.estimate_bps is not None and e.estimate_bps < 0.85 * e.sent_bps


def test_a_loss_cut_is_sized_by_the_media_sent_not_by_retransmissions() -> None:
    """On a full link the subscriber asks for lost packets again and again: the
    transport carries far more than the media we chose to send. What got through is
    reckoned from the media."""
    clock = Clock()
    e = LinkEstimator(clock=clock)
    media = {1: (0, 0), 2: (0, 0)}
    e.sample(0, 0, media)
    for step in range(1, 9):  # 800 kbit/s of media (with overhead), 2 Mbit/s on the wire
        clock.t += 0.25
        media = {1: (step * 20_000, step * 20), 2: (step * 2_000, step * 10)}
        e.sample(step * 62_500, step * 150, media)
    assert e.sent_bps > 1_900_000
    e.on_report(0.3)
    assert e.estimate_bps is not None and e.estimate_bps < 800_000


def test_a_second_loss_cut_is_sized_by_the_latest_report_not_the_memory_of_the_first() -> None:
    """A limit applied under full video overflows the link's queue: reports of 40 % cut
    the estimate once. A second later the link drains (the latest report says 8 %) while
    the smoothed loss still remembers the overflow: a cut sized by that memory took a
    300 kbit/s link's estimate to 152 kbit/s and paused both cameras for 5 s."""
    clock = Clock()
    e = LinkEstimator(clock=clock)
    sent = 0
    e.sample(0, 0)
    for _ in range(8):  # 600 kbit/s
        clock.t += 0.25
        sent += 600_000 // 8 // 4
        e.sample(sent, 0)
    for _ in range(3):
        e.on_report(0.4)
    first = e.estimate_bps
    assert first is not None and e.congestions >= 1
    for _ in range(5):  # what the allocation now sends: under the first cut
        clock.t += 0.25
        sent += int(first * 0.9) // 8 // 4
        e.sample(sent, 0)
    assert e.loss > 0.2  # the memory of the overflow
    e.on_report(0.08)
    second = e.estimate_bps
    assert second is not None and second < first
    assert second >= e.sent_bps * (1 - 0.08) * 0.92 - 1


def test_what_the_link_took_is_the_lower_estimate_of_one_overflow() -> None:
    """A limit applied under full video: the REMB falls first (to 257 kbit/s on a 300
    kbit/s link), then climbs back at once while the loss reports of the overflow come.
    The loss cut is sized by what was sent over the last second, before the step down,
    and made 412 kbit/s the capacity: direct steps up to 364 kbit/s followed and lost
    packets for 4 s. The capacity is the lower estimate of the one overflow."""
    clock = Clock()
    e = LinkEstimator(clock=clock)
    sent = 0
    e.sample(0, 0)
    for _ in range(8):  # 1.1 Mbit/s, full video
        clock.t += 0.25
        sent += 1_100_000 // 8 // 4
        e.sample(sent, 0)
    e.on_remb(1_100_000)
    e.on_remb(257_000)  # the overuse detector: a congestion, no loss yet
    assert e.capacity_bps is None and e.estimate_bps == 257_000
    clock.t += 0.5
    e.on_remb(563_000)  # climbing back already, and dipping again on the way
    e.on_remb(500_000)
    assert e.congestions == 2 and e.capacity_bps is None
    clock.t += 0.5
    for _ in range(3):
        e.on_report(0.4)  # the overflow's losses
    assert e.capacity_bps is not None and e.capacity_bps <= 257_000
    # Long after, a congestion with loss sets what it took on its own.
    clock.t += 30
    e.on_report(0.0)
    e.on_report(0.5)
    e.on_report(0.5)
    assert e.capacity_bps == e.estimate_bps


def test_a_rising_remb_does_not_lift_the_rate_while_a_full_queue_drops_packets() -> None:
    """A tail-drop queue kept full holds the delay constant: the browser's REMB climbs
    while a quarter of the packets are dropped. The loss-based figure holds the rate."""
    clock = Clock()
    e = LinkEstimator(clock=clock)
    sent = 0
    e.sample(0, 0)
    for _ in range(4):  # 400 kbit/s into a 300 kbit/s link
        clock.t += 0.25
        sent += 400_000 // 8 // 4
        e.sample(sent, 0)
    remb = 300_000
    for _ in range(10):
        clock.t += 0.25
        sent += 400_000 // 8 // 4
        e.sample(sent, 0)
        e.on_report(0.25)
        remb = int(remb * 1.05)
        e.on_remb(remb)
    assert e.congestions >= 1
    assert e.estimate_bps is not None and e.estimate_bps < 340_000 < remb
    cap = e.loss_cap_bps
    assert cap is not None
    for _ in range(8):  # 2 s without loss: the loss-based figure grows ~8 %/s
        clock.t += 0.25
        sent += 300_000 // 8 // 4
        e.sample(sent, 0)
        for _ in range(3):
            e.on_report(0.0)
    assert e.loss_cap_bps is not None and cap * 1.1 < e.loss_cap_bps < cap * 1.2
    grown = e.loss_cap_bps
    for _ in range(8):  # past 3 s clean it grows faster: 25 %/s
        clock.t += 0.25
        sent += 300_000 // 8 // 4
        e.sample(sent, 0)
    assert e.loss_cap_bps is not None and e.loss_cap_bps > grown * 1.25


def test_a_rate_held_cleanly_raises_the_estimate() -> None:
    clock = Clock()
    e = LinkEstimator(clock=clock)
    e.sent_bps = 700_000
    e.on_remb(800_000)
    e.on_remb(300_000)  # congestion: the estimate is 300 kbit/s from here
    assert e.estimate_bps == 300_000
    sent = 0
    e.sample(0, 0)
    for _ in range(28):  # 7 s at 500 kbit/s with no loss and no new congestion
        clock.t += 0.25
        sent += 500_000 // 8 // 4
        e.sample(sent, 0)
        e.on_report(0.0)
    assert e.estimate_bps is not None and e.estimate_bps > 400_000


def test_congestion_steps_video_down_until_audio_and_video_fit() -> None:
    clock = Clock()
    link, tracks = make_link(clock)
    link.estimator.on_remb(3_000_000)
    link.tick()
    assert [t.state for t in tracks] == [VideoState.FULL, VideoState.FULL]
    link.estimator.sent_bps = 1_400_000
    clock.t += 0.5
    link.estimator.on_remb(500_000)  # the link fell to 500 kbit/s (its REMB says so)...
    link.tick()
    assert {t.state for t in tracks} == {VideoState.FULL}  # a dip? not yet
    remb_stays(link, clock, 500_000, 1.0)  # ... and keeps saying so
    used = 40_000 + sum(t.option.bps for t in tracks if t.option is not None)
    assert used <= 0.9 * 500_000
    assert {t.state for t in tracks} == {VideoState.REDUCED}
    assert link.quality is LinkQuality.WEAK


def test_when_nothing_fits_video_is_paused_and_audio_keeps_its_share() -> None:
    clock = Clock()
    link, tracks = make_link(clock)
    all_in_full(link, clock, sending=1_400_000)
    # A REMB this low alone (a browser's CPU stall looks alike): after a second the
    # lowest rungs, no pause...
    remb_stays(link, clock, 100_000, 1.0)
    assert [t.index for t in tracks] == [0, 0]
    remb_stays(link, clock, 100_000, 1.0)  # ... until it has stayed that low for 2 s
    assert [t.state for t in tracks] == [VideoState.REDUCED, VideoState.PAUSED]
    assert tracks[1].selector.paused
    clock.t += 0.5
    link.estimator.sent_bps = 90_000
    link.estimator.on_remb(70_000)
    link.tick()
    assert [t.state for t in tracks] == [VideoState.PAUSED, VideoState.PAUSED]
    assert link.quality is LinkQuality.POOR


def test_recovery_resumes_one_step_at_a_time_after_a_hold_without_flapping() -> None:
    clock = Clock()
    link, tracks = make_link(clock)
    all_in_full(link, clock, sending=1_400_000)
    link.estimator.on_remb(60_000)
    for _ in range(5):  # the REMB stays that low for 2 s: both paused
        link.tick()
        clock.t += 0.5
    assert all(t.state is VideoState.PAUSED for t in tracks)
    # The link comes back (REMB rises at once); nothing moves within the hold after congestion.
    link.estimator.on_remb(50_000)  # the last dip
    link.estimator.on_remb(3_000_000)
    clock.t += 0.5
    link.tick()
    assert all(t.state is VideoState.PAUSED for t in tracks)
    steps = []
    for _ in range(30):
        clock.t += 0.5
        link.tick()
        steps.append(tuple(t.index for t in tracks))
    # One rung per tick, lowest video first, until both are at the top.
    changes = [b for a, b in itertools.pairwise(steps) if a != b]
    for a, b in itertools.pairwise(changes):
        assert sum(y - x for x, y in zip(a, b, strict=True)) == 1
    assert [t.state for t in tracks] == [VideoState.FULL, VideoState.FULL]
    # Quality is shown better only after improve_after_s (3 s) at the better level.
    assert link.quality is LinkQuality.GOOD


def test_an_estimate_within_the_headroom_of_the_next_rung_does_not_step_up() -> None:
    clock = Clock()
    link, tracks = make_link(clock, cameras=1)
    rungs = ladder(tracks[0].tracker)
    all_in_full(link, clock, sending=1_000_000)
    remb_stays(link, clock, int((rungs[2].bps + 40_000) / 0.9) + 1, 1.0)  # room for rung 2
    assert tracks[0].index == 2
    # The estimate recovers to 5 % above what the top rung needs: inside the 15 % band.
    link.estimator.on_remb(int((rungs[3].bps + 40_000) * 1.05))
    link.estimator.loss = 0.05  # not clean either: no probing beyond the estimate
    for _ in range(40):
        clock.t += 0.5
        link.tick()
        assert tracks[0].index == 2
    # With the 15 % of headroom it steps up.
    link.estimator.on_remb(int((rungs[3].bps + 40_000) / 0.85) + 1)
    clock.t += 0.5
    link.tick()
    assert tracks[0].index == 3 and tracks[0].state is VideoState.FULL


def test_a_remb_dip_without_loss_moves_nothing_then_the_lowest_rungs_loss_pauses_at_once() -> None:
    clock = Clock()
    link, tracks = make_link(clock)
    all_in_full(link, clock, sending=1_400_000)
    link.estimator.on_remb(60_000)
    link.tick()
    clock.t += 0.5
    link.tick()
    link.estimator.on_remb(3_000_000)  # the dip is over within a second: nothing moved
    clock.t += 0.5
    link.tick()
    assert [t.state for t in tracks] == [VideoState.FULL, VideoState.FULL]
    remb_stays(link, clock, 60_000, 1.5)  # a longer one: the lowest rungs, no pause
    assert [t.state for t in tracks] == [VideoState.REDUCED, VideoState.REDUCED]
    link.estimator.sent_bps = 400_000
    congest(link, 60_000)  # the link itself is full: packets are lost
    link.tick()
    assert [t.state for t in tracks] == [VideoState.PAUSED, VideoState.PAUSED]


def test_a_remb_drop_without_loss_reduces_but_sets_no_capacity() -> None:
    clock = Clock()
    link, tracks = make_link(clock, cameras=1)
    all_in_full(link, clock, sending=1_000_000)
    remb_stays(link, clock, 300_000, 1.0)  # the browser's detector (a CPU stall looks alike)
    assert tracks[0].state is VideoState.REDUCED and link.estimator.capacity_bps is None


def test_after_a_congestion_a_rising_remb_does_not_lead_back_into_it_at_once() -> None:
    clock = Clock()
    link, tracks = make_link(clock, cameras=1)
    rungs = ladder(tracks[0].tracker)
    all_in_full(link, clock, sending=1_000_000)
    capacity = int((rungs[1].bps + 40_000) / 0.9) + 1  # the link takes rung 1 and audio
    congest(link, capacity)
    link.tick()
    assert tracks[0].index == 1 and link.estimator.capacity_bps == capacity
    # The browser's REMB climbs to 1.5x what it receives; the link itself did not change.
    link.estimator.on_remb(int(capacity * 1.5))
    for _ in range(7):  # within the probe wait (4 s): no step up past the capacity
        clock.t += 0.5
        link.tick()
        assert tracks[0].index == 1
    for _ in range(3):  # after it: one step, as a probe would
        clock.t += 0.5
        link.tick()
    assert tracks[0].index == 2


def test_a_paused_video_resumes_by_a_probe_after_the_wait() -> None:
    clock = Clock()
    link, tracks = paused_camera(clock)
    link.estimator.on_remb(400_000)  # the link is back, or the REMB climbs anyway
    for _ in range(5):  # inside the resume wait (3 s): it stays paused
        clock.t += 0.5
        link.tick()
        assert tracks[0].state is VideoState.PAUSED
    for _ in range(2):
        clock.t += 0.5
        link.tick()
    assert tracks[0].state is VideoState.REDUCED  # resumed, at its lowest rung


def test_a_failed_probe_goes_back_to_what_went_through_before_it() -> None:
    """The congestion a step up causes is that step's: the videos go back to where they
    were, not further down, and the probe's losses reported afterwards cut nothing."""
    clock = Clock()
    link, tracks = settled_on_low_rungs(clock)
    committed = link.allocator.need_bps
    probed = False
    for _ in range(20):
        clock.t += 0.5
        link.tick()
        if tracks[0].index == 3:
            probed = True
            break
    assert probed, "no probe to the high encoding"
    # The link cannot take it: its REMB falls below what we send and a third is lost.
    link.estimator.sent_bps = 700_000
    link.estimator.on_remb(300_000)
    link.estimator.on_report(0.35)
    link.tick()
    assert [t.index for t in tracks] == [2, 2]
    assert link.estimator.estimate_bps is not None and link.estimator.estimate_bps >= committed
    # Reports still counting the probe's packets arrive for a second: nothing moves.
    link.estimator.sent_bps = committed
    for _ in range(2):
        clock.t += 0.5
        link.estimator.on_report(0.3)
        link.tick()
        assert [t.index for t in tracks] == [2, 2]
    # Then the reports about what we send now: clean. Still both, none paused.
    for _ in range(8):
        clock.t += 0.5
        link.estimator.on_report(0.0)
        link.tick()
        assert [t.state for t in tracks] == [VideoState.REDUCED, VideoState.REDUCED]
        assert tracks[0].index == tracks[1].index == 2


def test_loss_after_the_settling_still_cuts() -> None:
    """Going back from a probe does not hide a link that got worse at the same time."""
    clock = Clock()
    link, tracks = settled_on_low_rungs(clock)
    link.estimator.settle(link.allocator.need_bps, 1.5)
    clock.t += 2.0
    link.estimator.on_report(0.4)  # about packets sent after the probe: the link is worse
    assert link.estimator.estimate_bps is not None
    assert link.estimator.estimate_bps < link.allocator.need_bps
    link.tick()
    assert sum(t.option.bps for t in tracks if t.option) < link.estimator.estimate_bps


def test_the_loss_based_figure_grows_only_to_what_sending_shows_and_never_lapses() -> None:
    """A paused camera sends nothing that could show the link recovered: the loss-based
    figure stays within 1.5x what is sent (a browser's REMB on a limited link does not)."""
    clock = Clock()
    e = LinkEstimator(clock=clock)
    e.sample(0, 0)
    sent = 0
    for _ in range(4):
        clock.t += 0.25
        sent += 600_000 // 8 // 4
        e.sample(sent, 0)
    e.on_report(0.5)
    cut = e.loss_cap_bps
    assert cut is not None

    def clean_for(seconds: float, bps: int) -> None:
        nonlocal sent
        for _ in range(int(seconds * 4)):
            clock.t += 0.25
            sent += bps // 8 // 4
            e.sample(sent, 0)
            e.on_report(0.0)

    clean_for(10, 100_000)  # voices only: nothing to learn from, and nothing lapses
    assert e.loss_cap_bps == cut
    clean_for(20, 300_000)  # a small video too: up to 1.5x that, no further
    e.on_remb(1_200_000)
    assert e.loss_cap_bps is not None and abs(e.loss_cap_bps - 450_000) < 5_000
    assert e.estimate_bps is not None and e.estimate_bps < 455_000


def test_a_paused_video_is_tried_again_within_seconds_whatever_the_back_off() -> None:
    clock = Clock()
    link, tracks = paused_camera(clock)
    resumed_at = []
    for _ in range(4):  # four resumes that congest: the back-off grows to its maximum
        for _ in range(20):
            clock.t += 0.5
            link.tick()
            if tracks[0].state is not VideoState.PAUSED:
                resumed_at.append(clock.t)
                break
        link.estimator.on_remb(40_000)
        link.estimator.on_report(0.3)
        link.tick()
        assert tracks[0].state is VideoState.PAUSED
        clock.t += 2.0
        link.estimator.on_report(0.0)  # after the settling: clean again
    assert len(resumed_at) == 4
    gaps = [b - a for a, b in itertools.pairwise(resumed_at)]
    assert max(gaps) <= 3.0 + 2.0 + 1.0  # resume wait, the settling above, a tick


def test_an_allocator_without_any_estimate_gives_the_best() -> None:
    clock = Clock()
    tracker, selector = camera()
    track = VideoTrack("c", selector, tracker)
    SubscriberAllocator("s", clock=clock).allocate(LinkEstimator(clock=clock), [track], 0)
    assert track.state is VideoState.FULL and track.option is not None
    assert track.option.ssrc == 2


def test_quality_turns_worse_at_once_and_better_only_after_a_while() -> None:
    clock = Clock()
    link, _ = make_link(clock, cameras=0)
    link.estimator.loss = 0.2
    link.tick()
    assert link.quality is LinkQuality.POOR
    link.estimator.loss = 0.0
    for _ in range(5):  # 2.5 s
        clock.t += 0.5
        link.tick()
        assert link.quality is LinkQuality.POOR
    clock.t += 1.0
    link.tick()
    assert link.quality is LinkQuality.GOOD
