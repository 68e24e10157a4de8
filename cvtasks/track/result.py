"""The result of one tracked frame: detections with their track ids, and the running counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cvtasks.detect.predictor import Detection, draw_detections
from cvtasks.pose.predictor import CENTRE, LIMBS, side_colour
from cvtasks.render.draw import blend_masks, draw_skeletons, font, line_width_for, text_size_for
from cvtasks.render.palette import instance_colour, text_colour
from cvtasks.track.geometry import Point

LINE_COLOUR = (255, 255, 255)
ZONE_COLOUR = (255, 200, 0)


@dataclass
class TrackedPrediction:
    """A detection (box, and keypoints or mask when the model gives them) and its track."""

    detection: Detection
    track_id: int
    speed_kmh: float | None = None

    def to_record(self, with_speed: bool) -> dict[str, Any]:
        record = {**self.detection.to_record(), "track_id": self.track_id}
        if with_speed:
            record["speed_kmh"] = self.speed_kmh
        return record


@dataclass
class Overlay:
    """What the annotated frame shows besides the boxes: trails, lines and zones."""

    trails: dict[int, list[Point]] = field(default_factory=dict)
    lines: list[tuple[str, tuple[Point, Point], dict[str, int]]] = field(default_factory=list)
    zones: list[tuple[str, list[Point], int]] = field(default_factory=list)


@dataclass
class TrackResult:
    """Tracked objects of one frame (best score first) and the counts so far."""

    objects: list[TrackedPrediction]
    counts: dict[str, Any]
    overlay: Overlay
    with_speed: bool = False
    untracked: int = 0  # detections the tracker has not confirmed (no id yet)
    kpt_conf: float = 0.05  # keypoints scoring below are not drawn

    @property
    def predictions(self) -> list[Detection]:
        return [o.detection for o in self.objects]

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "predictions": [o.to_record(self.with_speed) for o in self.objects]
        }
        if self.counts:
            record["counts"] = self.counts
        return record

    def summary(self) -> str:
        shown = ", ".join(f"#{o.track_id} {o.detection.label}" for o in self.objects[:6])
        more = f" +{len(self.objects) - 6}" if len(self.objects) > 6 else ""
        return (shown + more) or "no tracks"

    def annotate(self, image: np.ndarray) -> np.ndarray:
        canvas = _draw_zones(image, self.overlay.zones)
        colours = [instance_colour(o.track_id) for o in self.objects]
        masks = [
            (getattr(o.detection, "pixels", None), c)
            for o, c in zip(self.objects, colours, strict=True)
        ]
        present = [(m, c) for m, c in masks if m is not None]
        if present:
            canvas = blend_masks(canvas, [m for m, _ in present], [c for _, c in present], 0.4)
        canvas = _draw_lines(canvas, self.overlay.lines, labels=False)  # under the boxes
        canvas = _draw_trails(canvas, self.overlay.trails)
        tags = []
        for o in self.objects:
            speed = f" {o.speed_kmh:.0f} km/h" if o.speed_kmh is not None else ""
            tags.append(f"#{o.track_id} {o.detection.label} {o.detection.score:.2f}{speed}")
        canvas = draw_detections(canvas, self.predictions, colours, tags)
        canvas = _draw_keypoints(canvas, self.predictions, self.kpt_conf)
        return _draw_lines(canvas, self.overlay.lines, labels=True)  # counters on top


def _draw_zones(image: np.ndarray, zones: Sequence[tuple[str, list[Point], int]]) -> np.ndarray:
    if not zones:
        return image
    base = Image.fromarray(image).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    width = line_width_for(base.width, base.height)
    face = font(text_size_for(base.width, base.height))
    for name, polygon, count in zones:
        points = [(float(x), float(y)) for x, y in polygon]
        draw.polygon(points, fill=(*ZONE_COLOUR, 50), outline=(*ZONE_COLOUR, 255), width=width)
        # the label sits just above the zone's top-left corner (inside it at the frame's top)
        x = min(p[0] for p in points)
        size = getattr(face, "size", 12)
        top = min(p[1] for p in points)
        y = top - size - 2 * width if top - size - 2 * width >= 0 else top + width
        _label(draw, (x + width, y), f"{name}: {count}", face, ZONE_COLOUR)
    return np.asarray(Image.alpha_composite(base, layer).convert("RGB"))


def _draw_lines(
    image: np.ndarray,
    lines: Sequence[tuple[str, tuple[Point, Point], dict[str, int]]],
    labels: bool,
) -> np.ndarray:
    """The counting lines (``labels=False``) or their ``NAME in N out M`` counters."""
    if not lines:
        return image
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = line_width_for(canvas.width, canvas.height)
    face = font(text_size_for(canvas.width, canvas.height))
    for name, (a, b), counts in lines:
        if not labels:
            draw.line((a, b), fill=(0, 0, 0), width=width + 2)
            draw.line((a, b), fill=LINE_COLOUR, width=width)
            continue
        for end in (a, b):
            draw.ellipse(
                (end[0] - width, end[1] - width, end[0] + width, end[1] + width), fill=LINE_COLOUR
            )
        text = f"{name}  in {counts.get('in', 0)}  out {counts.get('out', 0)}"
        size = getattr(face, "size", 12)  # the label starts at P1, the line's first point
        x = min(max(0, a[0] + width), max(0, canvas.width - 12 * size))
        y = min(max(0, a[1] + width), max(0, canvas.height - 2 * size))
        _label(draw, (x, y), text, face, (30, 30, 30))
    return np.asarray(canvas)


def _label(
    draw: ImageDraw.ImageDraw, at: Point, text: str, face: Any, fill: tuple[int, int, int]
) -> None:
    left, top, right, bottom = draw.textbbox(at, text, font=face)
    pad = 3
    draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=fill)
    draw.text(at, text, font=face, fill=text_colour(fill))


def _draw_trails(image: np.ndarray, trails: dict[int, list[Point]]) -> np.ndarray:
    if not trails:
        return image
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(2, line_width_for(canvas.width, canvas.height) - 1)
    for track_id, points in trails.items():
        if len(points) > 1:
            draw.line(points, fill=instance_colour(track_id), width=width, joint="curve")
    return np.asarray(canvas)


def _draw_keypoints(
    image: np.ndarray, predictions: Sequence[Detection], threshold: float
) -> np.ndarray:
    people, names = [], []
    for person in predictions:
        keypoints = getattr(person, "keypoints", None)
        if keypoints:
            names = list(keypoints)
            people.append([(x, y) if s >= threshold else None for x, y, s in keypoints.values()])
    if not people:
        return image
    limb_colours = [
        side_colour(names[a]) if side_colour(names[a]) == side_colour(names[b]) else CENTRE
        for a, b in LIMBS
    ]
    return draw_skeletons(image, people, LIMBS, [side_colour(n) for n in names], limb_colours)
