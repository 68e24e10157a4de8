"""The backward rule of deconvnet and guided backprop on every activation torchvision uses.

Captum's Deconvolution and GuidedBackprop change the gradient of ``nn.ReLU`` modules only. A
copy of the model is made in which every other activation is wrapped in :class:`Guided`, an
``nn.ReLU`` subclass whose forward is the original activation, so the same rule reaches it:

- guided backprop: the ordinary local gradient, then negatives set to zero (Springenberg et al.
  2015): ``R_in = max(0, f'(x) * R_out)``. For ReLU6 (ReLU clipped at 6) the gradient passes
  where 0 < x < 6; Hardswish, SiLU, GELU and Mish use their own derivative.
- deconvnet: the incoming gradient with negatives set to zero, whatever the forward pass did:
  ``R_in = max(0, R_out)``, the same for every activation.

Activations called as functions (``F.relu`` in DenseNet's last step) are not modules and keep
their ordinary gradient; gates (the Sigmoid/Hardsigmoid of squeeze-and-excitation blocks) are
not activations of the feature path and are left alone.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from cvtasks.errors import UsageError

WRAPPED = (nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU, nn.Mish, nn.LeakyReLU, nn.ELU)


class Guided(nn.ReLU):
    """An activation that Captum's ReLU rule applies to (the forward is the wrapped module's)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__(inplace=False)
        if hasattr(inner, "inplace"):
            inner.inplace = False  # type: ignore[assignment]  # hooks need the input intact
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)

    def extra_repr(self) -> str:
        return f"guided {type(self.inner).__name__}"


def guided_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose activations all follow the deconvnet/guided-backprop rule."""
    clone = copy.deepcopy(model)
    found = 0
    for parent in list(clone.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.ReLU:
                child.inplace = False
                found += 1
            elif isinstance(child, WRAPPED):
                setattr(parent, name, Guided(child))
                found += 1
    if not found:
        kinds = sorted({type(m).__name__ for m in clone.modules() if _looks_like_activation(m)})
        raise UsageError(
            "deconvnet and guided backprop change activation gradients, but this model has no "
            f"activation module they know ({', '.join(kinds) or 'none found'}); saliency, "
            "smoothgrad, integrated-gradients, gradcam and occlusion work on any model"
        )
    return clone


def _looks_like_activation(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn.modules.activation")
