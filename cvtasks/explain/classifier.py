"""The classifier an explanation is about, and where its input lies in the original image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cvtasks.classify.predictor import build_classifier, classification_models
from cvtasks.config import suggest
from cvtasks.errors import UsageError
from cvtasks.explain.config import ExplainConfig
from cvtasks.tasks.base import class_names
from cvtasks.weights import ResolvedWeights, check_model_name, resolve_weights


@dataclass
class Classifier:
    """A classifier ready to be explained: model (frozen), weights, class names, preprocessing."""

    model: torch.nn.Module
    weights: ResolvedWeights
    labels: list[str]
    transforms: Any


def load_classifier(cfg: ExplainConfig, device: torch.device) -> Classifier:
    """Build ``cfg.model`` with its weights and labels; parameters need no gradients."""
    check_model_name(cfg.model, classification_models(), "classify")
    weights = resolve_weights(cfg.model, cfg.weights, cfg.release)
    labels = class_names(weights, cfg.labels)
    model = build_classifier(cfg.model, weights, len(labels)).to(device)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return Classifier(model, weights, labels, weights.transforms())


def crop_box(transforms: Any, width: int, height: int) -> tuple[int, int, int, int]:
    """The region (x1, y1, x2, y2) of a ``width`` x ``height`` image that the model sees
    after the classification preset's resize (shorter side) and centre crop."""
    resize = getattr(transforms, "resize_size", None)
    crop = getattr(transforms, "crop_size", None)
    if not resize or not crop:
        return (0, 0, width, height)
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = resize[0], int(resize[0] * long / short)
    rw, rh = (new_short, new_long) if width <= height else (new_long, new_short)
    cw, ch = crop[0], crop[-1]
    left, top = round((rw - cw) / 2.0), round((rh - ch) / 2.0)
    sx, sy = width / rw, height / rh
    x1, y1 = max(0, round(left * sx)), max(0, round(top * sy))
    x2, y2 = min(width, round((left + cw) * sx)), min(height, round((top + ch) * sy))
    return (x1, y1, x2, y2)


def parse_target(target: str, labels: Sequence[str]) -> int:
    """A class given by index or (case-insensitive) name; unknown names get a suggestion."""
    lowered_exact = {label.lower() for label in labels}
    if target.isdigit() and target.lower() not in lowered_exact:
        if int(target) >= len(labels):
            raise UsageError(
                f"--target {target}: class index out of range 0-{len(labels) - 1} "
                f"(the model has {len(labels)} classes)"
            )
        return int(target)
    lowered = {label.lower(): i for i, label in enumerate(labels)}
    if target.lower() in lowered:
        return lowered[target.lower()]
    raise UsageError(f"--target: unknown class '{target}'" + suggest(target.lower(), lowered))


def input_to_original(
    xyxy: Sequence[float], box: Sequence[int], input_size: tuple[int, int]
) -> list[int]:
    """A box in model-input pixels -> original image pixels, given the crop ``box``."""
    x1, y1, x2, y2 = box
    sx, sy = (x2 - x1) / input_size[1], (y2 - y1) / input_size[0]
    return [
        round(x1 + xyxy[0] * sx),
        round(y1 + xyxy[1] * sy),
        round(x1 + xyxy[2] * sx),
        round(y1 + xyxy[3] * sy),
    ]
