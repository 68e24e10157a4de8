"""Where `cvtasks track` gets detections: a detect, pose or instance-segment model, or a
detections file (no model at all)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from cvtasks.detect.predictor import Detection, DetectPredictor, DetectResult
from cvtasks.io.mot import DetectionsFile, read_detections
from cvtasks.tasks.base import Predictor
from cvtasks.track.config import TrackConfig
from cvtasks.types import Frame, Result


def make_track_predictor(cfg: TrackConfig, device: torch.device) -> Predictor:
    """The predictor whose detections are tracked, by ``--detections`` or the model's family."""
    if cfg.detections is not None:
        return FileDetectionsPredictor(cfg, device)
    from cvtasks.pose.predictor import PosePredictor, pose_models
    from cvtasks.segment.predictor import InstancePredictor, instance_models

    if cfg.model in pose_models():
        return PosePredictor(cfg, device)
    if cfg.model in instance_models():
        return InstancePredictor(cfg, device)
    return DetectPredictor(cfg, device)


def _size_only(image: Image.Image) -> torch.Tensor:
    """No model input is needed: the frame is decoded for its size (and for drawing)."""
    return torch.empty(0)


class FileDetectionsPredictor(Predictor):
    """Detections read from a MOTChallenge det.txt or cvtasks JSONL, by frame number."""

    task = "track"

    def __init__(self, cfg: TrackConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        assert cfg.detections is not None
        self.file: DetectionsFile = read_detections(cfg.detections)
        self.frame_names: list[str] | None = None  # a sequence's frames, for per-image JSONL
        if self.file.by_source:
            from cvtasks.io.sources import expand_sequences

            items = expand_sequences(cfg.inputs)
            self.frame_names = [p.name for p in items[0].frames] if items[0].frames else None

    @property
    def model_name(self) -> str:
        assert isinstance(self.cfg, TrackConfig) and self.cfg.detections is not None
        return f"detections:{self.cfg.detections}"

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return _size_only

    def collate(self, inputs: Sequence[Any]) -> Any:
        return list(inputs)

    def to_device(self, batch: Any) -> Any:
        return batch

    def infer(self, batch: Any) -> Any:
        return batch

    def postprocess(self, outputs: Any, frames: Sequence[Frame]) -> list[Result]:
        assert isinstance(self.cfg, TrackConfig)
        results: list[Result] = []
        for frame in frames:
            found = self.file.for_frame(frame.index or 0, self.frame_names)
            kept = sorted(
                (d for d in found if d.score >= self.cfg.conf), key=lambda d: d.score, reverse=True
            )[: self.cfg.max_det]
            detections = [
                Detection(d.label, d.index, round(d.score, 6), [round(v, 2) for v in d.box])
                for d in kept
            ]
            results.append(DetectResult(detections, frame.width, frame.height))
        return results

    def beyond(self, last_frame: int) -> str | None:
        """A reason to fail the source when the file has detections after its last frame
        (``last_frame``: the last frame processed, every --vid-stride-th)."""
        assert isinstance(self.cfg, TrackConfig)
        if self.file.frames and self.file.last_frame > last_frame + self.cfg.vid_stride - 1:
            return (
                f"--detections {self.file.path} has detections up to frame "
                f"{self.file.last_frame + 1} (1-based) but the source ended at frame "
                f"{last_frame + 1}: wrong file for this video?"
            )
        return None
