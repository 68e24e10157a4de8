"""Grad-CAM (Selvaraju et al. 2017): ``ReLU(sum_c mean_ij(dy/dA_cij) * A_c)`` at one layer, as
Captum's ``LayerGradCam(relu_attributions=True)`` computes it for convolutional maps, and also for
layers whose output is a token sequence (vision transformers): the class token is dropped and
the patch tokens are laid out on their grid, as pytorch-grad-cam's ``reshape_transform`` does."""

from __future__ import annotations

import math

import torch
from torch import nn

from cvtasks.errors import UsageError


def token_grid(tokens: torch.Tensor) -> torch.Tensor:
    """``B x T x C`` tokens (a class token first when T - 1 is a square) -> ``B x C x h x w``."""
    count = tokens.shape[1]
    for skip in (1, 0):
        side = math.isqrt(count - skip)
        if side * side == count - skip and side > 0:
            patches = tokens[:, skip:, :]
            return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], side, side)
    raise UsageError(
        f"the layer's output has {count} tokens, which do not form a square grid of patches"
    )


def gradcam(
    model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int, elementwise: bool = False
) -> torch.Tensor:
    """The ``1 x 1 x h x w`` Grad-CAM of output ``target`` at ``layer`` (a ``B x C x h x w`` map
    or ``B x T x C`` tokens); ``x`` must require gradients.

    ``elementwise`` weights each activation by its own gradient instead of the channel's mean
    gradient: ``ReLU(sum_c dy/dA_c * A_c)``, HiResCAM (Draelos & Carin 2020), which ODAM (Zhao et
    al. 2023) uses for detectors because a mean over the whole map is not specific to one
    object."""
    store: list[torch.Tensor] = []

    def hook(_m: nn.Module, _args: tuple[object, ...], output: torch.Tensor) -> None:
        store.append(output)

    handle = layer.register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    if not store or store[0].dim() not in (3, 4):
        raise UsageError("Grad-CAM needs a convolutional map or a token sequence at --layer")
    (gradient,) = torch.autograd.grad(logits[0, target], store[0])
    activation = store[0].detach()
    if activation.dim() == 3:
        activation, gradient = token_grid(activation), token_grid(gradient)
    weights = gradient if elementwise else gradient.mean(dim=(2, 3), keepdim=True)
    return torch.relu((weights * activation.float()).sum(dim=1, keepdim=True))
