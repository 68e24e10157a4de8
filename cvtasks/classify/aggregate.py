"""Per-video verdicts (`classify VIDEO --aggregate mean|vote`): after a video's frame records,
one summary record for the video: the mean probability of each class over the frames read,
the share of frames each class won, and the verdict ("fake or not on a video stream")."""

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

    @property
    def verdict(self) -> int:
        if self.method == "vote":  # most frames; ties go to the higher mean probability
            return max(self.votes, key=lambda i: (self.votes[i], self.mean[i]))
        return int(self.mean.argmax())

    def to_record(self) -> dict[str, Any]:
        order = np.argsort(-self.mean, kind="stable")[: self.top_k]
        winner = self.verdict
        return {
            "aggregate": self.method,
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

    def __init__(self, cfg: ClassifyConfig, items: list[InputItem]) -> None:
        super().__init__(items)
        self.cfg = cfg

    def run(self, pairs: Iterator[tuple[Frame, Outcome]]) -> Iterator[tuple[Frame, Outcome]]:
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
    """A verdict per video when ``--aggregate`` is given; no stage otherwise."""
    return AggregateStage(cfg, items) if cfg.aggregate else None
