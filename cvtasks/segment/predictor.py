"""Segmentation: semantic (deeplabv3, fcn, lraspp) and instance (maskrcnn), one command.

Semantic models: each original-size pixel gets the argmax of the logits upsampled (bilinear)
to the original image size, computed without upsampling every class; the class map is
written as an index PNG (pixel value = class index, with a colour palette) and named in the
record with each present class's pixel fraction.
Instance models: detect's records plus each object's mask as COCO RLE or polygons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.models import get_model

from cvtasks.detect.predictor import (
    Detection,
    DetectPredictor,
    DetectResult,
    detection_colours,
    draw_detections,
    parse_classes,
    run_grouped,
)
from cvtasks.log import warn
from cvtasks.render.draw import blend_masks, colour, draw_legend
from cvtasks.segment.config import SegmentConfig
from cvtasks.tasks.base import Predictor, class_names
from cvtasks.types import Artifact, Frame, Result
from cvtasks.weights import (
    ResolvedWeights,
    check_model_name,
    load_into,
    load_weights,
    resolve_weights,
)

_LEGEND_ROWS = 8


def semantic_models() -> list[str]:
    return list(torchvision.models.list_models(module=torchvision.models.segmentation))


def instance_models() -> list[str]:
    names = torchvision.models.list_models(module=torchvision.models.detection)
    return [n for n in names if n.startswith("maskrcnn_")]


def segmentation_models() -> list[str]:
    return semantic_models() + instance_models()


def make_segment_predictor(cfg: SegmentConfig, device: torch.device) -> Predictor:
    """The semantic or instance predictor, by model family."""
    if cfg.model in instance_models():
        return InstancePredictor(cfg, device)
    check_model_name(cfg.model, segmentation_models(), "segment")
    return SemanticPredictor(cfg, device)


# --------------------------------------------------------------------------- semantic


def palette_bytes(count: int) -> list[int]:
    """A PNG palette: background (index 0) black, class i the stable colour of class i."""
    flat = [0, 0, 0]
    for i in range(1, 256):
        flat += list(colour(i)) if i < count else [0, 0, 0]
    return flat


@dataclass
class ClassArea:
    """A class present in the image and the fraction of pixels it covers."""

    label: str
    index: int
    fraction: float


@dataclass
class SemanticResult:
    """The class of every pixel (``mask``: HxW class indices) and the classes present."""

    mask: np.ndarray
    predictions: list[ClassArea]
    categories: list[str]
    alpha: float

    def to_record(self) -> dict[str, Any]:
        return {"predictions": [vars(p) for p in self.predictions]}

    def summary(self) -> str:
        shown = [p for p in self.predictions if p.index != 0][:4]
        return ", ".join(f"{p.label} {100 * p.fraction:.1f}%" for p in shown) or "background only"

    def annotate(self, image: np.ndarray) -> np.ndarray:
        present = [p for p in self.predictions if p.index != 0]
        masks = [self.mask == p.index for p in present]
        tinted = blend_masks(image, masks, [colour(p.index) for p in present], self.alpha)
        shown = [p for p in present if p.fraction >= 0.005][:_LEGEND_ROWS]
        legend = [(f"{p.label} {100 * p.fraction:.0f}%", colour(p.index)) for p in shown]
        if len(present) > len(shown):
            legend.append((f"+{len(present) - len(shown)} smaller", (128, 128, 128)))
        return draw_legend(tinted, legend) if legend else tinted

    def artifacts(self) -> list[Artifact]:
        return [Artifact("mask", "masks", ".png", self._write_mask)]

    def _write_mask(self, path: Path) -> None:
        if len(self.categories) <= 256:
            image = Image.fromarray(self.mask.astype(np.uint8), mode="P")
            image.putpalette(palette_bytes(len(self.categories)))
        else:  # more classes than a palette holds: 16-bit grey values are the indices
            image = Image.fromarray(self.mask.astype(np.uint16))
        image.save(path, format="PNG")


def build_semantic(name: str, resolved: ResolvedWeights, num_classes: int) -> nn.Module:
    """Build with ``weights=None`` (aux head when the weights have one) and load weights."""
    state = load_weights(resolved)
    if resolved.kind == "none":
        warn(f"--weights none: {name} has random weights; its masks are meaningless")
    has_aux = state is not None and any(k.startswith("aux_classifier.") for k in state)
    kwargs: dict[str, Any] = {"weights_backbone": None, "num_classes": num_classes}
    if not name.startswith("lraspp_"):
        kwargs["aux_loss"] = has_aux
    model = get_model(name, weights=None, **kwargs)
    if state is not None:
        load_into(model, state, resolved.describe())
    return model.eval()


def _bilinear_taps(source: int, target: int) -> tuple[np.ndarray, ...]:
    """Per output index: the two source indices and their weights, as PyTorch's bilinear
    resize (``align_corners=False``) computes them (in float32, like its CPU kernel)."""
    scale = np.float32(source) / np.float32(target)
    position = np.maximum((np.arange(target, dtype=np.float32) + 0.5) * scale - 0.5, 0)
    low = np.minimum(np.floor(position).astype(np.intp), source - 1)
    high = np.minimum(low + 1, source - 1)
    weight_high = (position - low).astype(np.float32)
    return low, high, (1 - weight_high)[:, None], weight_high[:, None]


def upsampled_argmax(
    logits: torch.Tensor, size: tuple[int, int], allowed: list[int] | None
) -> np.ndarray:
    """Argmax over classes of the logits (C, h, w) bilinearly resized to ``size`` (H, W).

    Only ``allowed`` classes (plus background) compete when given. Equal to
    ``F.interpolate(...).argmax(0)`` without resizing every class: a resized pixel is a convex
    combination of its 2x2 source cells, so where those four cells share their argmax, the pixel
    has it too (ties included: the first maximum wins in both). Only pixels whose cells disagree
    (class borders) are interpolated, a chunk at a time, with PyTorch's weights; where two
    classes tie there to within float rounding (PyTorch's kernel may fuse multiply-adds), either
    may win. Runs on the CPU (NumPy).
    """
    channels = list(range(logits.shape[0])) if allowed is None else sorted({0, *allowed})
    cells = logits[channels].float().permute(1, 2, 0).contiguous().cpu().numpy()  # h, w, C
    index_type = np.int16 if len(channels) < 2**15 else np.int32
    rows_low, rows_high, row_w0, row_w1 = _bilinear_taps(cells.shape[0], size[0])
    cols_low, cols_high, col_w0, col_w1 = _bilinear_taps(cells.shape[1], size[1])
    cell_best = cells.argmax(axis=2).astype(index_type)
    # -1 marks the output pixels whose source cells disagree.
    top, bottom = cell_best[rows_low], cell_best[rows_high]
    rows_agree = np.where(top == bottom, top, index_type(-1))
    left, right = rows_agree[:, cols_low], rows_agree[:, cols_high]
    best = np.where(left == right, left, index_type(-1))
    ys, xs = np.nonzero(best < 0)
    chunk = max(1, 2_000_000 // len(channels))
    for start in range(0, len(ys), chunk):
        y, x = ys[start : start + chunk], xs[start : start + chunk]
        y0, y1, x0, x1 = rows_low[y], rows_high[y], cols_low[x], cols_high[x]
        wx0, wx1 = col_w0[x], col_w1[x]
        values = row_w0[y] * (wx0 * cells[y0, x0] + wx1 * cells[y0, x1]) + row_w1[y] * (
            wx0 * cells[y1, x0] + wx1 * cells[y1, x1]
        )
        best[y, x] = values.argmax(axis=1)
    if allowed is not None:
        best = np.asarray(channels, dtype=index_type)[best]
    return best


class SemanticPredictor(Predictor):
    """deeplabv3 / fcn / lraspp: per-pixel classes at the original resolution."""

    task = "segment"
    supports_lanes = True

    def __init__(self, cfg: SegmentConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        self.weights = resolve_weights(cfg.model, cfg.weights, cfg.release)
        self.categories = class_names(self.weights, cfg.labels)
        classes = parse_classes(cfg.classes, self.categories)
        self.allowed = sorted(classes) if classes is not None else None
        self.transforms = self.weights.member.transforms()
        self.model: Any
        if self.weights.kind == "exported":  # --backend with a `cvtasks export` file
            from cvtasks.export.runtime import Runtime
            from cvtasks.segment.runtime import runtime_segmenter

            runtime = Runtime(self.weights.path or "", cfg.backend, device, cfg.threads)
            self.model = runtime_segmenter(runtime)
        else:
            model = build_semantic(cfg.model, self.weights, len(self.categories)).to(device)
            self.model = self.maybe_compile(
                self.use_channels_last(self.maybe_fold_batchnorm(model))
            )

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.transforms

    def tensor_preprocessor(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return self.transforms  # torchvision's preset transforms take tensors as well as images

    def collate(self, inputs: Sequence[Any]) -> Any:
        return list(inputs)

    def decode_min_side(self) -> int | None:
        return int(self.transforms.resize_size[0])

    def infer(self, batch: list[torch.Tensor]) -> list[torch.Tensor]:
        def forward(group: list[torch.Tensor]) -> list[torch.Tensor]:
            return list(self.model(self.layout(torch.stack(group)))["out"])

        return run_grouped(forward, batch)

    def postprocess(self, outputs: Sequence[torch.Tensor], frames: Sequence[Frame]) -> list[Result]:
        assert isinstance(self.cfg, SegmentConfig)
        results: list[Result] = []
        for logits, frame in zip(outputs, frames, strict=True):
            classes = upsampled_argmax(logits, (frame.height, frame.width), self.allowed)
            counts = np.bincount(classes.ravel(), minlength=len(self.categories))
            total = float(classes.size)
            present = [
                ClassArea(self.categories[i], i, round(int(n) / total, 6))
                for i, n in enumerate(counts.tolist())
                if n > 0
            ]
            present.sort(key=lambda c: c.fraction, reverse=True)
            results.append(SemanticResult(classes, present, self.categories, self.cfg.alpha))
        return results


# --------------------------------------------------------------------------- instance


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a boolean HxW mask, JSON-ready (``counts`` as text)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """The boolean mask of a COCO RLE (as :func:`encode_rle` writes it)."""
    data = {"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(data).astype(bool)


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a boolean mask as COCO polygons ``[x1, y1, x2, y2, ...]``."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


@dataclass
class InstanceMask(Detection):
    """A detected object with its mask (kept as pixels for drawing, encoded for records)."""

    pixels: np.ndarray | None = None
    mask_format: str = "rle"

    def to_record(self) -> dict[str, Any]:
        record = super().to_record()
        assert self.pixels is not None
        if self.mask_format == "polygon":
            record["polygons"] = mask_polygons(self.pixels)
        else:
            record["mask"] = encode_rle(self.pixels)
        return record


@dataclass
class InstanceResult(DetectResult):
    """Objects with masks, highest score first."""

    alpha: float = 0.5

    def annotate(self, image: np.ndarray) -> np.ndarray:
        colours = detection_colours(self.predictions)  # the mask's colour is its box's: its class
        order = sorted(range(len(self.predictions)), key=lambda i: self.predictions[i].score)
        masks, fills = [], []
        for i in order:
            pixels = getattr(self.predictions[i], "pixels", None)
            if pixels is not None:
                masks.append(pixels)
                fills.append(colours[i])
        tinted = blend_masks(image, masks, fills, self.alpha)
        return draw_detections(tinted, self.predictions, colours)


class InstancePredictor(DetectPredictor):
    """maskrcnn: detect's filters plus a thresholded mask per object."""

    task = "segment"
    models = staticmethod(instance_models)

    def decode_min_side(self) -> int | None:
        return None  # masks are pasted at the decoded size: always decode in full

    def make_result(
        self,
        detections: list[Detection],
        out: Mapping[str, torch.Tensor],
        keep: torch.Tensor,
        frame: Frame,
    ) -> Result:
        assert isinstance(self.cfg, SegmentConfig)
        probabilities = out["masks"][keep, 0]
        binary = (probabilities > self.cfg.mask_threshold).cpu().numpy()
        objects: list[Detection] = [
            InstanceMask(d.label, d.index, d.score, d.box, pixels, self.cfg.mask_format)
            for d, pixels in zip(detections, binary, strict=True)
        ]
        return InstanceResult(objects, frame.width, frame.height, self.yolo_ids, self.cfg.alpha)
