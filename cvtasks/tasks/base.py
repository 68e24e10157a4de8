"""The contract between a task and the task-agnostic engine."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from cvtasks.config import InferenceConfig
from cvtasks.errors import UsageError
from cvtasks.log import warn
from cvtasks.speed import fold_batchnorm, silence_cuda_home_notice
from cvtasks.types import Frame, Result
from cvtasks.weights import ResolvedWeights


class Predictor(ABC):
    """Owns a model and what is specific to its task: preprocess, forward, postprocess.

    ``preprocessor()`` runs in DataLoader workers; ``infer`` runs under
    ``torch.inference_mode`` in the main process.
    """

    task: ClassVar[str]
    needs_images: ClassVar[bool] = False  # results draw on the original image (explain panels)
    supports_lanes: ClassVar[bool] = False  # infer/postprocess may run on two threads at once
    channels_last: bool = False  # set when the model was converted to channels-last

    def __init__(self, cfg: InferenceConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device

    @property
    def model_name(self) -> str:
        return self.cfg.model

    @abstractmethod
    def preprocessor(self) -> Callable[[Image.Image], Any]:
        """A picklable callable turning one decoded RGB image into the model's input.

        It runs in DataLoader workers, so it must not hold the model or touch the device.
        """

    def tensor_preprocessor(self) -> Callable[[torch.Tensor], Any] | None:
        """The same preprocessing on an upright RGB uint8 ``C x H x W`` tensor already on the
        device (GPU decoding), or None where this task preprocesses with Pillow only."""
        return None

    def collate(self, inputs: Sequence[Any]) -> Any:
        """Combine preprocessed inputs into one batch (default: stack same-size tensors)."""
        return torch.stack(list(inputs))

    @abstractmethod
    def infer(self, batch: Any) -> Any:
        """Run the model on a collated batch already moved to the device."""

    def infer_frames(self, batch: Any, frames: Sequence[Frame]) -> Any:
        """:meth:`infer`, for a task whose inference depends on what is known of each frame
        beyond its pixels (its source: an evaluation's ground truth picks what to explain)."""
        return self.infer(batch)

    @abstractmethod
    def postprocess(self, outputs: Any, frames: Sequence[Frame]) -> list[Result]:
        """Turn model outputs into one result per frame, in original-image coordinates."""

    def finalize(self, out: Path | None) -> list[str]:
        """After the last input: write dataset-level outputs under ``out`` (top patches, an
        embedding) and return lines for stderr. Most tasks have none."""
        return []

    def decode_min_side(self) -> int | None:
        """The shorter side the model resizes images to, when its outputs do not depend on the
        decoded size (then large JPEGs may be decoded at a reduced scale); None otherwise."""
        return None

    def preprocessing_note(self) -> str | None:
        """One line naming the weights' release and the preprocessing that runs (stderr summary,
        config.yaml), for the predictors built on torchvision weights."""
        weights = getattr(self, "weights", None)
        if weights is None:
            weights = getattr(getattr(self, "net", None), "weights", None)
        if isinstance(weights, ResolvedWeights):
            return f"{self.model_name}: {weights.describe_preprocessing()}"
        return None

    def observe(self, result: Result) -> None:
        """Called with each result where the run writes it (this process, whichever engine
        computed it): what ``final_report`` summarises is gathered here, not in postprocess."""
        return None

    def final_report(self) -> str | None:
        """A closing line for stderr after the run (e.g. mean evaluation scores), if any."""
        return None

    def inference_context(self) -> contextlib.AbstractContextManager[object]:
        """Where ``infer`` runs: inference mode, unless the task needs gradients."""
        return torch.inference_mode()

    def to_device(self, batch: Any) -> Any:
        """Move a collated batch to the predictor's device (channels-last when the model is)."""
        if isinstance(batch, torch.Tensor):
            batch = batch.to(self.device, non_blocking=True)
            return self.layout(batch)
        return [b.to(self.device, non_blocking=True) for b in batch]

    def use_channels_last(self, model: torch.nn.Module) -> torch.nn.Module:
        """Convert a convolutional model to channels-last if the config asks for it."""
        if getattr(self.cfg, "channels_last", False):
            self.channels_last = True
            return model.to(memory_format=torch.channels_last)
        return model

    def maybe_fold_batchnorm(self, model: torch.nn.Module) -> torch.nn.Module:
        """:func:`fold_batchnorm` when the config asks for it (``--fold-bn``, the default)."""
        return fold_batchnorm(model) if getattr(self.cfg, "fold_bn", False) else model

    def maybe_compile(self, model: torch.nn.Module) -> torch.nn.Module:
        """``torch.compile`` the model when the config asks; falls back (with a warning) when
        this machine cannot compile (e.g. no C++ compiler)."""
        if not getattr(self.cfg, "compile", False):
            return model
        silence_cuda_home_notice()
        try:
            compiled: torch.nn.Module = torch.compile(model)  # type: ignore[assignment]
        except Exception as exc:  # compilation backends fail in many ways
            warn(f"--compile: {type(exc).__name__}: {exc}; running uncompiled")
            return model
        return compiled

    def layout(self, batch: torch.Tensor) -> torch.Tensor:
        """A 4-D batch in the model's memory format."""
        if self.channels_last and batch.dim() == 4:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file, one per line (blank lines are skipped)."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read labels file {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"labels file {p} is not UTF-8 text") from None
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise UsageError(f"labels file {p} has no labels")
    return labels


def class_names(weights: ResolvedWeights, labels_file: str | None) -> list[str]:
    """The model's class names: the weights' categories, or ``--labels`` for your own head.

    Pretrained weights have a fixed head, so a labels file must then name as many classes.
    """
    categories = weights.categories
    if labels_file is None:
        return categories
    labels = read_labels(labels_file)
    if weights.kind in ("pretrained", "run", "exported") and len(labels) != len(categories):
        raise UsageError(
            f"--labels has {len(labels)} names but {weights.describe()} predicts "
            f"{len(categories)} classes; pass your fine-tuned weights with --weights FILE"
        )
    return labels
