"""A depth model exported by `cvtasks export`, run by its runtime (``depth --backend``) with
the image processor its metadata describes (no hub, no cache)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch

from cvtasks.export.runtime import Runtime


def exported_processor(meta: dict[str, Any]) -> Any:
    """The image processor an exported depth model was checked with, from its metadata."""
    import transformers

    cls = getattr(transformers, str(meta["processor_class"]))
    return cls.from_dict(dict(meta["processor"]))


def runtime_depth(runtime: Runtime) -> Callable[..., Any]:
    """``model(pixel_values=...)`` answering ``.predicted_depth``, as transformers' models."""

    def forward(pixel_values: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(predicted_depth=runtime.run_one(pixel_values))

    return forward
