"""A thin adapter over the `trackers` package (imported with this module, before any stream
is opened: a live source must not wait for imports): boxes and scores in, a track id per box out.

One adapter per source. The package's ids start at 0 and are never reused by one tracker;
cvtasks reports them from 1. Boxes the tracker has not confirmed yet (id -1) get no id.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import supervision as sv
import trackers

from cvtasks.track.config import TrackConfig

# Keyword names of each tracker's options (the package names them differently).
_KEYWORDS: dict[str, dict[str, str]] = {
    "bytetrack": {
        "activation": "track_activation_threshold",
        "high": "high_conf_det_threshold",
        "iou": "minimum_iou_threshold",
        "hits": "minimum_consecutive_frames",
    },
    "sort": {
        "activation": "track_activation_threshold",
        "iou": "minimum_iou_threshold",
        "hits": "minimum_consecutive_frames",
    },
    "ocsort": {
        "high": "high_conf_det_threshold",
        "iou": "minimum_iou_threshold",
        "hits": "minimum_consecutive_frames",
    },
    "botsort": {
        "activation": "track_activation_threshold",
        "high": "high_conf_det_threshold",
        "iou": "minimum_iou_threshold_first_assoc",
        "hits": "minimum_consecutive_frames",
    },
}


def buffer_frames(seconds: float) -> int:
    """The lost-track buffer in the package's unit: frames of a 30 fps video. The package
    scales it by ``frame_rate / 30``, so with ``frame_rate = fps / stride`` a track survives
    ``seconds`` of real time whatever the frame rate and the stride."""
    return round(seconds * 30)


def tracker_kwargs(cfg: TrackConfig, fps: float, stride: int) -> dict[str, Any]:
    """Constructor arguments for ``cfg.tracker`` on a source of ``fps`` read every ``stride``."""
    names = _KEYWORDS[cfg.tracker]
    kwargs: dict[str, Any] = {
        "lost_track_buffer": buffer_frames(cfg.track_buffer),
        "frame_rate": fps / stride,
    }
    given = {
        "activation": cfg.track_activation,
        "high": cfg.high_conf,
        "iou": cfg.match_iou,
        "hits": cfg.min_hits,
    }
    for key, value in given.items():
        if value is not None and key in names:
            kwargs[names[key]] = value
    if cfg.tracker == "botsort":
        kwargs["enable_cmc"] = cfg.cmc
    return kwargs


def make_tracker(name: str, kwargs: dict[str, Any]) -> Any:
    """The `trackers` class behind ``name``, built with ``kwargs``."""
    classes = {
        "bytetrack": trackers.ByteTrackTracker,
        "ocsort": trackers.OCSORTTracker,
        "botsort": trackers.BoTSORTTracker,
        "sort": trackers.SORTTracker,
    }
    return classes[name](**kwargs)


class TrackerAdapter:
    """``update(boxes, scores, classes, frame) -> ids``: one id (or None) per box, in order."""

    def __init__(self, cfg: TrackConfig, fps: float, stride: int) -> None:
        self.name = cfg.tracker
        self.kwargs = tracker_kwargs(cfg, fps, stride)
        self.tracker = make_tracker(self.name, self.kwargs)
        self.needs_frame = self.name == "botsort" and cfg.cmc

    def start_threshold(self) -> tuple[float, str]:
        """The lowest score from which a detection can start a track, and which options set it:
        ByteTrack and BoT-SORT start tracks from detections above both --track-activation and
        --high-conf, OC-SORT from --high-conf, SORT from --track-activation."""
        import inspect

        defaults = {
            name: param.default
            for name, param in inspect.signature(type(self.tracker).__init__).parameters.items()
        }
        names = _KEYWORDS[self.name]
        parts = []
        for key, flag in (("activation", "--track-activation"), ("high", "--high-conf")):
            if key in names:
                value = self.kwargs.get(names[key], defaults.get(names[key]))
                if isinstance(value, (int, float)):
                    parts.append((float(value), f"{flag} {float(value):g}"))
        if not parts:
            return 0.0, ""
        return max(v for v, _ in parts), " and ".join(text for _, text in parts)

    @property
    def max_missed_frames(self) -> int:
        """Frames a lost track is kept (after scaling by the frame rate)."""
        return int(self.tracker.maximum_frames_without_update)

    def update(
        self,
        boxes: Sequence[Sequence[float]],
        scores: Sequence[float],
        classes: Sequence[int],
        frame: np.ndarray | None = None,
    ) -> list[int | None]:
        count = len(boxes)
        detections = sv.Detections(
            xyxy=np.asarray(boxes, dtype=np.float32).reshape(count, 4),
            confidence=np.asarray(scores, dtype=np.float32).reshape(count),
            class_id=np.asarray(classes, dtype=int).reshape(count),
            data={"position": np.arange(count)},
        )
        image = None
        if self.needs_frame and frame is not None:
            image = np.ascontiguousarray(frame[..., ::-1])  # the package works in OpenCV's BGR
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "frame ignored" notices from trackers without CMC
            tracked = self.tracker.update(detections, frame=image)
        ids: list[int | None] = [None] * count
        positions = tracked.data.get("position", np.arange(0)) if len(tracked) else []
        for position, tracker_id in zip(positions, tracked.tracker_id, strict=True):
            if int(tracker_id) >= 0:
                ids[int(position)] = int(tracker_id) + 1
        return ids
