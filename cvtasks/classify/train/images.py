"""Training images: decoded as `classify` decodes them by default (EXIF, modes, full-scale JPEG
decoding, so that validation scores equal `classify`'s), resized once to the evaluation resize
side, and kept in memory up to a budget so that later epochs skip the JPEG decoding. Unreadable
images are reported once and left out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

from cvtasks.classify.train.data import Sample
from cvtasks.errors import ItemError
from cvtasks.io.decode import decode_image
from cvtasks.log import warn

NO_FACE = "no face found"


class ResizedImages:
    """``load(i)``: sample i as a uint8 C x H x W tensor, shorter side = ``resize``."""

    def __init__(
        self,
        samples: Sequence[Sample],
        p: dict[str, Any],
        max_pixels: int,
        cache_mb: int,
        on_corrupt: str = "warn",
        cropper: Callable[[Image.Image], list[Any]] | None = None,
    ) -> None:
        self.on_corrupt = on_corrupt
        self.cropper = cropper  # --crop faces: the most confident face's crop is the sample
        self.warned: set[int] = set()  # corrupt JPEGs said once per process
        self.samples = list(samples)
        self.resize = int(p["resize"])
        self.interpolation = InterpolationMode(p["interpolation"])
        self.max_pixels = max_pixels
        self.budget = cache_mb * 1024 * 1024
        self.cache: dict[int, torch.Tensor] = {}
        self.cached_bytes = 0
        self.errors: dict[int, str] = {}

    def load(self, index: int) -> torch.Tensor:
        found = self.cache.get(index)
        if found is not None:
            return found
        if index in self.errors:
            raise ItemError(self.errors[index])
        path = self.samples[index][0]
        try:
            image = decode_image(path, self.max_pixels, on_corrupt=self.on_corrupt)
        except ItemError as exc:
            self.errors[index] = str(exc)
            raise
        if "corrupt" in image.info and index not in self.warned:
            self.warned.add(index)
            warn(f"{path}: {image.info['corrupt']}")
        if self.cropper is not None:
            faces = self.cropper(image)
            if not faces:
                self.errors[index] = f"{NO_FACE} (--crop faces): nothing to learn from"
                raise ItemError(self.errors[index])
            image = faces[0][1]
        resized = TF.resize(image, [self.resize], interpolation=self.interpolation, antialias=True)
        tensor = TF.pil_to_tensor(resized)
        size = tensor.numel()
        if self.cached_bytes + size <= self.budget:
            self.cache[index] = tensor
            self.cached_bytes += size
        return tensor


@dataclass
class Unreadable:
    """A sample that could not be decoded (reported to the main process by the batch)."""

    index: int
    reason: str


Item = tuple[torch.Tensor, int] | Unreadable


class LabelledImages(Dataset[Item]):
    """(model input, class) per sample, or :class:`Unreadable`."""

    def __init__(
        self, images: ResizedImages, transform: Callable[[torch.Tensor], torch.Tensor]
    ) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images.samples)

    def __getitem__(self, index: int) -> Item:
        try:
            image = self.images.load(index)
        except ItemError as exc:
            return Unreadable(index, str(exc))
        return self.transform(image), self.images.samples[index][1]


@dataclass
class Batch:
    inputs: torch.Tensor | None  # None when no sample of the batch could be read
    targets: torch.Tensor | None
    indices: list[int]
    unreadable: list[Unreadable]


def collate(items: Sequence[Item], indices: Sequence[int] = ()) -> Batch:
    """Stack the readable samples of a batch; the others are listed."""
    kept = [item for item in items if not isinstance(item, Unreadable)]
    bad = [item for item in items if isinstance(item, Unreadable)]
    if not kept:
        return Batch(None, None, [], bad)
    inputs = torch.stack([x for x, _ in kept])
    return Batch(inputs, torch.tensor([y for _, y in kept]), list(indices), bad)
