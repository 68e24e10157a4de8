"""A detector exported by `cvtasks export`, run by its runtime (``detect|segment|pose
--backend``) image by image in the torch model's place."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cvtasks.export.runtime import Runtime


def runtime_detector(
    runtime: Runtime, keys: list[str]
) -> Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """Images (each 3 x H x W) -> one dict of detections each, as the torch model returns."""

    def forward(images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        found = []
        for image in images:
            outputs = runtime.run([image.float().contiguous()])
            found.append({k: v.to(image.device) for k, v in zip(keys, outputs, strict=True)})
        return found

    return forward
