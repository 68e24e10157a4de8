"""The training recipe: preprocessing for evaluation (saved with the run), augmentation,
AdamW with warm-up and cosine decay, label smoothing."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torchvision.transforms import v2

from cvtasks.weights import ResolvedWeights


def preprocessing_for(weights: ResolvedWeights, img_size: int | None) -> dict[str, Any]:
    """Evaluation preprocessing of the run: the weights' own (resize, crop, mean, std,
    interpolation), scaled to ``img_size`` when given (resize keeps the crop's ratio)."""
    base = weights.transforms()
    crop = int(img_size or base.crop_size[0])
    resize = round(crop * base.resize_size[0] / base.crop_size[0])
    return {
        "resize": resize,
        "crop": crop,
        "mean": [float(v) for v in base.mean],
        "std": [float(v) for v in base.std],
        "interpolation": base.interpolation.value,
    }


def _to_model_input(p: dict[str, Any]) -> list[Any]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(p["mean"], p["std"])]


def eval_transform(p: dict[str, Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    """From an image already resized to ``p["resize"]`` (uint8 CxHxW): centre crop, scale,
    normalise: what ``classify`` does with the run's preprocessing."""
    return v2.Compose([v2.CenterCrop(p["crop"]), *_to_model_input(p)])


def train_transform(p: dict[str, Any], augment: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Augmentation on a resized uint8 image (torchvision transforms v2)."""
    crop = p["crop"]
    if augment == "none":
        return eval_transform(p)
    if augment == "light":
        steps: list[Any] = [
            v2.RandomResizedCrop(crop, scale=(0.35, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
        ]
        return v2.Compose([*steps, *_to_model_input(p)])
    steps = [
        v2.RandomResizedCrop(crop, scale=(0.08, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandAugment(num_ops=2, magnitude=9),
        v2.ColorJitter(0.3, 0.3, 0.3, 0.05),
    ]
    return v2.Compose([*steps, *_to_model_input(p), v2.RandomErasing(p=0.25)])


def optimizer_for(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; no weight decay on biases and norm scales."""
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (plain if parameter.dim() <= 1 else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 1 % of the peak, then cosine decay to 0, per step."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return 0.01 + 0.99 * step / max(warmup_steps, 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
