"""`--track` for face boxes (`cvtasks faces`, `cvtasks gaze`): one tracker per video, so that a
face keeps its id from frame to frame (the same tracker adapter as `cvtasks track`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cvtasks.io.sources import InputItem
from cvtasks.stages import Stage
from cvtasks.types import Failure, Frame, Outcome


class FaceTrackStage(Stage):
    """Gives every face of a result (``outcome.faces``: objects with ``box``, ``score`` and
    a writable ``track_id``) the id of its track."""

    resume_by = "source"  # a still image is finished once it has its record; a video never

    def __init__(self, cfg: Any, items: list[InputItem]) -> None:
        super().__init__(items)
        self.cfg = cfg

    def run(self, pairs: Iterator[tuple[Frame, Outcome]]) -> Iterator[tuple[Frame, Outcome]]:
        from cvtasks.track.config import TrackConfig
        from cvtasks.track.trackers import TrackerAdapter

        # every face kept is confident enough to start or extend a track; BoT-SORT (without
        # camera-motion compensation) gives the first frame's faces ids at once, a face
        # appearing later gets its id from its second frame
        settings = TrackConfig(
            tracker="botsort", cmc=False, track_activation=0.0, high_conf=0.0, min_hits=1
        )
        tracker, source = None, None
        for frame, outcome in pairs:
            faces = getattr(outcome, "faces", None)
            if frame.index is None or isinstance(outcome, Failure) or faces is None:
                yield frame, outcome
                continue
            if tracker is None or frame.source != source:
                tracker = TrackerAdapter(settings, frame.fps or 30.0, self.cfg.vid_stride)
                source = frame.source
            ids = tracker.update([f.box for f in faces], [f.score for f in faces], [0] * len(faces))
            for face, track_id in zip(faces, ids, strict=True):
                face.track_id = track_id
            yield frame, outcome


def make_face_track_stage(cfg: Any, out: Path | None, items: list[InputItem]) -> Stage | None:
    return FaceTrackStage(cfg, items) if cfg.track else None
