"""Tracking as a stage after the predictor: detections of each source, in frame order, go
through one tracker per source, then through the analytics; each frame comes out as a
:class:`TrackResult`. The engine's ordering guarantee (frames of a source in order, one source
after another) is what makes this correct."""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cvtasks.errors import UsageError
from cvtasks.io.mot import mot_lines
from cvtasks.io.sources import InputItem
from cvtasks.log import warn
from cvtasks.stages import Stage
from cvtasks.track.analytics import SourceAnalytics, Tracked
from cvtasks.track.config import TrackConfig
from cvtasks.track.evaluate import evaluate_source
from cvtasks.track.files import TrackFiles, source_stem
from cvtasks.track.geometry import (
    anchor_point,
    parse_ground,
    parse_line,
    parse_zone,
    unique_names,
)
from cvtasks.track.result import Overlay, TrackedPrediction, TrackResult
from cvtasks.track.trackers import TrackerAdapter
from cvtasks.types import Failure, Frame, Outcome

DEFAULT_FPS = 30.0


class SourceTrack:
    """The tracker, analytics and MOT rows of one source."""

    def __init__(self, stage: TrackStage, frame: Frame, rows: Path) -> None:
        cfg = stage.cfg
        self.source = frame.source
        self.fps = frame.fps or DEFAULT_FPS
        if frame.fps is None:
            warn(f"{frame.source}: no frame rate known; seconds assume {DEFAULT_FPS:g} fps")
        self.tracker = TrackerAdapter(cfg, self.fps, cfg.vid_stride)
        self.analytics = SourceAnalytics(
            stage.lines, stage.zones, stage.ground, frame.width, frame.height, self.fps,
            cfg.vid_stride,
        )  # fmt: skip
        self.trails: dict[int, deque[tuple[float, float]]] = {}
        self.frames = 0
        self.last_frame = -1
        self.rel = frame.rel
        self.failed_frames = 0
        self.detections = 0
        self.best_score = 0.0
        self.dropped = 0
        self.track_ids: set[int] = set()
        self.rows_path = rows
        self.rows = rows.open("w", encoding="utf-8")

    def step(self, frame: Frame, outcome: Outcome, stage: TrackStage) -> TrackResult | None:
        """Track one frame's detections; a failed frame ages the tracks (no detections)."""
        self.frames += 1
        self.last_frame = frame.index if frame.index is not None else self.last_frame
        self.dropped = frame.dropped
        detections = (
            [] if isinstance(outcome, Failure) else list(getattr(outcome, "predictions", []))
        )
        if isinstance(outcome, Failure):
            self.failed_frames += 1
        self.detections += len(detections)
        self.best_score = max([self.best_score, *(d.score for d in detections)])
        ids = self.tracker.update(
            [d.box for d in detections],
            [d.score for d in detections],
            [d.index for d in detections],
            frame.image,
        )
        tracked = [(d, i) for d, i in zip(detections, ids, strict=True) if i is not None]
        tracked.sort(key=lambda pair: pair[0].score, reverse=True)
        anchor = stage.cfg.anchor
        objects = [Tracked(i, d.label, d.score, anchor_point(d.box, anchor)) for d, i in tracked]
        speeds = self.analytics.update(frame.index or 0, objects)
        self.track_ids.update(i for _, i in tracked)
        for obj in objects:
            trail = self.trails.setdefault(obj.track_id, deque(maxlen=max(stage.cfg.trail, 1)))
            trail.append(obj.anchor)
        for gone in self.analytics.finished_tracks(
            frame.index or 0, 2 * self.tracker.max_missed_frames + 2
        ):
            self.trails.pop(gone.track_id, None)
            stage.emit_track(self.source, gone.summary(self.fps))
        if isinstance(outcome, Failure):
            return None
        predictions = [TrackedPrediction(d, i, speeds.get(i)) for d, i in tracked]
        overlay = Overlay(
            trails={i: list(t) for i, t in self.trails.items() if i in self.track_ids},
            lines=[(ln.name, ln.segment, ln.snapshot()) for ln in self.analytics.lines],
            zones=[(z.name, z.polygon, len(z.inside_now)) for z in self.analytics.zones],
        )
        result = TrackResult(
            predictions,
            self.analytics.counts(),
            overlay,
            with_speed=stage.ground is not None,
            untracked=len(detections) - len(tracked),
            kpt_conf=stage.cfg.kpt_conf,
        )
        self.rows.write(mot_lines({"frame": frame.index, **result.to_record()}))
        return result

    def finish(self, stage: TrackStage) -> dict[str, Any]:
        """Close the source: remaining tracks out, evaluation, the analytics entry."""
        self.rows.close()
        for track in list(self.analytics.tracks.values()):
            stage.emit_track(self.source, track.summary(self.fps))
        entry: dict[str, Any] = {
            "source": self.source,
            "frames": self.frames,
            "fps": round(self.fps, 3),
            "dropped": self.dropped,
            "tracks": len(self.track_ids),
            **self.analytics.summary(),
        }
        if not self.track_ids and self.detections:
            threshold, options = self.tracker.start_threshold()
            if self.best_score < threshold:
                warn(
                    f"track {self.source}: {self.detections} detections but no tracks: the best "
                    f"scores {self.best_score:.3f}, and {stage.cfg.tracker} starts a track only "
                    f"from a detection above {options}; lower them (both, where there are two)"
                )
        if stage.cfg.eval_gt is not None:
            entry["eval"] = evaluate_source(
                stage.cfg.eval_gt, self.source, self.rows_path, stage.single
            )
        return entry


class TrackStage(Stage):
    """Detections in, tracks out, for every source of a run."""

    resumed_itself = True  # by make_track_stage, from analytics.json

    def __init__(
        self,
        cfg: TrackConfig,
        out: Path | None,
        items: list[InputItem],
        resumed: list[dict[str, Any]] | None = None,
        all_items: list[InputItem] | None = None,
    ) -> None:
        super().__init__(items)  # the sources to track (with --resume: those not finished yet)
        self.cfg = cfg
        every = all_items if all_items is not None else items
        self.lines = [parse_line(spec) for spec in cfg.line]
        self.zones = [parse_zone(spec) for spec in cfg.zone]
        unique_names(self.lines, "--line")
        unique_names(self.zones, "--zone")
        self.ground = parse_ground(cfg.ground) if cfg.ground else None
        if cfg.detections is not None and len(every) != 1:
            raise UsageError(
                f"--detections holds the detections of one video or sequence, but {len(every)} "
                "inputs were given"
            )
        self.single = len(every) == 1
        self.stems = {item.source: source_stem(item) for item in every}
        self.files = TrackFiles(out, resumed) if out is not None else None
        self._scratch = tempfile.TemporaryDirectory(prefix="cvtasks-mot-") if out is None else None
        self.current: SourceTrack | None = None
        self.entries: list[dict[str, Any]] = []

        self.needs_images = cfg.tracker == "botsort" and cfg.cmc  # BoT-SORT's CMC sees frames

    def sinks(self) -> list[Any]:
        return [self.files] if self.files is not None else []

    def emit_track(self, source: str, summary: dict[str, Any]) -> None:
        if self.files is not None:
            self.files.add_track(source, summary)

    def _rows_path(self, source: str) -> Path:
        stem = self.stems.get(source, Path(source).stem)
        if self.files is not None:
            return self.files.mot_path(stem)
        assert self._scratch is not None
        return Path(self._scratch.name) / f"{stem}.txt"

    def run(self, pairs: Iterator[tuple[Frame, Outcome]]) -> Iterator[tuple[Frame, Outcome]]:
        for frame, outcome in pairs:
            if frame.index is None:  # the whole source failed (cannot open, no frames)
                yield frame, outcome
                continue
            if self.current is None or self.current.source != frame.source:
                yield from self._end_source()
                self.current = SourceTrack(self, frame, self._rows_path(frame.source))
                self.current.rel = frame.rel
            result = self.current.step(frame, outcome, self)
            yield frame, (outcome if result is None else result)
        yield from self._end_source()

    def _end_source(self) -> Iterator[tuple[Frame, Outcome]]:
        """Finish the current source; a detections file reaching past its last frame makes
        the source fail (after its frames were tracked and written)."""
        if self.current is None:
            return
        source, rel, last = self.current.source, self.current.rel, self.current.last_frame
        entry = self.current.finish(self)
        self.entries.append(entry)
        if self.files is not None:
            self.files.add_source(entry)
        self.current = None
        beyond = getattr(self.predictor, "beyond", None)
        problem = beyond(last) if beyond is not None else None
        if problem is not None:
            self.failures += 1
            yield Frame(source, None, rel=rel), Failure(problem)

    def finish(self) -> list[str]:
        """Close the last source (after an interruption too); one summary line per source."""
        for _ in self._end_source():
            pass
        if self._scratch is not None:
            self._scratch.cleanup()
        return [summary_line(entry) for entry in self.entries]


def summary_line(entry: dict[str, Any]) -> str:
    """``track clip.mp4: 300 frames, 12 tracks, door in 4 out 3, hall max 5 | MOTA ...``."""
    parts = [f"{entry['frames']} frames", f"{entry['tracks']} tracks"]
    if entry.get("dropped"):
        parts.append(f"{entry['dropped']} dropped")
    for name, line in entry.get("lines", {}).items():
        parts.append(f"{name} in {line['in']} out {line['out']}")
    for name, zone in entry.get("zones", {}).items():
        parts.append(f"{name} max {zone['max']}, {zone['entries']} entries")
    text = f"track {entry['source']}: " + ", ".join(parts)
    scores = entry.get("eval")
    if scores and "error" not in scores:
        text += (
            f" | HOTA {scores['HOTA']:.3f} MOTA {scores['MOTA']:.3f} IDF1 {scores['IDF1']:.3f} "
            f"IDSW {scores['IDSW']}"
        )
    elif scores:
        text += f" | eval: {scores['error']}"
    return text
