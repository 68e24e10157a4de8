"""A semantic segmenter exported by `cvtasks export`, run by its runtime (``segment
--backend``) in the torch model's place."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cvtasks.export.runtime import Runtime


def runtime_segmenter(runtime: Runtime) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """A batch -> {"out": logits}, as torchvision's segmenters answer."""

    def forward(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": runtime.run_one(batch)}

    return forward
