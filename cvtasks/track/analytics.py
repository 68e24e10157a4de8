"""Video analytics on tracks: line crossings, zone occupancy and dwell, paths and speed.

Everything here is per source and consumes, frame by frame, each tracked object's id, class
and anchor point; it knows nothing of models or files.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from cvtasks.track.geometry import Ground, LineSpec, Point, ZoneSpec, crossing, inside

SPEED_WINDOW_S = 0.5  # speed is measured over the last half second of a track's path


@dataclass
class Tracked:
    """One tracked object in one frame."""

    track_id: int
    label: str
    score: float
    anchor: Point


@dataclass
class TrackHistory:
    """What a track did: when, where, as what."""

    track_id: int
    first_frame: int
    last_frame: int
    labels: Counter[str] = field(default_factory=Counter)
    score_sum: float = 0.0
    observations: int = 0
    path_px: float = 0.0
    distance_m: float | None = None
    trajectory: list[tuple[int, float, float]] = field(default_factory=list)
    recent_ground: deque[tuple[float, Point]] = field(default_factory=deque)

    def summary(self, fps: float) -> dict[str, Any]:
        record: dict[str, Any] = {
            "track_id": self.track_id,
            "label": self.labels.most_common(1)[0][0] if self.labels else None,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "seconds": round((self.last_frame - self.first_frame) / fps, 3),
            "observations": self.observations,
            "path_px": round(self.path_px, 2),
            "mean_score": round(self.score_sum / max(self.observations, 1), 4),
        }
        if self.distance_m is not None:
            record["distance_m"] = round(self.distance_m, 3)
        record["trajectory"] = [[f, round(x, 1), round(y, 1)] for f, x, y in self.trajectory]
        return record


@dataclass
class LineCount:
    """Crossings of one line, in both directions, overall and per class."""

    name: str
    segment: tuple[Point, Point]
    counts: Counter[str] = field(default_factory=Counter)  # "in", "out"
    by_class: dict[str, Counter[str]] = field(default_factory=dict)
    last: dict[int, str] = field(default_factory=dict)  # track id -> last counted direction
    events: list[tuple[int, str, str]] = field(default_factory=list)  # frame, direction, class

    def step(self, frame: int, obj: Tracked, previous: Point) -> None:
        direction = crossing(previous, obj.anchor, self.segment)
        if direction is None or self.last.get(obj.track_id) == direction:
            return  # no crossing, or the same direction again before crossing back
        self.last[obj.track_id] = direction
        self.counts[direction] += 1
        self.by_class.setdefault(obj.label, Counter())[direction] += 1
        self.events.append((frame, direction, obj.label))

    def snapshot(self) -> dict[str, int]:
        return {"in": self.counts["in"], "out": self.counts["out"]}

    def summary(self) -> dict[str, Any]:
        return {
            **self.snapshot(),
            "classes": {
                label: {"in": c["in"], "out": c["out"]}
                for label, c in sorted(self.by_class.items())
            },
            "events": [{"frame": f, "direction": d, "label": label} for f, d, label in self.events],
        }


@dataclass
class ZoneCount:
    """Occupancy, entries and dwell time of one polygon zone."""

    name: str
    polygon: list[Point]
    inside_now: set[int] = field(default_factory=set)
    occupancy_sum: int = 0
    occupancy_max: int = 0
    frames: int = 0
    entries: int = 0
    dwell_frames: Counter[int] = field(default_factory=Counter)  # track id -> frames inside
    by_class_now: Counter[str] = field(default_factory=Counter)

    def step(self, objects: list[Tracked]) -> None:
        now = {obj.track_id for obj in objects if inside(obj.anchor, self.polygon)}
        self.entries += len(now - self.inside_now)
        self.inside_now = now
        self.by_class_now = Counter(obj.label for obj in objects if obj.track_id in now)
        for track_id in now:
            self.dwell_frames[track_id] += 1
        self.frames += 1
        self.occupancy_sum += len(now)
        self.occupancy_max = max(self.occupancy_max, len(now))

    def snapshot(self) -> dict[str, Any]:
        return {"count": len(self.inside_now), "classes": dict(sorted(self.by_class_now.items()))}

    def summary(self, seconds_per_frame: float) -> dict[str, Any]:
        dwell = [n * seconds_per_frame for n in self.dwell_frames.values()]
        return {
            "max": self.occupancy_max,
            "mean": round(self.occupancy_sum / max(self.frames, 1), 4),
            "entries": self.entries,
            "dwell_s": {
                "mean": round(sum(dwell) / len(dwell), 3) if dwell else 0.0,
                "max": round(max(dwell), 3) if dwell else 0.0,
                "tracks": len(dwell),
            },
        }


class SourceAnalytics:
    """Lines, zones, paths and speeds of the tracks of one source."""

    def __init__(
        self,
        lines: list[LineSpec],
        zones: list[ZoneSpec],
        ground: Ground | None,
        width: int,
        height: int,
        fps: float,
        stride: int,
    ) -> None:
        self.lines = [LineCount(s.name, s.resolve(width, height)) for s in lines]
        self.zones = [ZoneCount(s.name, s.resolve(width, height)) for s in zones]
        self.ground = ground
        self.fps = fps
        self.seconds_per_frame = stride / fps  # time between two processed frames
        self.tracks: dict[int, TrackHistory] = {}
        self.last_anchor: dict[int, Point] = {}

    def update(self, frame: int, objects: list[Tracked]) -> dict[int, float | None]:
        """Advance by one processed frame; returns each object's speed in km/h (None without
        a ground plane or before half a second of path)."""
        speeds: dict[int, float | None] = {}
        for obj in objects:
            previous = self.last_anchor.get(obj.track_id)
            if previous is not None:
                for line in self.lines:
                    line.step(frame, obj, previous)
            speeds[obj.track_id] = self._observe(frame, obj, previous)
            self.last_anchor[obj.track_id] = obj.anchor
        for zone in self.zones:
            zone.step(objects)
        return speeds

    def _observe(self, frame: int, obj: Tracked, previous: Point | None) -> float | None:
        history = self.tracks.get(obj.track_id)
        if history is None:
            history = self.tracks[obj.track_id] = TrackHistory(obj.track_id, frame, frame)
        history.last_frame = frame
        history.labels[obj.label] += 1
        history.score_sum += obj.score
        history.observations += 1
        history.trajectory.append((frame, obj.anchor[0], obj.anchor[1]))
        if previous is not None:
            history.path_px += math.dist(previous, obj.anchor)
        if self.ground is None:
            return None
        here = self.ground.to_metres(obj.anchor)
        recent = history.recent_ground
        if recent:
            history.distance_m = (history.distance_m or 0.0) + math.dist(recent[-1][1], here)
        else:
            history.distance_m = 0.0
        now = frame / self.fps
        recent.append((now, here))
        while len(recent) > 2 and now - recent[1][0] >= SPEED_WINDOW_S:
            recent.popleft()
        elapsed = now - recent[0][0]
        if elapsed < SPEED_WINDOW_S * 0.999:
            return None
        return round(math.dist(recent[0][1], here) / elapsed * 3.6, 2)

    def counts(self) -> dict[str, Any]:
        """The current line and zone counts (for the per-frame record)."""
        found: dict[str, Any] = {}
        if self.lines:
            found["lines"] = {line.name: line.snapshot() for line in self.lines}
        if self.zones:
            found["zones"] = {zone.name: zone.snapshot() for zone in self.zones}
        return found

    def finished_tracks(self, frame: int, older_than: int) -> list[TrackHistory]:
        """Tracks not seen for more than ``older_than`` processed frames: they cannot come back,
        so they can be written out and forgotten (memory stays flat on long videos)."""
        limit = frame - older_than * self.seconds_per_frame * self.fps
        gone = [t for t in self.tracks.values() if t.last_frame < limit]
        for track in gone:
            del self.tracks[track.track_id]
            self.last_anchor.pop(track.track_id, None)
        return gone

    def summary(self) -> dict[str, Any]:
        return {
            "lines": {line.name: line.summary() for line in self.lines},
            "zones": {zone.name: zone.summary(self.seconds_per_frame) for zone in self.zones},
        }
