"""`cvtasks explain METHOD`: what a classifier looks at, per image and target class.

The model sees the centre crop that its weights' ``transforms()`` make; heatmaps are computed
on that crop and placed back on the original image at the crop's position and scale. The
rest of the image is dimmed in the panels, and the crop is drawn as a white rectangle: the
model never saw it, so no method can say anything about it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from cvtasks.explain.classifier import (
    crop_box,
    input_to_original,
    load_classifier,
    parse_target,
)
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
from cvtasks.log import warn
from cvtasks.render.figure import beside, colour_bar
from cvtasks.render.heatmap import (
    colorize,
    normalise,
    overlay,
    panel,
    panel_text_size,
    place_in_image,
)
from cvtasks.speed import forward_copy
from cvtasks.tasks.base import Predictor
from cvtasks.types import Artifact, Frame, Result

MAX_PANE = 440  # px: the longer side of each of the three panes of a panel


def _top_value(heat: np.ndarray) -> float:
    """The value that :func:`normalise` maps to 1 (its 99.5th percentile, else its maximum)."""
    finite = heat[np.isfinite(heat)]
    top = float(np.percentile(finite, 99.5)) if finite.size else 0.0
    if top <= 0:
        top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return top


def _tick_texts(low: float, high: float) -> tuple[str, str]:
    """Two values printed with as many digits as it takes to tell them apart (up to 8)."""
    for digits in range(3, 9):
        low_text, high_text = f"{low:.{digits}g}", f"{high:.{digits}g}"
        if low_text != high_text:
            break
    return low_text, high_text


@dataclass
class Sanity:
    """The model-randomisation check over several re-initialisations: the rank correlation of
    the map with each randomised model's map (None where a map was constant)."""

    values: list[float | None]

    @property
    def defined(self) -> list[float]:
        return [v for v in self.values if v is not None]

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.defined)) if self.defined else None

    def to_record(self) -> dict[str, Any]:
        defined = self.defined
        return {
            "sanity_rank_corr": round(self.mean, 4) if self.mean is not None else None,
            "sanity_rank_corr_range": (
                [round(min(defined), 4), round(max(defined), 4)] if defined else None
            ),
            "sanity_runs": len(self.values),
        }

    def caption(self) -> str:
        if self.mean is None:
            return " | sanity: undefined (constant map)"
        low, high = min(self.defined), max(self.defined)
        return f" | sanity rank corr {self.mean:.2f} ({low:.2f} to {high:.2f})"


@dataclass
class TargetExplanation:
    """One explained target: a class (or a unit) and the method's maps."""

    label: str
    index: int
    score: float  # the class probability (or the unit's activation)
    rank: int | None  # the class's rank among the model's predictions (1 = top)
    attribution: Attribution
    sanity: Sanity | None = None

    def to_record(self, to_original: Callable[[Sequence[float]], list[int]]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "label": self.label,
            "index": self.index,
            "score": round(self.score, 6),
        }
        if self.rank is not None:
            record["rank"] = self.rank
        extra = self.attribution.extra
        if "min_score" in extra:
            record["min_score"] = round(extra["min_score"], 6)
            record["min_box"] = to_original(extra["min_box"])
        if self.sanity is not None:
            record.update(self.sanity.to_record())
        return record


@dataclass
class ExplainResult:
    """Explanations of one image; panels and raw maps are its artifacts."""

    method: str
    targets: list[TargetExplanation]
    image: np.ndarray  # the original, upright RGB image
    box: tuple[int, int, int, int]  # the crop the model sees, in original pixels
    input_size: tuple[int, int]  # model input (H, W)
    colormap: str
    alpha: float
    layer: str | None = None

    def to_original(self, xyxy: Sequence[float]) -> list[int]:
        """Model-input coordinates -> original image pixels."""
        return input_to_original(xyxy, self.box, self.input_size)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"method": self.method, "crop": list(self.box)}
        if self.layer:
            record["layer"] = self.layer
        record["predictions"] = [t.to_record(self.to_original) for t in self.targets]
        return record

    def summary(self) -> str:
        return ", ".join(f"{t.label} {t.score:.3f}" for t in self.targets)

    def heat_on_image(self, target: TargetExplanation) -> np.ndarray:
        height, width = self.image.shape[:2]
        return place_in_image(normalise(target.attribution.heat), self.box, width, height)

    def annotate(self, image: np.ndarray) -> np.ndarray:
        return overlay(image, self.heat_on_image(self.targets[0]), self.colormap, self.alpha)

    def render_panel(self, target: TargetExplanation) -> np.ndarray:
        """original | map | overlay with a colour bar per map, at most ``MAX_PANE`` px a pane
        (a 2000-px photo gives a ~1600-px panel; the .npy keeps full resolution)."""
        height, width = self.image.shape[:2]
        scale = min(1.0, MAX_PANE / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = (
            self.image
            if scale == 1.0
            else np.asarray(cv2.resize(self.image, size, interpolation=cv2.INTER_AREA))
        )
        box = tuple(round(v * scale) for v in self.box)
        heat = place_in_image(normalise(target.attribution.heat), box, *size)
        extra = target.attribution.extra
        ramp = colorize(np.linspace(0, 1, 256)[None], self.colormap)[0]
        if "probability_map" in extra:
            probs = extra["probability_map"]
            low, high = float(probs.min()), float(probs.max())
            scaled = (probs - low) / (high - low) if high > low else np.zeros_like(probs)
            middle_map = place_in_image(scaled, box, *size, nearest=True)
            captions = ("original", f"middle: P({target.label}) with the patch there",
                        "right: probability drop")  # fmt: skip
            title = (
                f"occlusion ({extra['window']} px patch): {target.label} {target.score:.3f}, "
                f"lowest {extra['min_score']:.3f}"
            )
            low_text, high_text = _tick_texts(low, high)
            drop_top = _top_value(target.attribution.heat)
            bars = [
                (f"middle: P({target.label})", [(1.0, high_text), (0.0, low_text)]),
                ("right: drop in P", [(1.0, f"{drop_top:.3g}"), (0.0, "0")]),
            ]
        else:
            middle_map = heat
            captions = ("original", "heatmap", "overlay")
            title = f"{self.method}: {target.label} {target.score:.3f}"
            if self.layer:
                title += f" · layer {self.layer}"
            bars = [("importance", [(1.0, "high (99.5th pct)"), (0.5, "half"), (0.0, "none")])]
        if target.sanity is not None:
            title += target.sanity.caption()
        middle = colorize(np.nan_to_num(np.clip(middle_map, 0, 1)), self.colormap)
        middle[~np.isfinite(middle_map)] = (middle[~np.isfinite(middle_map)] * 0.3).astype(np.uint8)
        figure = panel(
            image, middle, overlay(image, heat, self.colormap, self.alpha), title, box, captions
        )
        text = panel_text_size(*size)
        for label, ticks in bars:
            bar = colour_bar(figure.shape[0], ramp, ticks, label, text_size=text)
            figure = beside(figure, bar)
        return figure

    def artifacts(self) -> list[Artifact]:
        """Per explained target, numbered by its rank among the explained targets (1 = the
        first explained: the top class, or --target): panel PNG, raw map, occlusion's drop."""
        files = []
        for number, target in enumerate(self.targets, start=1):
            suffix = f".{self.method}.{number}"

            def write_panel(path: Path, target: TargetExplanation = target) -> None:
                Image.fromarray(self.render_panel(target)).save(path, format="PNG")

            def write_raw(path: Path, target: TargetExplanation = target) -> None:
                with path.open("wb") as handle:
                    np.save(handle, target.attribution.raw)

            files.append(Artifact(f"panel_{number}", "explain", suffix + ".png", write_panel))
            files.append(Artifact(f"raw_{number}", "explain", suffix + ".npy", write_raw))
            if "drop" in target.attribution.extra:

                def write_drop(path: Path, target: TargetExplanation = target) -> None:
                    with path.open("wb") as handle:
                        np.save(handle, target.attribution.extra["drop"])

                files.append(
                    Artifact(f"drop_{number}", "explain", suffix + ".drop.npy", write_drop)
                )
        return files


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
