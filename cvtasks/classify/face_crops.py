"""`--crop faces`: the classifier judges each detected face, not the frame (as anti-spoofing
tools do): MTCNN finds the faces, each becomes an aligned crop (its landmarks on the 112x112
template) or, with ``--context S``, the box scaled S times about its centre; the classifier's
own preprocessing then runs on that crop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from cvtasks.faces.align import aligned_crop, context_box
from cvtasks.faces.mtcnn import Settings, detect, round2
from cvtasks.faces.weights import load_mtcnn

ALIGNED_SIZE = 112


@dataclass(frozen=True)
class CropSpec:
    """How faces are cropped: ``context`` None for the aligned crop, else the box's scale."""

    context: float | None = None

    def describe(self) -> str:
        if self.context is None:
            return "faces (aligned 112x112 crops)"
        return f"faces (boxes scaled {self.context:g}x about their centre)"

    def to_record(self) -> dict[str, Any]:
        return {"faces": True, "context": self.context}


@dataclass
class FoundFace:
    box: list[float]
    score: float
    landmarks: list[list[float]]

    def to_record(self) -> dict[str, Any]:
        return {"box": self.box, "score": self.score, "landmarks": self.landmarks}


class FaceCropper:
    """Picklable (it runs in DataLoader workers): faces of an image, most confident first,
    each with the crop the classifier sees."""

    def __init__(self, spec: CropSpec, face_weights: str) -> None:
        self.spec = spec
        self.nets = load_mtcnn(face_weights, torch.device("cpu"))
        self.settings = Settings()

    def __call__(self, image: Image.Image) -> list[tuple[FoundFace, Image.Image]]:
        pixels = np.asarray(image.convert("RGB"))
        found = detect(torch.from_numpy(pixels.copy()), self.nets, self.settings)
        faces = []
        for box, score, marks in found.rows():
            face = FoundFace(round2(box), round(score, 4), [round2(p) for p in marks])
            faces.append((face, self.crop(pixels, box, marks)))
        faces.sort(key=lambda pair: pair[0].score, reverse=True)
        return faces

    def crop(self, pixels: np.ndarray, box: list[float], marks: list[list[float]]) -> Image.Image:
        if self.spec.context is None:
            return Image.fromarray(aligned_crop(pixels, np.array(marks), ALIGNED_SIZE))
        height, width = pixels.shape[:2]
        left, top, right, bottom = context_box(box, width, height, self.spec.context)
        return Image.fromarray(pixels[top : bottom + 1, left : right + 1])


@dataclass
class FacesInput:
    """One image's faces and their preprocessed crops (``tensors``: (n, 3, H, W))."""

    faces: list[FoundFace]
    tensors: torch.Tensor


class FacesPreprocess:
    """Detect, crop, then the classifier's transforms on each crop (picklable)."""

    def __init__(self, cropper: FaceCropper, transforms: Any) -> None:
        self.cropper = cropper
        self.transforms = transforms

    def __call__(self, image: Image.Image) -> FacesInput:
        pairs = self.cropper(image)
        tensors = [self.transforms(crop) for _, crop in pairs]
        stacked = torch.stack(tensors) if tensors else torch.empty(0)
        return FacesInput([face for face, _ in pairs], stacked)
