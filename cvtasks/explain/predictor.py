"""`cvtasks explain METHOD` on a classifier: what it looks at, per image and target class.

The model sees the centre crop that its weights' ``transforms()`` make; heatmaps are computed
on that crop and placed back on the original image (see :mod:`cvtasks.explain.result`).
Detectors and segmenters are explained by :mod:`cvtasks.explain.object_predictor`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from cvtasks.explain.classifier import crop_box, load_classifier, parse_target
from cvtasks.explain.config import ExplainConfig
from cvtasks.explain.layers import default_layer, get_layer
from cvtasks.explain.methods import (
    LAYER_METHODS,
    Attribution,
    MethodOptions,
    attribute,
    check_method,
    randomized_copy,
    rank_correlation,
    sanity_map,
)
from cvtasks.explain.result import ExplainResult, Sanity, TargetExplanation
from cvtasks.log import warn
from cvtasks.speed import forward_copy
from cvtasks.tasks.base import Predictor
from cvtasks.types import Frame, Result

__all__ = ["ExplainPredictor", "ExplainResult", "Sanity", "TargetExplanation"]


class ExplainPredictor(Predictor):
    """A torchvision classifier and one attribution method."""

    task = "explain"
    needs_images = True

    def __init__(self, cfg: ExplainConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        net = load_classifier(cfg, device)
        self.weights, self.labels, self.transforms = net.weights, net.labels, net.transforms
        self.model = self.use_channels_last(net.model)
        self.options = MethodOptions(
            layer=cfg.layer,
            channel=cfg.channel,
            window=cfg.window,
            stride=cfg.stride,
            baseline=cfg.baseline,
            samples=cfg.samples,
            noise=cfg.noise,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
        )
        self._check_method(cfg)
        self.fixed_target = self._parse_target(cfg.target)
        self.method_model = self._for_method(self.model)
        self._random_models: list[torch.nn.Module] = []

    def _for_method(self, model: torch.nn.Module) -> torch.nn.Module:
        """What the method runs on: occlusion only runs forwards, so with ``--fold-bn`` it gets a
        BatchNorm-folded copy, made once (not per image and target)."""
        assert isinstance(self.cfg, ExplainConfig)
        if self.cfg.method == "occlusion" and self.cfg.fold_bn:
            return forward_copy(model)
        return model

    def _check_method(self, cfg: ExplainConfig) -> None:
        """Refuse impossible combinations and resolve the layer before any image is read."""
        check_method(cfg.method, self.options)
        side = min(getattr(self.transforms, "crop_size", None) or [cfg.window])
        if cfg.method == "occlusion" and cfg.window > side:
            warn(
                f"--window {cfg.window} is larger than the {side} px model input: clamped to {side}"
            )
        if cfg.method in LAYER_METHODS:
            self.options.layer = cfg.layer or default_layer(cfg.model, self.model)
        if self.options.layer is not None:
            get_layer(self.model, self.options.layer)

    def _parse_target(self, target: str | None) -> int | None:
        return None if target is None else parse_target(target, self.labels)

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.transforms

    def tensor_preprocessor(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return self.transforms  # torchvision's preset transforms take tensors as well as images

    def decode_min_side(self) -> int | None:
        """As classify: with --jpeg-draft the model sees what classify's model sees."""
        resize = getattr(self.transforms, "resize_size", None)
        return int(resize[0]) if resize else None

    def inference_context(self) -> contextlib.AbstractContextManager[object]:
        return torch.enable_grad()

    def infer(self, batch: torch.Tensor) -> list[list[TargetExplanation]]:
        assert isinstance(self.cfg, ExplainConfig)
        return [self._explain_one(x.unsqueeze(0)) for x in batch]

    def _explain_one(self, x: torch.Tensor) -> list[TargetExplanation]:
        return self.explain(x)

    def explain(self, x: torch.Tensor, classes: list[int] | None = None) -> list[TargetExplanation]:
        """The explanations of one input (1 x 3 x H x W): of ``classes`` when given, else of
        --target, --channel or the top --top-k classes."""
        assert isinstance(self.cfg, ExplainConfig)
        with torch.no_grad():
            probs = self.model(x).float().softmax(dim=1)[0]
        order = probs.argsort(descending=True).tolist()
        if self.cfg.channel is not None:
            attr = attribute(
                self.cfg.method, self.method_model, x, None, self.options, self.cfg.model
            )
            label = f"{self.cfg.layer} channel {self.cfg.channel}"
            return [TargetExplanation(label, self.cfg.channel, float(attr.heat.max()), None, attr)]
        targets = [self.fixed_target] if self.fixed_target is not None else order[: self.cfg.top_k]
        if classes is not None:
            targets = classes
        explained = []
        for target in targets:
            attr = attribute(
                self.cfg.method, self.method_model, x, target, self.options, self.cfg.model
            )
            sanity = self._sanity(x, target, attr) if self.cfg.sanity else None
            explained.append(
                TargetExplanation(
                    self.labels[target],
                    target,
                    float(probs[target]),
                    order.index(target) + 1,
                    attr,
                    sanity,
                )
            )
        return explained

    def _sanity(self, x: torch.Tensor, target: int, attr: Attribution) -> Sanity:
        """Adebayo et al. 2018 over ``--sanity-runs`` re-initialisations (made once per run),
        on the method's own map; a constant map gives None for that run, with a warning."""
        assert isinstance(self.cfg, ExplainConfig)
        if not self._random_models:
            self._random_models = [
                self._for_method(randomized_copy(self.model, seed=seed))
                for seed in range(self.cfg.sanity_runs)
            ]
        values: list[float | None] = []
        for random_model in self._random_models:
            random_attr = attribute(
                self.cfg.method, random_model, x, target, self.options, self.cfg.model
            )
            values.append(rank_correlation(sanity_map(attr), sanity_map(random_attr)))
        if None in values:
            constant = float(np.ptp(sanity_map(attr))) == 0.0
            which = "the map" if constant else f"{values.count(None)} of {len(values)} random maps"
            warn(
                f"--sanity: {which} for {self.labels[target]} is constant, so the rank "
                "correlation is undefined (recorded as null, not as a pass)"
            )
        return Sanity(values)

    def postprocess(
        self, outputs: Sequence[list[TargetExplanation]], frames: Sequence[Frame]
    ) -> list[Result]:
        assert isinstance(self.cfg, ExplainConfig)
        results: list[Result] = []
        for targets, frame in zip(outputs, frames, strict=True):
            assert frame.image is not None
            first = targets[0].attribution
            results.append(
                ExplainResult(
                    method=self.cfg.method,
                    targets=targets,
                    image=frame.image,
                    box=crop_box(self.transforms, frame.width, frame.height),
                    input_size=(first.heat.shape[0], first.heat.shape[1]),
                    colormap=self.cfg.colormap,
                    alpha=self.cfg.alpha,
                    layer=first.extra.get("layer"),
                )
            )
        return results
