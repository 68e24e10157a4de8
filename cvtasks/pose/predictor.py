"""Human pose: person boxes and the 17 COCO keypoints from keypointrcnn."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchvision

from cvtasks.detect.predictor import Detection, DetectPredictor, DetectResult, draw_detections
from cvtasks.pose.config import PoseConfig
from cvtasks.pose.orientation import arrow, orientation
from cvtasks.render.draw import draw_skeletons
from cvtasks.types import Frame, Result

# COCO limbs as pairs of keypoint indices (nose=0 ... right_ankle=16).
LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),  # face
    (5, 6),
    (5, 11),
    (6, 12),
    (11, 12),  # torso
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),  # arms
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),  # legs
)
LEFT, RIGHT, CENTRE = (0, 160, 255), (255, 90, 40), (60, 220, 90)


def side_colour(name: str) -> tuple[int, int, int]:
    """Colour by body side: left blue, right orange, centre (nose, torso lines) green."""
    return LEFT if name.startswith("left_") else RIGHT if name.startswith("right_") else CENTRE


def pose_models() -> list[str]:
    names = torchvision.models.list_models(module=torchvision.models.detection)
    return [n for n in names if n.startswith("keypointrcnn_")]


@dataclass
class Person(Detection):
    """A detected person with named keypoints ``{name: [x, y, score]}`` and where the body
    and the head face (:mod:`cvtasks.pose.orientation`)."""

    keypoints: dict[str, list[float]] | None = None

    @property
    def orientation(self) -> dict[str, Any]:
        return orientation(self.keypoints or {})

    def to_record(self) -> dict[str, Any]:
        keypoints = self.keypoints or {}
        return {**super().to_record(), "keypoints": keypoints, "orientation": self.orientation}


@dataclass
class PoseResult(DetectResult):
    """People of one image, highest score first; ``kpt_conf`` only affects drawing."""

    kpt_conf: float = 0.05

    def annotate(self, image: np.ndarray) -> np.ndarray:
        boxed = draw_detections(image, self.predictions)
        people, names = [], []
        for person in self.predictions:
            assert isinstance(person, Person) and person.keypoints is not None
            names = list(person.keypoints)
            people.append(
                [(x, y) if s >= self.kpt_conf else None for x, y, s in person.keypoints.values()]
            )
        if not people:
            return boxed
        limb_colours = [
            side_colour(names[a]) if side_colour(names[a]) == side_colour(names[b]) else CENTRE
            for a, b in LIMBS
        ]
        drawn = draw_skeletons(boxed, people, LIMBS, [side_colour(n) for n in names], limb_colours)
        return draw_facing(drawn, [p for p in self.predictions if isinstance(p, Person)])


def draw_facing(image: np.ndarray, people: list[Person]) -> np.ndarray:
    """A short arrow per person: where the body faces (white), or the head when the body's
    keypoints are missing (yellow)."""
    from PIL import Image, ImageDraw

    from cvtasks.render.draw import line_width_for

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = line_width_for(canvas.width, canvas.height) + 1
    for person in people:
        facing = person.orientation
        which, colour = ("body", (255, 255, 255)) if facing["body"] else ("head", (255, 220, 0))
        if facing[which] is None:
            continue
        x1, y1, x2, y2 = person.box
        found = arrow(person.keypoints or {}, facing[which]["yaw"], 0.35 * max(x2 - x1, y2 - y1))
        if found is None:
            continue
        (sx, sy), (ex, ey) = found
        draw.line((sx, sy, ex, ey), fill=(0, 0, 0), width=width + 2)
        draw.line((sx, sy, ex, ey), fill=colour, width=width)
        angle = math.atan2(ey - sy, ex - sx)
        head = 3 * width + 4
        tip = [(ex, ey)] + [
            (ex - head * math.cos(angle + s), ey - head * math.sin(angle + s))
            for s in (0.45, -0.45)
        ]
        draw.polygon(tip, fill=colour, outline=(0, 0, 0))
    return np.asarray(canvas)


class PosePredictor(DetectPredictor):
    """keypointrcnn with detect's filters; adds keypoints to each kept person."""

    task = "pose"
    models = staticmethod(pose_models)

    def make_result(
        self,
        detections: list[Detection],
        out: Mapping[str, torch.Tensor],
        keep: torch.Tensor,
        frame: Frame,
    ) -> Result:
        assert isinstance(self.cfg, PoseConfig)
        names = self.weights.member.meta["keypoint_names"]
        points = out["keypoints"][keep].tolist()
        scores = out["keypoints_scores"][keep].tolist()
        people: list[Detection] = []
        for det, person_points, person_scores in zip(detections, points, scores, strict=True):
            keypoints = {
                name: [round(p[0], 2), round(p[1], 2), round(s, 4)]
                for name, p, s in zip(names, person_points, person_scores, strict=True)
            }
            people.append(Person(det.label, det.index, det.score, det.box, keypoints))
        return PoseResult(people, frame.width, frame.height, self.yolo_ids, self.cfg.kpt_conf)
