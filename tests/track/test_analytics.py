"""Counting on tracks: directions, once per direction, zones, dwell, speed, buffers."""

from __future__ import annotations

import math

import pytest

from cvtasks.track.analytics import SourceAnalytics, Tracked
from cvtasks.track.config import TrackConfig
from cvtasks.track.geometry import parse_ground, parse_line, parse_zone
from cvtasks.track.trackers import TrackerAdapter


def run(analytics: SourceAnalytics, path: list[tuple[float, float]], track_id: int = 1) -> None:
    for frame, point in enumerate(path):
        analytics.update(frame, [Tracked(track_id, "person", 0.9, point)])


def test_back_and_forth_counts_each_real_crossing_once():
    analytics = SourceAnalytics([parse_line("door=0,50,100,50")], [], None, 100, 100, 10.0, 1)
    # down (in), wobble on the far side, back up (out), down again (in)
    run(analytics, [(50, 40), (50, 60), (50, 70), (50, 65), (50, 40), (50, 30), (50, 55)])
    counts = analytics.summary()["lines"]["door"]
    assert (counts["in"], counts["out"]) == (2, 1)
    assert [e["direction"] for e in counts["events"]] == ["in", "out", "in"]
    assert counts["classes"] == {"person": {"in": 2, "out": 1}}


def test_two_tracks_and_per_frame_counts():
    analytics = SourceAnalytics([parse_line("door=0,50,100,50")], [], None, 100, 100, 10.0, 1)
    analytics.update(0, [Tracked(1, "person", 0.9, (10, 40)), Tracked(2, "car", 0.9, (90, 60))])
    analytics.update(1, [Tracked(1, "person", 0.9, (10, 60)), Tracked(2, "car", 0.9, (90, 40))])
    assert analytics.counts() == {"lines": {"door": {"in": 1, "out": 1}}}
    summary = analytics.summary()["lines"]["door"]["classes"]
    assert summary == {"car": {"in": 0, "out": 1}, "person": {"in": 1, "out": 0}}


def test_zone_occupancy_entries_and_dwell_in_seconds():
    # 10 fps read every 2nd frame: each processed frame is 0.2 s
    analytics = SourceAnalytics(
        [], [parse_zone("hall=0,0,50,0,50,50,0,50")], None, 100, 100, 10.0, 2
    )
    inside, outside = (25.0, 25.0), (75.0, 75.0)
    path = [outside, inside, inside, inside, outside, inside, outside]
    for frame, point in enumerate(path):
        analytics.update(
            frame * 2, [Tracked(7, "person", 0.9, point), Tracked(8, "dog", 0.8, inside)]
        )
    zone = analytics.summary()["zones"]["hall"]
    assert zone["entries"] == 3  # track 8 once, track 7 twice
    assert zone["max"] == 2 and zone["mean"] == pytest.approx(
        (1 + 2 + 2 + 2 + 1 + 2 + 1) / 7, abs=1e-4
    )
    assert zone["dwell_s"]["max"] == pytest.approx(7 * 0.2)  # track 8: every frame
    assert zone["dwell_s"]["mean"] == pytest.approx((7 * 0.2 + 4 * 0.2) / 2)


def test_speed_from_the_ground_plane():
    # 1 px = 0.1 m; 10 fps; moving 5 px per frame = 0.5 m per 0.1 s = 5 m/s = 18 km/h
    ground = parse_ground("0,0,100,0,100,100,0,100:0,0,10,0,10,10,0,10")
    analytics = SourceAnalytics([], [], ground, 200, 200, 10.0, 1)
    speeds = [analytics.update(f, [Tracked(1, "car", 0.9, (5.0 * f, 50.0))])[1] for f in range(12)]
    assert speeds[:5] == [None] * 5  # half a second of path is needed first
    assert speeds[5:] == [pytest.approx(18.0)] * 7
    summary = analytics.tracks[1].summary(10.0)
    assert summary["distance_m"] == pytest.approx(5.5) and summary["path_px"] == pytest.approx(55.0)


@pytest.mark.parametrize(
    ("fps", "stride", "frames"), [(30.0, 1, 30), (30.0, 3, 10), (10.0, 1, 10), (25.0, 5, 5)]
)
def test_track_buffer_is_seconds_whatever_the_rate_and_stride(fps, stride, frames):
    cfg = TrackConfig(track_buffer=1.0)
    assert TrackerAdapter(cfg, fps, stride).max_missed_frames == frames
    longer = TrackConfig(track_buffer=2.5, tracker="sort")
    assert TrackerAdapter(longer, fps, stride).max_missed_frames == math.ceil(2.5 * frames)


def test_tracker_options_reach_the_package():
    cfg = TrackConfig(
        tracker="botsort", track_activation=0.5, match_iou=0.25, min_hits=1, cmc=False
    )
    adapter = TrackerAdapter(cfg, 30.0, 1)
    assert adapter.kwargs["track_activation_threshold"] == 0.5
    assert adapter.kwargs["minimum_iou_threshold_first_assoc"] == 0.25
    assert (
        adapter.kwargs["minimum_consecutive_frames"] == 1 and adapter.kwargs["enable_cmc"] is False
    )
    assert not adapter.needs_frame
