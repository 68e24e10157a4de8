"""`cvtasks faces`: MTCNN's boxes, scores and five landmarks per face, in the input's pixels;
with ``--save-crops`` each face's aligned and context crops."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from cvtasks.errors import UsageError
from cvtasks.faces.align import aligned_crop, context_crop
from cvtasks.faces.config import FacesConfig
from cvtasks.faces.mtcnn import Settings, detect, round2
from cvtasks.faces.weights import load_mtcnn
from cvtasks.render.draw import draw_boxes, line_width_for
from cvtasks.render.palette import instance_colour
from cvtasks.tasks.base import Predictor
from cvtasks.types import Artifact, Frame, Result

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
FACE_COLOUR = (0, 200, 255)
POINT_COLOUR = (255, 40, 40)


@dataclass
class Face:
    """One face: ``box`` [x1, y1, x2, y2], ``score`` and ``landmarks`` (five [x, y]) in the
    input's pixels; its crops when asked for; its track id in a tracked video."""

    box: list[float]
    score: float
    landmarks: list[list[float]]
    track_id: int | None = None
    aligned: np.ndarray | None = field(default=None, repr=False)
    context: np.ndarray | None = field(default=None, repr=False)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "label": "face",
            "score": self.score,
            "box": self.box,
            "landmarks": self.landmarks,
        }
        if self.track_id is not None:
            record["track_id"] = self.track_id
        return record


@dataclass
class FacesResult:
    """The faces of one image, highest score first."""

    faces: list[Face]

    @property
    def predictions(self) -> list[Face]:
        return self.faces

    def to_record(self) -> dict[str, Any]:
        return {"predictions": [f.to_record() for f in self.faces]}

    def summary(self) -> str:
        if not self.faces:
            return "no faces"
        scores = ", ".join(f"{f.score:.2f}" for f in self.faces[:5])
        return f"{len(self.faces)} face{'s' if len(self.faces) > 1 else ''} ({scores})"

    def annotate(self, image: np.ndarray) -> np.ndarray:
        tracked = any(f.track_id is not None for f in self.faces)
        colours = [instance_colour(f.track_id or 0) if tracked else FACE_COLOUR for f in self.faces]
        tags = [
            (f"#{f.track_id} " if f.track_id is not None else "") + f"face {f.score:.2f}"
            for f in self.faces
        ]
        canvas = Image.fromarray(draw_boxes(image, [f.box for f in self.faces], tags, colours))
        draw = ImageDraw.Draw(canvas)
        radius = line_width_for(canvas.width, canvas.height) + 1
        for face in self.faces:
            for x, y in face.landmarks:
                draw.ellipse(
                    (x - radius, y - radius, x + radius, y + radius),
                    fill=POINT_COLOUR,
                    outline=(255, 255, 255),
                )
        return np.asarray(canvas)

    def artifacts(self) -> list[Artifact]:
        files = []
        for k, face in enumerate(self.faces):
            for kind, pixels in (("aligned", face.aligned), ("context", face.context)):
                if pixels is not None:
                    write = partial(_write_png, pixels)
                    files.append(Artifact(f"{kind}_{k}", "crops", f".face{k}.{kind}.png", write))
        return files


def _write_png(pixels: np.ndarray, path: Path) -> None:
    Image.fromarray(pixels).save(path, format="PNG")


def _as_tensor(image: Image.Image) -> torch.Tensor:
    """The decoded RGB image as an (H, W, 3) uint8 tensor: MTCNN resamples it itself."""
    return torch.from_numpy(np.array(image, dtype=np.uint8))


def parse_thresholds(values: Sequence[str]) -> tuple[float, float, float]:
    """``--thresholds 0.6,0.7,0.7``: three scores in [0, 1], or a usage error."""
    try:
        numbers = tuple(float(v) for v in values)
    except ValueError:
        numbers = ()
    if len(numbers) != 3 or not all(0.0 <= n <= 1.0 for n in numbers):
        raise UsageError(
            f"--thresholds takes three scores in [0, 1] (P-Net, R-Net, O-Net), e.g. 0.6,0.7,0.7; "
            f"got {','.join(values)}"
        )
    return numbers[0], numbers[1], numbers[2]


class FacesPredictor(Predictor):
    """MTCNN over each image (its own pyramid: images need not share a size)."""

    task = "faces"

    def __init__(self, cfg: FacesConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        self.settings = Settings(cfg.min_size, parse_thresholds(cfg.thresholds), cfg.factor)
        self.nets = load_mtcnn(cfg.weights, device)

    def preprocessor(self) -> Callable[[Image.Image], Any]:
        return _as_tensor

    def collate(self, inputs: Sequence[Any]) -> Any:
        return list(inputs)

    def to_device(self, batch: Any) -> Any:
        return [image.to(self.device) for image in batch]

    def infer(self, batch: Any) -> Any:
        return [(detect(image, self.nets, self.settings), image) for image in batch]

    def postprocess(self, outputs: Any, frames: Sequence[Frame]) -> list[Result]:
        assert isinstance(self.cfg, FacesConfig)
        cfg = self.cfg
        results: list[Result] = []
        for (found, image), _frame in zip(outputs, frames, strict=True):
            pixels = image.cpu().numpy() if cfg.save_crops else None
            faces = []
            for box, score, marks in found.rows():
                if score < cfg.conf:
                    continue
                face = Face(round2(box), round(score, 4), [round2(p) for p in marks])
                if pixels is not None:
                    face.aligned = aligned_crop(pixels, np.array(marks), cfg.crop_size)
                    face.context = context_crop(pixels, box, cfg.context, cfg.crop_size)
                faces.append(face)
            faces.sort(key=lambda f: f.score, reverse=True)
            results.append(FacesResult(faces))
        return results
