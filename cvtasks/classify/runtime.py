"""A classifier exported by `cvtasks export`, run by its runtime (``classify --backend``) in
the torch model's place."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cvtasks.export.runtime import Runtime


def runtime_classifier(runtime: Runtime) -> Callable[[torch.Tensor], torch.Tensor]:
    """A batch (B x 3 x H x W) -> logits (B x classes), as the torch model is called."""

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return runtime.run_one(batch)

    return forward
