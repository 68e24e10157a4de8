"""Inference-only rewrites of a model that keep its function: BatchNorm folding, memory layout."""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm into the convolution feeding it (``torch.fx``): the same
    function up to float rounding, one kernel fewer per pair. Models without BatchNorm, or
    that ``torch.fx`` cannot trace, are returned unchanged."""
    if not has_batchnorm(model):
        return model
    from torch.fx.experimental.optimization import fuse

    try:
        folded: nn.Module = fuse(model.eval(), inplace=True)
    except Exception:  # untraceable (data-dependent control flow): keep the model as it is
        return model
    return folded


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def is_channels_last(model: nn.Module) -> bool:
    """Whether the model's convolution weights are stored channels-last."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.weight.shape[1] > 1:
            weight = module.weight
            return weight.is_contiguous(memory_format=torch.channels_last) and not (
                weight.is_contiguous()
            )
    return False


def forward_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for forward passes only: BatchNorm folded, same memory layout
    (the model itself when it has no BatchNorm: nothing to fold, no copy)."""
    if not has_batchnorm(model):
        return model
    channels_last = is_channels_last(model)
    folded = fold_batchnorm(copy.deepcopy(model))
    return folded.to(memory_format=torch.channels_last) if channels_last else folded


def silence_cuda_home_notice() -> None:
    """``torch.compile`` imports ``torch.utils.cpp_extension``, which logs "No CUDA runtime is
    found, using CUDA_HOME=..." on CPU-only machines with a CUDA build of torch: noise there."""
    if not torch.cuda.is_available():
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
