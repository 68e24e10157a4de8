"""Finding layers by name, and the default Grad-CAM layer of each architecture family."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from cvtasks.config import suggest
from cvtasks.errors import UsageError

# The last convolutional stage of each family (the lecture's "last conv layer").
_DEFAULT_LAYERS: list[tuple[tuple[str, ...], str]] = [
    (("resnet", "resnext", "wide_resnet"), "layer4"),
    (("regnet_",), "trunk_output"),
    (("densenet",), "features"),
    (("googlenet",), "inception5b"),
    (("inception_v3",), "Mixed_7c"),
    (("shufflenet",), "conv5"),
]
_LAST_FEATURE_BLOCK = ("mobilenet", "efficientnet", "mnasnet", "convnext", "squeezenet")
_LAST_CONV_IN_FEATURES = ("vgg", "alexnet")


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (as in ``model.named_modules()``), or a usage error."""
    modules = dict(model.named_modules())
    if name not in modules:
        raise UsageError(f"no layer '{name}' in this model" + suggest(name, list(modules)))
    return modules[name]


def spatial_layers(model: nn.Module, size: int = 224) -> list[str]:
    """Names of modules whose output is an N x C x H x W map with H, W > 1 (probe forward)."""
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, module in model.named_modules():
        if name:
            hooks.append(
                module.register_forward_hook(
                    lambda m, i, o, name=name: (
                        shapes.__setitem__(name, tuple(o.shape))
                        if isinstance(o, torch.Tensor)
                        else None
                    )
                )
            )
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return [n for n, s in shapes.items() if len(s) == 4 and s[2] > 1 and s[3] > 1 and s[1] > 3]


def default_layer(model_name: str, model: nn.Module) -> str:
    """The last convolutional stage for known CNN families; a clear error otherwise."""
    for prefixes, layer in _DEFAULT_LAYERS:
        if model_name.startswith(prefixes):
            return layer
    if model_name.startswith("vit_"):  # the last encoder block's first LayerNorm (tokens)
        blocks = [n for n, _ in model.named_modules() if n.startswith("encoder.layers.encoder_")]
        top = [n for n in blocks if n.count(".") == 2]
        if top:
            return f"{top[-1]}.ln_1"
    attr = "layers" if model_name.startswith("mnasnet") else "features"
    features = getattr(model, attr, None)
    if model_name.startswith(_LAST_FEATURE_BLOCK) and isinstance(features, nn.Sequential):
        return f"{attr}.{len(features) - 1}"
    if model_name.startswith(_LAST_CONV_IN_FEATURES) and isinstance(features, nn.Sequential):
        convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
        return f"features.{convs[-1]}"
    candidates = spatial_layers(model)
    raise UsageError(
        f"no default Grad-CAM layer for {model_name} (its late features are not a C x H x W "
        "convolutional map); pass --layer NAME, e.g. one of: "
        + (", ".join(candidates[-6:]) or "none")
    )


@contextlib.contextmanager
def captured(module: nn.Module, use_input: bool = False) -> Iterator[list[torch.Tensor]]:
    """Within the block, every call of ``module`` appends its output (or first input) to the
    yielded list; the hook is removed on exit."""
    store: list[torch.Tensor] = []

    def hook(m: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        store.append(args[0] if use_input else output)

    handle = module.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()
