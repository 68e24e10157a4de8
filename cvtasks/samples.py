"""Inputs on their way to the model: one :class:`Sample` per image or frame, decoded and
preprocessed by :func:`prepare` (Pillow, on the CPU, in DataLoader workers or lanes) or, for
JPEGs with ``--decode-on device``, read as bytes there and finished on the model's device in
batches (:func:`finish_on_device`: nvJPEG on CUDA; the same code on CPU tensors).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from cvtasks.errors import ItemError
from cvtasks.io.decode import JpegFile, decode_image, read_jpeg
from cvtasks.io.sources import InputItem
from cvtasks.types import Frame


@dataclass
class Sample:
    """One decoded and preprocessed input as it returns from a worker."""

    position: int
    tensor: Any = None
    width: int = 0
    height: int = 0
    image: np.ndarray | None = None
    error: str | None = None
    warning: str | None = None  # decoded, with a problem to tell (a corrupt JPEG)
    decode_s: float = 0.0
    preprocess_s: float = 0.0
    jpeg: JpegFile | None = None  # bytes still to decode on the device (--decode-on)

    def pin_memory(self) -> Sample:
        """Called by the DataLoader's pinning thread on CUDA runs: page-locked input tensors."""
        if isinstance(self.tensor, torch.Tensor):
            self.tensor = self.tensor.pin_memory()
        return self


def prepare(
    position: int,
    load: Callable[[], Image.Image],
    preprocess: Callable[[Image.Image], Any],
    keep_image: bool,
    load_full: Callable[[], Image.Image] | None = None,
) -> Sample:
    """Decode and preprocess one input, capturing any failure as the sample's error.

    The model always gets what ``load`` decodes (possibly at a reduced JPEG scale), whether or
    not the image is kept: results never depend on annotating. A kept image that was decoded
    at a reduced scale is decoded again at full size (``load_full``) for drawing.
    """
    sample = Sample(position)
    try:
        t0 = time.perf_counter()
        image = load()
        t1 = time.perf_counter()
        sample.tensor = preprocess(image)
        t2 = time.perf_counter()
        full_size = image.info.get("original_size", image.size)
        sample.warning = image.info.get("corrupt")
        if keep_image:
            drawn = image if image.size == full_size or load_full is None else load_full()
            sample.image = np.asarray(drawn)
    except ItemError as exc:
        sample.error = str(exc)
        return sample
    except Exception as exc:  # a preprocessing bug or odd image must not stop the run
        sample.error = f"preprocessing failed: {type(exc).__name__}: {exc}"
        return sample
    sample.width, sample.height = full_size
    sample.decode_s, sample.preprocess_s = t1 - t0, t2 - t1
    return sample


class ImageDataset(Dataset[Sample]):
    """Decode + preprocess image files by position; runs inside DataLoader workers."""

    def __init__(
        self,
        items: Sequence[InputItem],
        preprocess: Callable[[Image.Image], Any],
        max_pixels: int,
        keep_images: bool,
        min_side: int | None = None,
        device_decode: bool = False,
        on_corrupt: str = "warn",
    ) -> None:
        self.paths = [item.path for item in items]
        self.on_corrupt = on_corrupt
        self.preprocess = preprocess
        self.max_pixels = max_pixels
        self.keep_images = keep_images
        self.min_side = min_side
        self.device_decode = device_decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> Sample:
        if self.device_decode:  # JPEGs: only their bytes here, decoded on the device
            start = time.perf_counter()
            try:
                jpeg = read_jpeg(self.paths[position], self.max_pixels, self.on_corrupt)
            except ItemError as exc:
                return Sample(position, error=str(exc))
            if jpeg is not None:
                sample = Sample(position, width=jpeg.width, height=jpeg.height, jpeg=jpeg)
                sample.warning = jpeg.warning
                sample.decode_s = time.perf_counter() - start
                return sample
        return self.with_pillow(position)

    def with_pillow(self, position: int) -> Sample:
        """Decode and preprocess on the CPU with Pillow (the default path, and the fallback
        for files the device could not decode)."""
        path = self.paths[position]
        return prepare(
            position,
            lambda: decode_image(path, self.max_pixels, self.min_side, self.on_corrupt),
            self.preprocess,
            self.keep_images,
            lambda: decode_image(path, self.max_pixels),
        )


def identity(sample: Sample) -> Sample:
    return sample


def image_frames(items: Sequence[InputItem], samples: Sequence[Sample]) -> list[Frame]:
    return [
        Frame(
            source=items[s.position].source,
            index=None,
            width=s.width,
            height=s.height,
            rel=items[s.position].rel,
            image=s.image,
        )
        for s in samples
    ]


def finish_on_device(
    samples: list[Sample],
    dataset: ImageDataset,
    device: torch.device,
    preprocess: Callable[[torch.Tensor], Any],
    keep_images: bool,
) -> list[Sample]:
    """Decode the batch's JPEG bytes on ``device`` in one call and preprocess the tensors
    there; a file the device cannot decode goes the Pillow way, which fails it if it is
    corrupt (one failure record) or decodes it if it is merely unusual."""
    from cvtasks.io.device_decode import decode_jpegs

    pending = [i for i, s in enumerate(samples) if s.jpeg is not None]
    if not pending:
        return samples
    start = time.perf_counter()
    decoded = decode_jpegs([samples[i].jpeg for i in pending], device)  # type: ignore[misc]
    each = (time.perf_counter() - start) / len(pending)
    out = list(samples)
    for i, tensor in zip(pending, decoded, strict=True):
        sample = samples[i]
        if tensor is None:
            out[i] = dataset.with_pillow(sample.position)
            continue
        sample.jpeg = None
        sample.height, sample.width = (int(v) for v in tensor.shape[-2:])
        sample.decode_s += each
        t0 = time.perf_counter()
        try:
            sample.tensor = preprocess(tensor)
        except Exception as exc:  # as on the Pillow path: this input fails, not the run
            sample.error = f"preprocessing failed: {type(exc).__name__}: {exc}"
        sample.preprocess_s = time.perf_counter() - t0
        if keep_images:
            sample.image = tensor.permute(1, 2, 0).cpu().numpy()
    return out
