"""Image classification with any torchvision classifier.

Preprocessing is the weights' own ``transforms()`` and the labels are the weights'
``meta["categories"]`` (also for weight files and random init, which use the DEFAULT entry),
unless ``--labels`` names your own classes, which sets a head of that many outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.models import get_model

from cvtasks.classify.config import ClassifyConfig
from cvtasks.log import warn
from cvtasks.render.draw import draw_text_panel
from cvtasks.tasks.base import Predictor, class_names
from cvtasks.types import Frame, Result
from cvtasks.weights import (
    ResolvedWeights,
    check_model_name,
    load_into,
    load_weights,
    resolve_weights,
)


@dataclass
class ClassPrediction:
    """One ranked class: its name, index in the model's output and softmax probability."""

    label: str
    index: int
    score: float


@dataclass
class ClassifyResult:
    """Top-k classes of one image, highest probability first (``probabilities``: every
    class's, kept only for per-video verdicts; not in the record)."""

    predictions: list[ClassPrediction]
    probabilities: np.ndarray | None = None

    def to_record(self) -> dict[str, Any]:
        return {"predictions": [asdict(p) for p in self.predictions]}

    def summary(self) -> str:
        """Every one of the top-k classes, one per line of the table cell."""
        return "\n".join(f"{p.label} {p.score:.3f}" for p in self.predictions)

    def annotate(self, image: np.ndarray) -> np.ndarray:
        lines = [f"{p.label}  {p.score:.2f}" for p in self.predictions]
        return draw_text_panel(image, lines)


def classification_models() -> list[str]:
    """Every classifier torchvision lists (``torchvision.models``, no detection/video/...)."""
    return list(torchvision.models.list_models(module=torchvision.models))


def _has_aux_heads(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("aux1.", "aux2.", "AuxLogits.")) for k in state)


def architecture_kwargs(
    name: str, resolved: ResolvedWeights, state: Mapping[str, torch.Tensor] | None
) -> dict[str, Any]:
    """Builder arguments that torchvision derives from pretrained weights.

    torchvision's builders change the architecture when given weights (it calls this
    ``_ovewrite_named_param``); we build with ``weights=None`` and load the state dict
    ourselves (``weights_only=True``), so we pass the same arguments explicitly:
    GoogLeNet/Inception normalise their input themselves and keep their auxiliary heads,
    ViT and MaxViT take their input size from ``meta["min_size"]``.
    """
    meta = resolved.member.meta
    if name in ("googlenet", "inception_v3"):
        return {
            "transform_input": True,
            "aux_logits": state is None or _has_aux_heads(state),
            "init_weights": state is None,
        }
    if name.startswith("vit_"):
        return {"image_size": meta["min_size"][0]}
    if name.startswith("maxvit_"):
        return {"input_size": meta["min_size"]}
    return {}


def build_classifier(
    name: str, resolved: ResolvedWeights, num_classes: int, warn_random: bool = True
) -> nn.Module:
    """Build ``name`` with ``num_classes`` outputs and load the resolved weights (if any)."""
    state = load_weights(resolved)
    kwargs = architecture_kwargs(name, resolved, state)
    if resolved.kind == "none" and warn_random:
        warn(f"--weights none: {name} has random weights; its predictions are meaningless")
    model = get_model(name, weights=None, num_classes=num_classes, **kwargs)
    if state is not None:
        load_into(model, state, resolved.describe())
    return model.eval()


class ClassifyPredictor(Predictor):
    """Softmax top-k over a torchvision classifier's logits."""

    task = "classify"
    supports_lanes = True

    def __init__(self, cfg: ClassifyConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        check_model_name(cfg.model, classification_models(), "classify")
        self.weights = resolve_weights(cfg.model, cfg.weights, cfg.release)
        self.labels = class_names(self.weights, cfg.labels)
        self.top_k = min(cfg.top_k, len(self.labels))
        self.transforms = self.weights.transforms()
        model = build_classifier(cfg.model, self.weights, len(self.labels)).to(device)
        self.model = self.maybe_compile(self.use_channels_last(self.maybe_fold_batchnorm(model)))

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.transforms

    def tensor_preprocessor(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return self.transforms  # torchvision's preset transforms take tensors as well as images

    def decode_min_side(self) -> int | None:
        return int(self.transforms.resize_size[0])

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        logits = self.model(batch)
        return logits.float().softmax(dim=1)

    def postprocess(self, outputs: torch.Tensor, frames: Sequence[Frame]) -> list[Result]:
        assert isinstance(self.cfg, ClassifyConfig)
        scores, indices = outputs.topk(self.top_k, dim=1)
        keep_all = self.cfg.aggregate is not None
        every = outputs.float().cpu().numpy() if keep_all else None
        results: list[Result] = []
        for row, (row_scores, row_indices) in enumerate(
            zip(scores.tolist(), indices.tolist(), strict=True)
        ):
            preds = [
                ClassPrediction(self.labels[i], int(i), round(float(s), 6))
                for s, i in zip(row_scores, row_indices, strict=True)
            ]
            results.append(ClassifyResult(preds, every[row] if every is not None else None))
        return results
