"""What a task family hands the exporter: an :class:`ExportPlan` (a module taking and returning
tensors, example inputs, which axes vary, the inputs to check on and how to compare), built
by the family's ``export.py`` from the export's config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

Compare = Callable[[list[torch.Tensor], list[torch.Tensor]], float]


@dataclass
class ExportPlan:
    """One model, ready to export.

    ``graph`` says how the ONNX graph is captured: ``"dynamo"`` (torch.export, the default
    exporter) or ``"legacy"`` (TorchScript tracing: torchvision's detectors, whose
    data-dependent NMS torch.export cannot capture); ``script`` makes TorchScript script the
    module (detectors) instead of tracing it."""

    module: nn.Module
    example: tuple[Any, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic: dict[str, dict[int, str]]  # input or output name -> {axis: name}
    checks: list[tuple[torch.Tensor, ...]]  # inputs the exported model is compared on
    compare: Compare  # (PyTorch's outputs, the export's) -> the largest difference
    metadata: dict[str, Any]
    graph: str = "dynamo"
    script: bool = False
    int8_outputs: Callable[[list[torch.Tensor]], np.ndarray] | None = None  # top-1 per input
    notes: list[str] = field(default_factory=list)

    def reference(self, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """PyTorch's outputs on ``inputs``, flattened like the exported graph's."""
        with torch.inference_mode():
            found = self.module(*inputs)
        if isinstance(found, torch.Tensor):
            return [found]
        if isinstance(found, dict):
            return list(found.values())
        return list(found)


def max_difference(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    """The largest absolute difference between two lists of same-shaped outputs (inf when a
    shape differs)."""
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        if tuple(a.shape) != tuple(b.shape):
            return float("inf")
        if a.numel():
            worst = max(worst, float((a.float() - b.float()).abs().max()))
    return worst


def synthetic_images(count: int = 3, size: tuple[int, int] = (360, 480)) -> list[Image.Image]:
    """Seeded images with smooth colour fields, edges and texture (photo-like statistics), for
    checking an export when no images are given."""
    rng = np.random.default_rng(0)
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    images = []
    for k in range(count):
        channels = []
        for _ in range(3):
            a, b, phase = rng.uniform(-3, 3, 3)
            channels.append(0.5 + 0.35 * np.sin(a * xs * 6 + b * ys * 6 + phase + k))
        image = np.stack(channels, axis=-1)
        x1, y1 = rng.integers(0, width // 2), rng.integers(0, height // 2)
        image[y1 : y1 + height // 3, x1 : x1 + width // 3] = rng.uniform(0, 1, 3)  # an object
        image += rng.normal(0, 0.04, image.shape)
        images.append(Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)))
    return images


def check_images(paths: Sequence[str], max_pixels: int, limit: int = 256) -> list[Image.Image]:
    """The export's IMAGES (files, folders, globs; at most ``limit``), or synthetic ones."""
    if not paths:
        return synthetic_images()
    from cvtasks.errors import ItemError, UsageError
    from cvtasks.io.decode import decode_image
    from cvtasks.io.sources import expand_inputs

    items = [i for i in expand_inputs(list(paths)) if not i.is_video][:limit]
    images = []
    for item in items:
        try:
            images.append(decode_image(Path(item.path), max_pixels))
        except ItemError as exc:
            raise UsageError(f"{item.source}: {exc}") from None
    if not images:
        raise UsageError("no still image among the IMAGES to check (and calibrate) on")
    return images
