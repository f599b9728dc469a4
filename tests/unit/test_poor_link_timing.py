"""The poor-link benchmark's clock for "video moving again" (``first_moving``): found to
the page's 0.1 s samples, only for a second that keeps moving, at the right size."""

from __future__ import annotations

import pytest

from tests.support.poor_link import Snapshot, first_moving, seconds_by_kind


def _series(frames_at: list[tuple[float, int, int]]) -> list[Snapshot]:
    """Snapshots every 0.1 s for 6 s of one camera: ``(from_s, fps, height)`` spans."""
    out, frames = [], 0.0
    for n in range(61):
        t = n / 10
        fps, height = 0, 240
        for start, f, h in frames_at:
            if t >= start:
                fps, height = f, h
        out.append(Snapshot(100 + t, {"p": {"frames": int(frames), "height": height}}, None))
        frames += fps / 10
    return out


def test_the_moment_is_the_sample_that_saw_the_first_new_frame() -> None:
    series = _series([(0, 0, 240), (2.3, 10, 240)])
    moment = first_moving(series, "p", 8)
    assert moment is not None and abs(moment - 2.4) < 0.11, moment


def test_a_burst_that_stops_is_not_moving_again() -> None:
    series = _series([(0, 0, 240), (1.0, 10, 240), (1.3, 0, 240), (4.0, 10, 240)])
    moment = first_moving(series, "p", 8)
    assert moment is not None and moment >= 4.0, moment


def test_the_size_counts_from_the_moment_it_is_reached() -> None:
    series = _series([(0, 20, 240), (3.0, 20, 480)])
    for s in series:
        s.by["p"]["width"] = s.by["p"]["height"] * 4 // 3
    assert first_moving(series, "p", 15) == pytest.approx(0.1)
    moment = first_moving(series, "p", 15, (640, 480))
    assert moment is not None and 3.0 <= moment <= 3.2, moment


def test_no_such_second_is_none() -> None:
    assert first_moving(_series([(0, 5, 240)]), "p", 8) is None
    assert first_moving(_series([(0, 0, 240), (5.5, 20, 240)]), "p", 8) is None


def _seconds(spans: list[tuple[float, int, str | None]]) -> list[Snapshot]:
    """Snapshots every second for 10 s of one camera: ``(from_s, fps, state)`` spans,
    the state being what the server told the page (``link_quality``)."""
    out, frames = [], 0.0
    for t in range(11):
        fps, state = 0, None
        for start, f, said in spans:
            if t >= start:
                fps, state = f, said
        link = {"participants": [{"participant_id": "p", "video": state}]}
        out.append(Snapshot(100.0 + t, {"p": {"frames": int(frames)}}, link))
        frames += fps
    return out


def test_a_camera_paused_then_moving_has_no_stalled_second() -> None:
    series = _seconds([(0, 0, "paused"), (4, 10, "reduced")])
    assert seconds_by_kind(series, "p") == {"moving": 6, "paused": 4, "stalled": 0}


def test_a_slow_picture_shown_as_live_is_stalled() -> None:
    series = _seconds([(0, 10, "reduced"), (3, 4, "reduced"), (6, 0, "reduced")])
    assert seconds_by_kind(series, "p") == {"moving": 3, "paused": 0, "stalled": 7}
