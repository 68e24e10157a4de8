"""Monocular depth with Hugging Face transformers (Depth Anything V1/V2, DPT/MiDaS, ZoeDepth).

Preprocessing is the model's own image processor; the prediction is brought back to the
original image size by the processor's own ``post_process_depth_estimation``. Whether values
are relative inverse depth (larger = nearer, no unit) or metric depth in metres comes from
the model's config, never from a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cvtasks.depth.config import DepthConfig
from cvtasks.depth.eval import DepthScores, find_ground_truth, load_ground_truth, score
from cvtasks.depth.models import depth_kind, known_model, load_depth_model
from cvtasks.detect.predictor import run_grouped
from cvtasks.errors import UsageError
from cvtasks.export.metadata import is_exported
from cvtasks.log import warn
from cvtasks.render.figure import beside, colour_bar
from cvtasks.render.heatmap import colorize
from cvtasks.tasks.base import Predictor
from cvtasks.types import Artifact, Frame, Result


def _stretch(depth: np.ndarray, kind: str) -> tuple[np.ndarray, float, float]:
    """Nearness scaled to 0-1 between the 2nd and 98th percentiles (1 = near), and the depth
    values at those two ends (near, far)."""
    nearness = depth if kind == "relative" else -depth
    low, high = (float(v) for v in np.percentile(nearness, [2, 98]))
    values = (nearness - low) / (high - low) if high > low else np.zeros_like(nearness)
    near, far = (high, low) if kind == "relative" else (-high, -low)
    return np.clip(values, 0, 1), near, far


def depth_colours(depth: np.ndarray, kind: str, colormap: str) -> np.ndarray:
    """RGB image of a depth map, near warm and far cool, stretched between the 2nd and 98th
    percentiles; pixel-aligned with the input."""
    return colorize(_stretch(depth, kind)[0], colormap)


def depth_figure(depth: np.ndarray, kind: str, colormap: str) -> np.ndarray:
    """The colour map with a colour bar saying what the colours mean: metres for metric
    models, relative inverse depth (larger = nearer, no unit) for the others."""
    values, near, far = _stretch(depth, kind)
    unit = " m" if kind == "metric" else ""
    label = "depth (m)" if kind == "metric" else "inverse depth (relative)"
    ticks = [(1.0, f"{near:.3g}{unit} near"), (0.0, f"{far:.3g}{unit} far")]
    ramp = colorize(np.linspace(0, 1, 256)[None], colormap)[0]
    bar = colour_bar(depth.shape[0], ramp, ticks, label)
    return beside(colorize(values, colormap), bar)


class _Preprocess:
    """The model's image processor on one PIL image -> pixel_values (3 x h x w)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        pixels: torch.Tensor = self.processor(images=image, return_tensors="pt")["pixel_values"][0]
        return pixels


@dataclass
class DepthResult:
    """A depth map at the original resolution, with its meaning and optional scores."""

    depth: np.ndarray  # H x W float32
    kind: str  # "relative" or "metric"
    colormap: str
    raw_format: str
    scores: DepthScores | None = None
    ground_truth: str | None = None
    png16_scale: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        top = float(np.nanmax(self.depth)) if self.depth.size else 0.0
        self.png16_scale = top / 65535.0 if top > 0 else 1.0

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "depth_type": "metric" if self.kind == "metric" else "relative_inverse",
            "units": "m" if self.kind == "metric" else None,
            "stats": {
                "min": round(float(np.min(self.depth)), 6),
                "max": round(float(np.max(self.depth)), 6),
                "median": round(float(np.median(self.depth)), 6),
            },
        }
        if self.raw_format == "png16":
            record["png16_scale"] = self.png16_scale  # value = pixel * scale
        if self.scores is not None:
            record["eval"] = {"ground_truth": self.ground_truth, **self.scores.to_record()}
        return record

    def summary(self) -> str:
        unit = " m" if self.kind == "metric" else " (relative)"
        text = f"median {np.median(self.depth):.3g}{unit}"
        if self.scores is not None:
            text += f", AbsRel {self.scores.abs_rel:.3f}, d1 {self.scores.delta1:.3f}"
        return text

    def annotate(self, image: np.ndarray) -> np.ndarray:
        return depth_colours(self.depth, self.kind, self.colormap)

    def artifacts(self) -> list[Artifact]:
        raw_suffix = ".png" if self.raw_format == "png16" else ".npy"
        return [
            Artifact("depth", "depth", ".png", self._write_colours),
            Artifact("figure", "depth", ".figure.png", self._write_figure),
            Artifact("raw", "depth_raw", raw_suffix, self._write_raw),
        ]

    def _write_colours(self, path: Path) -> None:
        """The colour map alone, pixel-aligned with the input (overlay it, diff it)."""
        colours = depth_colours(self.depth, self.kind, self.colormap)
        Image.fromarray(colours).save(path, format="PNG")

    def _write_figure(self, path: Path) -> None:
        """The colour map beside a colour bar that says what the colours mean."""
        Image.fromarray(depth_figure(self.depth, self.kind, self.colormap)).save(path, format="PNG")

    def _write_raw(self, path: Path) -> None:
        if self.raw_format == "png16":
            levels = np.clip(np.rint(self.depth / self.png16_scale), 0, 65535).astype(np.uint16)
            Image.fromarray(levels).save(path, format="PNG")
        else:
            with path.open("wb") as handle:
                np.save(handle, self.depth.astype(np.float32))


def exported_depth(cfg: DepthConfig, device: torch.device) -> tuple[Any, Any, str]:
    """(runtime model, image processor, depth kind) of an exported depth model."""
    from cvtasks.depth.runtime import exported_processor, runtime_depth
    from cvtasks.export.metadata import read_metadata
    from cvtasks.export.runtime import Runtime

    meta = read_metadata(cfg.weights)
    runtime = Runtime(cfg.weights, cfg.backend, device, cfg.threads)
    return runtime_depth(runtime), exported_processor(meta), str(meta["depth_kind"])


class DepthPredictor(Predictor):
    """A transformers depth model with its own pre- and post-processing."""

    task = "depth"

    def __init__(self, cfg: DepthConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        random_init = cfg.weights.lower() == "none"
        if not (random_init or cfg.weights == "DEFAULT" or is_exported(cfg.weights)):
            raise UsageError(
                f"-w {cfg.weights}: depth takes DEFAULT (the model's own weights), none, or an "
                "exported file (.onnx, .xml, .pt2, .torchscript from `cvtasks export`)"
            )
        self.model: Any
        self._scores: list[DepthScores] = []
        if is_exported(cfg.weights):  # --backend with a `cvtasks export` file
            self.model, self.processor, self.kind = exported_depth(cfg, device)
            self.source = cfg.weights
            return
        self.model, self.processor, self.source = load_depth_model(cfg.model, random_init)
        if random_init:
            warn(f"--weights none: {cfg.model} has random weights; its depth is meaningless")
        self.kind = depth_kind(self.model.config)
        known = known_model(cfg.model)
        if known is not None and known.kind != self.kind:
            warn(f"{cfg.model}: its config says {self.kind} depth, the catalogue {known.kind}")
        self.model.to(device)

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return _Preprocess(self.processor)

    def collate(self, inputs: Sequence[Any]) -> Any:
        return list(inputs)

    def decode_min_side(self) -> int | None:
        size = getattr(self.processor, "size", None) or {}
        sides = [int(v) for k, v in dict(size).items() if k in ("height", "width", "shortest_edge")]
        return max(sides) if sides else None

    def infer(self, batch: list[torch.Tensor]) -> list[torch.Tensor]:
        def forward(group: list[torch.Tensor]) -> list[torch.Tensor]:
            return list(self.model(pixel_values=torch.stack(group)).predicted_depth)

        return run_grouped(forward, batch)

    def postprocess(self, outputs: Sequence[torch.Tensor], frames: Sequence[Frame]) -> list[Result]:
        from transformers.modeling_outputs import DepthEstimatorOutput

        assert isinstance(self.cfg, DepthConfig)
        results: list[Result] = []
        for predicted, frame in zip(outputs, frames, strict=True):
            wrapped = DepthEstimatorOutput(predicted_depth=predicted.float().unsqueeze(0))
            post = self.processor.post_process_depth_estimation(
                wrapped, [(frame.height, frame.width)]
            )
            depth = post[0]["predicted_depth"].detach().float().cpu().numpy().astype(np.float32)
            result = DepthResult(depth, self.kind, self.cfg.colormap, self.cfg.raw_format)
            self._evaluate(result, frame)
            results.append(result)
        return results

    def _evaluate(self, result: DepthResult, frame: Frame) -> None:
        assert isinstance(self.cfg, DepthConfig)
        if self.cfg.eval_gt is None:
            return
        single = len(self.cfg.inputs) == 1 and Path(self.cfg.inputs[0]).is_file()
        path = find_ground_truth(self.cfg.eval_gt, frame.source, single)
        if path is None:
            warn(f"no ground truth for {frame.source} in {self.cfg.eval_gt}")
            return
        truth = load_ground_truth(path, self.cfg.gt_scale)
        result.scores = score(result.depth, truth, self.kind, self.cfg.gt_kind)
        result.ground_truth = str(path)

    def observe(self, result: Result) -> None:
        scores = getattr(result, "scores", None)
        if scores is not None:
            self._scores.append(scores)

    def final_report(self) -> str | None:
        """Mean scores over the evaluated images (printed on stderr at the end)."""
        if not self._scores:
            return None
        abs_rel = float(np.mean([s.abs_rel for s in self._scores]))
        delta1 = float(np.mean([s.delta1 for s in self._scores]))
        count = len(self._scores)
        return f"depth eval over {count} image(s): AbsRel {abs_rel:.4f}, delta<1.25 {delta1:.4f}"
