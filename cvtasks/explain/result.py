"""The result of `cvtasks explain METHOD` on one image: its explained targets (a class, a unit,
a detection or a segmented region), their records and their panels.

Maps are computed on the model's input and placed back on the original image: for a classifier
at the position and scale of the centre crop its weights' ``transforms()`` make (the rest of the
image, which the model never saw, is dimmed and the crop outlined in white); for a detector or a
segmenter, whose input is the whole image, over the whole image. The object a map explains (a
detection's box, a class's region) is drawn on every pane in its class colour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from cvtasks.explain.classifier import input_to_original
from cvtasks.explain.methods import Attribution
from cvtasks.render.draw import draw_boxes, line_width_for
from cvtasks.render.figure import beside, colour_bar
from cvtasks.render.heatmap import (
    colorize,
    normalise,
    overlay,
    panel,
    panel_text_size,
    place_in_image,
)
from cvtasks.render.palette import class_colour
from cvtasks.types import Artifact

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


def _value(value: float) -> str:
    """A score for a title: three decimals, or four significant digits for large sums."""
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"


HUMAN_CAPTIONS = {
    "objects": "people's evidence",
    "fixations": "people's fixations",
    "density": "people's map over half its peak",
}


def draw_human(pane: np.ndarray, human: np.ndarray, kind: str) -> np.ndarray:
    """People's evidence on a pane (any scale of the original image), white on a dark rim so
    it shows on any photo or colour map: a mask's outline, fixations as dots, a saliency map's
    half-peak contour."""
    height, width = pane.shape[:2]
    line = max(1, line_width_for(width, height) // 2)
    if kind == "fixations":
        drawn = np.ascontiguousarray(pane.copy())
        ys, xs = np.nonzero(human)
        step = max(1, len(xs) // 2000)  # a dense fixation map: every n-th point
        sx, sy = width / human.shape[1], height / human.shape[0]
        for x, y in zip(xs[::step], ys[::step], strict=True):
            centre = (int((x + 0.5) * sx), int((y + 0.5) * sy))
            cv2.circle(drawn, centre, line + 2, (0, 0, 0), -1)
            cv2.circle(drawn, centre, line + 1, (255, 255, 255), -1)
        return drawn
    if kind == "density":
        peak = float(np.nanmax(human)) if human.size else 0.0
        mask = human >= peak / 2 if peak > 0 else np.zeros(human.shape, bool)
    else:
        mask = human.astype(bool)
    scaled = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return outline(pane, scaled, [((0, 0, 0), line + 2), ((255, 255, 255), line)])


def outline(
    pane: np.ndarray, mask: np.ndarray, strokes: Sequence[tuple[tuple[int, int, int], int]]
) -> np.ndarray:
    """A copy of ``pane`` with the outer contours of ``mask`` (uint8, the pane's size) drawn
    once per ``(colour, thickness)`` stroke, in order."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outlined = np.ascontiguousarray(pane.copy())
    for colour, thickness in strokes:
        cv2.drawContours(outlined, contours, -1, colour, thickness)
    return outlined


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
    """One explained target: a class, a unit, a detection or a class's region, and the maps.

    ``box`` (a detection's, in model-input pixels) and ``region`` (a class's predicted pixels,
    model-input resolution) say which object is explained; ``fields`` are its extra record
    fields (``detection``: its rank among the image's detections; ``fraction``; ...)."""

    label: str
    index: int
    score: float  # class probability, unit activation, detection score or summed region logit
    rank: int | None  # the class's rank among the model's predictions (1 = top)
    attribution: Attribution
    sanity: Sanity | None = None
    box: list[float] | None = None
    region: np.ndarray | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    # eval explain: where people put the evidence, in original pixels, drawn in white on the
    # panels: a mask ("objects"), fixation points ("fixations") or a saliency map ("density")
    human: np.ndarray | None = None
    human_kind: str = "objects"

    @property
    def name(self) -> str:
        """How titles name it: ``person #2`` for a detection, else the label."""
        number = self.fields.get("detection")
        return f"{self.label} #{number}" if number is not None else self.label

    def with_score(self, score: str) -> str:
        """``Egyptian cat 0.485``; ``person #2: 0.981`` (the colon keeps number and score apart)."""
        return f"{self.name}{':' if 'detection' in self.fields else ''} {score}"

    def to_record(self, to_original: Callable[[Sequence[float]], list[int]]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "label": self.label,
            "index": self.index,
            "score": round(self.score, 6),
        }
        if self.rank is not None:
            record["rank"] = self.rank
        record.update(self.fields)
        if self.box is not None:
            record["box"] = to_original(self.box)
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
    box: tuple[int, int, int, int]  # the part of the image the model sees, in original pixels
    input_size: tuple[int, int]  # model input (H, W)
    colormap: str
    alpha: float
    layer: str | None = None
    note: str = ""  # how the method was adapted (detectors' Grad-CAM), shown in the titles
    fields: dict[str, Any] = field(default_factory=dict)  # more record fields (eval explain)

    def to_original(self, xyxy: Sequence[float]) -> list[int]:
        """Model-input coordinates -> original image pixels."""
        return input_to_original(xyxy, self.box, self.input_size)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"method": self.method, "crop": list(self.box)}
        if self.layer:
            record["layer"] = self.layer
        record["predictions"] = [t.to_record(self.to_original) for t in self.targets]
        record.update(self.fields)
        return record

    def summary(self) -> str:
        if not self.targets:
            return "nothing to explain"
        return ", ".join(t.with_score(f"{t.score:.3f}") for t in self.targets)

    def heat_on_image(self, target: TargetExplanation) -> np.ndarray:
        height, width = self.image.shape[:2]
        return place_in_image(normalise(target.attribution.heat), self.box, width, height)

    def annotate(self, image: np.ndarray) -> np.ndarray:
        if not self.targets:
            return image
        blended = overlay(image, self.heat_on_image(self.targets[0]), self.colormap, self.alpha)
        return self._draw_subject(blended, self.targets[0], 1.0)

    def _draw_subject(
        self, pane: np.ndarray, target: TargetExplanation, scale: float
    ) -> np.ndarray:
        """The explained object on a pane scaled by ``scale`` from the original image: a
        detection's box with its tag, a region's outline, in the class's colour."""
        colour = class_colour(target.index)
        if target.box is not None:
            box = [v * scale for v in self.to_original(target.box)]
            tag = target.with_score(f"{target.score:.2f}")
            return draw_boxes(pane, [box], [tag], [colour])
        if target.region is not None:
            height, width = pane.shape[:2]
            x1, y1, x2, y2 = (round(v * scale) for v in self.box)
            mask = cv2.resize(
                target.region.astype(np.uint8), (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST
            )
            full = np.zeros((height, width), np.uint8)
            full[y1:y2, x1:x2] = mask[: height - y1, : width - x1]
            return outline(pane, full, [(colour, max(1, line_width_for(width, height) // 2))])
        return pane

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
        whole = box == (0, 0, *size)
        if "probability_map" in extra:
            probs = extra["probability_map"]
            low, high = float(probs.min()), float(probs.max())
            scaled = (probs - low) / (high - low) if high > low else np.zeros_like(probs)
            middle_map = place_in_image(scaled, box, *size, nearest=True)
            named = extra.get("score_name")  # detectors' and segmenters' swept score
            middle_name = named or f"P({target.label})"
            drop_name = f"drop in {named}" if named else "drop in P"
            captions = ("original", f"middle: {middle_name} with the patch there",
                        f"right: {drop_name}" if named else "right: probability drop")  # fmt: skip
            title = (
                f"occlusion ({extra.get('window_px', extra['window'])} px patch): "
                f"{target.with_score(_value(extra['score']))}, lowest {_value(extra['min_score'])}"
            )
            low_text, high_text = _tick_texts(low, high)
            drop_top = _top_value(target.attribution.heat)
            bars = [
                (f"middle: {middle_name}", [(1.0, high_text), (0.0, low_text)]),
                (f"right: {drop_name}", [(1.0, f"{drop_top:.3g}"), (0.0, "0")]),
            ]
        else:
            middle_map = heat
            captions = ("original", "heatmap", "overlay")
            title = f"{self.method}{self.note}: {target.with_score(f'{target.score:.3f}')}"
            if self.layer:
                title += f" · layer {self.layer}"
            bars = [("importance", [(1.0, "high (99.5th pct)"), (0.5, "half"), (0.0, "none")])]
        if target.sanity is not None:
            title += target.sanity.caption()
        if target.human is not None:
            people = HUMAN_CAPTIONS[target.human_kind]
            captions = (f"original · white-on-black: {people}", *captions[1:])
        middle = colorize(np.nan_to_num(np.clip(middle_map, 0, 1)), self.colormap)
        middle[~np.isfinite(middle_map)] = (middle[~np.isfinite(middle_map)] * 0.3).astype(np.uint8)
        blended = overlay(image, heat, self.colormap, self.alpha)
        if target.human is not None:  # under the explained object's box or outline
            human, kind = target.human, target.human_kind
            image, blended = (draw_human(p, human, kind) for p in (image, blended))
        left, centre, right = (
            self._draw_subject(p, target, scale) for p in (image, middle, blended)
        )
        figure = panel(left, centre, right, title, None if whole else box, captions)
        text = panel_text_size(*size)
        for label, ticks in bars:
            bar = colour_bar(figure.shape[0], ramp, ticks, label, text_size=text)
            figure = beside(figure, bar)
        return figure

    def artifacts(self) -> list[Artifact]:
        """Per explained target, numbered by its rank among the explained targets (1 = the
        first explained: the top class, --target, or the most confident detection): panel
        PNG, raw map, occlusion's drop."""
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
