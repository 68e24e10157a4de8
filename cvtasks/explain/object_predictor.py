"""`cvtasks explain METHOD -m DETECTOR|SEGMENTER`: one map per detection (what its class score
depends on) or per predicted class region (what the class's summed logit depends on).

The model input is the whole image (detectors: the decoded image in 0-1, resized inside the
model; segmenters: their weights' resize and normalisation), so maps cover the whole image.
Grad-CAM on a detector weights each activation by its own gradient (ODAM, Zhao et al. 2023;
the HiResCAM formula): the channel-mean gradient of Grad-CAM lights up every object that shares
the detection's features, not the one explained. Segmenters keep Grad-CAM's mean (Seg-Grad-CAM).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch import nn

from cvtasks.config import is_given
from cvtasks.errors import UsageError
from cvtasks.explain.classifier import parse_target
from cvtasks.explain.config import ExplainConfig
from cvtasks.explain.gradcam import gradcam
from cvtasks.explain.layers import get_layer
from cvtasks.explain.methods import (
    LAYER_METHODS,
    Attribution,
    MethodOptions,
    attribute,
    baseline_like,
    check_method,
    occlusion_sweep,
)
from cvtasks.explain.objects import (
    HIDDEN,
    ObjectTarget,
    cam_on_input,
    default_object_layer,
    find_detections,
    find_regions,
    relax_detector,
    score_module,
    semantic_models,
)
from cvtasks.explain.result import ExplainResult, TargetExplanation
from cvtasks.log import warn
from cvtasks.tasks.base import Predictor, class_names
from cvtasks.types import Frame, Result
from cvtasks.weights import resolve_weights

WINDOW_SHARE = 32 / 224  # a classifier's default patch, as a share of the input's shorter side


def build_object_model(name: str, cfg: ExplainConfig, labels_count: int, weights: Any) -> nn.Module:
    """The detector (thresholds relaxed, see :func:`relax_detector`) or semantic segmenter."""
    if name in semantic_models():
        from cvtasks.segment.predictor import build_semantic

        return build_semantic(name, weights, labels_count)
    from cvtasks.detect.predictor import build_detector

    model = build_detector(name, weights, labels_count)
    relax_detector(model)
    return model


class ObjectExplainPredictor(Predictor):
    """A torchvision detector or semantic segmenter and one attribution method."""

    task = "explain"
    needs_images = True

    def __init__(self, cfg: ExplainConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        self.semantic = cfg.model in semantic_models()
        self.weights = resolve_weights(cfg.model, cfg.weights, cfg.release)
        self.labels = class_names(self.weights, cfg.labels)
        self.transforms = self.weights.transforms()
        self._check_options(cfg)
        model = build_object_model(cfg.model, cfg, len(self.labels), self.weights).to(device)
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        self.model = model
        mean = getattr(getattr(model, "transform", None), "image_mean", None)
        self.options = MethodOptions(
            window=cfg.window,
            stride=cfg.stride,
            baseline=cfg.baseline,
            samples=cfg.samples,
            noise=cfg.noise,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            neutral=None if self.semantic or mean is None else tuple(float(v) for v in mean),
        )
        check_method(cfg.method, self.options)
        if cfg.method in LAYER_METHODS:
            self.options.layer = cfg.layer or default_object_layer(model)
            get_layer(model, self.options.layer)
        self.wanted = None if cfg.target is None else parse_target(cfg.target, self.labels)
        if self.wanted is not None and self.labels[self.wanted] in HIDDEN:
            raise UsageError(f"--target {cfg.target} is the model's placeholder, not a class")

    def _check_options(self, cfg: ExplainConfig) -> None:
        kind = "segmenters" if self.semantic else "detectors"
        if cfg.channel is not None:
            raise UsageError(f"--channel explains a classifier's unit, not {kind}' outputs")
        if cfg.sanity:
            raise UsageError(
                f"--sanity is for classifiers: a randomised {kind[:-1]} finds other objects, so "
                "its maps explain something else"
            )
        if is_given(cfg, "top_k"):
            warn(
                f"--top-k is for classifiers; {kind} explain every "
                + ("detection above --conf" if not self.semantic else "predicted class region")
                + f" (at most --max-objects {cfg.max_objects})"
            )

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.transforms

    def collate(self, inputs: Sequence[Any]) -> Any:
        return list(inputs)

    def inference_context(self) -> contextlib.AbstractContextManager[object]:
        return torch.enable_grad()

    def infer(self, batch: list[torch.Tensor]) -> list[tuple[list[TargetExplanation], Any]]:
        return [self._explain_one(x.unsqueeze(0)) for x in batch]

    def find_targets(self, x: torch.Tensor) -> list[ObjectTarget]:
        """The detections or class regions of one input (1 x 3 x H x W) to explain."""
        assert isinstance(self.cfg, ExplainConfig)
        limit = self.cfg.max_objects
        if self.semantic:
            return find_regions(self.model, x, self.labels, self.wanted, limit)
        return find_detections(self.model, x, self.labels, self.cfg.conf, self.wanted, limit)

    def _explain_one(self, x: torch.Tensor) -> tuple[list[TargetExplanation], Any]:
        return self.explain(x)[0], tuple(x.shape[-2:])

    def explain(self, x: torch.Tensor) -> tuple[list[TargetExplanation], nn.Module | None]:
        """The explanations of one input (1 x 3 x H x W) and the module giving their scores
        (B x T; None when there is nothing to explain)."""
        targets = self.find_targets(x)
        if not targets:
            return [], None
        scores = score_module(self.model, targets, self.semantic)
        attributions = self.attribute_all(scores, x, len(targets))
        explained = [
            TargetExplanation(
                t.label, t.index, t.score, None, attr, box=t.box, region=t.mask, fields=t.fields
            )
            for t, attr in zip(targets, attributions, strict=True)
        ]
        return explained, scores

    def attribute_all(self, scores: nn.Module, x: torch.Tensor, count: int) -> list[Attribution]:
        """The method's map of each of the ``count`` targets of ``scores`` (B x T)."""
        assert isinstance(self.cfg, ExplainConfig)
        method = self.cfg.method
        if method == "occlusion":
            window, stride = self.window_and_stride(x)
            base = baseline_like(x, self.options.baseline, self.options.neutral)
            sweep = occlusion_sweep(scores, x, base, window, stride, self.options.batch_size)
            found = [sweep.attribution(t) for t in range(count)]
            for attr in found:
                attr.extra["score_name"] = "logit sum" if self.semantic else "score"
            return found
        if method in LAYER_METHODS:
            return [self._cam(scores, x, t) for t in range(count)]
        return [attribute(method, scores, x, t, self.options) for t in range(count)]

    def window_and_stride(self, x: torch.Tensor) -> tuple[int, int]:
        """--window/--stride as given, else scaled with the image (32/224 of its shorter side,
        half that), as a classifier's defaults are to its 224-px input."""
        assert isinstance(self.cfg, ExplainConfig)
        side = min(x.shape[-2:])
        window = self.cfg.window if is_given(self.cfg, "window") else round(WINDOW_SHARE * side)
        window = max(1, min(window, side))
        stride = self.cfg.stride if is_given(self.cfg, "stride") else max(1, window // 2)
        if stride > window:
            raise UsageError(f"--stride {stride} is larger than the {window} px window")
        return window, stride

    def _cam(self, scores: nn.Module, x: torch.Tensor, target: int) -> Attribution:
        """Grad-CAM (segmenters) or ODAM (detectors) at the layer, on the whole input; times
        guided backprop for guided-gradcam."""
        assert isinstance(self.cfg, ExplainConfig) and self.options.layer is not None
        layer = get_layer(self.model, self.options.layer)
        inputs = x.detach().clone().requires_grad_(True)
        cam = gradcam(scores, layer, inputs, target, elementwise=not self.semantic)
        size = (int(x.shape[-2]), int(x.shape[-1]))
        up = cam_on_input(cam, scores, size)[0, 0].float().clamp(min=0)
        extra = {"layer": self.options.layer}
        if self.cfg.method == "gradcam":
            heat = up.detach().cpu().numpy()
            return Attribution(heat, cam.detach()[0, 0].cpu().numpy(), extra)
        guided = attribute("guided-backprop", scores, x, target, self.options)
        raw = torch.from_numpy(guided.raw) * up.detach().cpu()[None]
        heat = raw.abs().max(dim=0).values.numpy()
        return Attribution(heat, raw.numpy(), extra)

    def postprocess(self, outputs: Sequence[Any], frames: Sequence[Frame]) -> list[Result]:
        assert isinstance(self.cfg, ExplainConfig)
        note = " (ODAM)" if self.cfg.method in LAYER_METHODS and not self.semantic else ""
        results: list[Result] = []
        for (targets, input_size), frame in zip(outputs, frames, strict=True):
            assert frame.image is not None
            for target in targets:  # occlusion's patch in original-image pixels, for titles
                extra = target.attribution.extra
                if "window" in extra:
                    extra["window_px"] = round(extra["window"] * frame.width / input_size[1])
            results.append(
                ExplainResult(
                    method=self.cfg.method,
                    targets=targets,
                    image=frame.image,
                    box=(0, 0, frame.width, frame.height),
                    input_size=input_size,
                    colormap=self.cfg.colormap,
                    alpha=self.cfg.alpha,
                    layer=self.options.layer if self.cfg.method in LAYER_METHODS else None,
                    note=note,
                )
            )
        return results
