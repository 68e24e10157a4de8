"""Per-video verdicts (`classify VIDEO --aggregate mean|vote`): after a video's frame records,
one summary record for the video: the mean probability of each class over the frames read,
the share of frames each class won, and the verdict ("fake or not on a video stream").

With ``--crop faces`` the faces of a video are tracked (each keeps a ``track_id``), and the
summary is one record per tracked face: the verdict on that face over the frames it was in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvtasks.classify.config import ClassifyConfig
from cvtasks.io.sources import InputItem
from cvtasks.stages import Stage
from cvtasks.types import Failure, Frame, Outcome


@dataclass
class VideoVerdict:
    """The summary of one video's frames."""

    method: str
    frames: int
    mean: np.ndarray  # mean probability per class
    votes: Counter[int]  # frames won per class
    labels: list[str]
    top_k: int
    track_id: int | None = None  # --crop faces: the verdict on this tracked face

    @property
    def verdict(self) -> int:
        if self.method == "vote":  # most frames; ties go to the higher mean probability
            return max(self.votes, key=lambda i: (self.votes[i], self.mean[i]))
        return int(self.mean.argmax())

    def to_record(self) -> dict[str, Any]:
        order = np.argsort(-self.mean, kind="stable")[: self.top_k]
        winner = self.verdict
        record: dict[str, Any] = {"aggregate": self.method}
        if self.track_id is not None:
            record["track_id"] = self.track_id
        return record | {
            "frames": self.frames,
            "predictions": [
                {"label": self.labels[i], "index": int(i), "score": round(float(self.mean[i]), 6)}
                for i in order
            ],
            "votes": {
                self.labels[i]: round(n / self.frames, 6) for i, n in self.votes.most_common()
            },
            "verdict": {
                "label": self.labels[winner],
                "index": winner,
                "score": round(
                    float(self.mean[winner])
                    if self.method == "mean"
                    else self.votes[winner] / self.frames,
                    6,
                ),
            },
        }

    def summary(self) -> str:
        return f"verdict {self.labels[self.verdict]} over {self.frames} frames ({self.method})"

    def annotate(self, image: np.ndarray) -> np.ndarray:
        return image


class AggregateStage(Stage):
    """Frames pass through; after each video its :class:`VideoVerdict`."""

    resume_by = "source"

    def __init__(self, cfg: ClassifyConfig, items: list[InputItem]) -> None:
        super().__init__(items)
        self.cfg = cfg

    def finished(self, item: InputItem, records: list[dict[str, Any]]) -> bool:
        """A still image with its record; a video with its verdict (a face track can only be
        followed from the first frame, so a video without one runs again)."""
        if item.kind == "image":
            return bool(records)
        return any("aggregate" in record for record in records)

    def run(self, pairs: Iterator[tuple[Frame, Outcome]]) -> Iterator[tuple[Frame, Outcome]]:
        if getattr(self.predictor, "crop", None) is not None:
            from cvtasks.faces.track import FaceTrackStage

            tracked = FaceTrackStage(self.cfg, self.items).run(pairs)
            yield from self._per_face(tracked) if self.cfg.aggregate else tracked
            return
        if not self.cfg.aggregate:
            yield from pairs
            return
        current: Frame | None = None
        total: np.ndarray | None = None
        votes: Counter[int] = Counter()
        frames = 0
        for frame, outcome in pairs:
            if current is not None and frame.source != current.source and frames:
                yield self._verdict(current, total, votes, frames)
                total, votes, frames = None, Counter(), 0
            current = frame
            probabilities = getattr(outcome, "probabilities", None)
            if (
                frame.index is not None
                and not isinstance(outcome, Failure)
                and probabilities is not None
            ):
                total = probabilities.astype(np.float64) if total is None else total + probabilities
                votes[int(probabilities.argmax())] += 1
                frames += 1
            yield frame, outcome
        if current is not None and frames:
            yield self._verdict(current, total, votes, frames)

    def _per_face(self, pairs: Iterator[tuple[Frame, Outcome]]) -> Iterator[tuple[Frame, Outcome]]:
        """Frames pass through; after each video one verdict per tracked face."""
        current: Frame | None = None
        tracks: dict[int, tuple[np.ndarray, Counter[int], int]] = {}
        for frame, outcome in pairs:
            if current is not None and frame.source != current.source:
                yield from self._face_verdicts(current, tracks)
                tracks = {}
            current = frame
            faces = getattr(outcome, "faces", None) or []
            if frame.index is not None and not isinstance(outcome, Failure):
                for face in faces:
                    if face.track_id is None or face.probabilities is None:
                        continue
                    total, votes, count = tracks.get(
                        face.track_id, (np.zeros(len(face.probabilities)), Counter(), 0)
                    )
                    votes[int(face.probabilities.argmax())] += 1
                    tracks[face.track_id] = (total + face.probabilities, votes, count + 1)
            yield frame, outcome
        if current is not None:
            yield from self._face_verdicts(current, tracks)

    def _face_verdicts(
        self, frame: Frame, tracks: dict[int, tuple[np.ndarray, Counter[int], int]]
    ) -> Iterator[tuple[Frame, Outcome]]:
        for track_id in sorted(tracks):
            total, votes, count = tracks[track_id]
            summary_frame, result = self._verdict(frame, total, votes, count)
            assert isinstance(result, VideoVerdict)
            result.track_id = track_id
            yield summary_frame, result

    def _verdict(
        self, frame: Frame, total: np.ndarray | None, votes: Counter[int], frames: int
    ) -> tuple[Frame, Outcome]:
        assert total is not None and self.cfg.aggregate is not None
        labels = list(self.predictor.labels)
        result = VideoVerdict(
            self.cfg.aggregate,
            frames,
            total / frames,
            votes,
            labels,
            min(self.cfg.top_k, len(labels)),
        )
        summary_frame = Frame(
            frame.source, None, frame.width, frame.height, frame.rel, fps=frame.fps
        )
        return summary_frame, result


def make_aggregate_stage(
    cfg: ClassifyConfig, out: Path | None, items: list[InputItem]
) -> Stage | None:
    """A verdict per video when ``--aggregate`` is given; with faces cropped (``--crop faces``
    or a run folder that crops), face tracks in videos; no stage otherwise."""
    from cvtasks.run_spec import is_run_folder

    may_crop = cfg.crop is not None or is_run_folder(str(cfg.weights).strip())
    return AggregateStage(cfg, items) if cfg.aggregate or may_crop else None
