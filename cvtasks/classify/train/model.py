"""The model to train: a torchvision classifier with its starting weights, a head for your
classes, and the parts that stay frozen."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cvtasks.classify.predictor import build_classifier, classification_models
from cvtasks.errors import UsageError
from cvtasks.weights import ResolvedWeights, check_model_name, load_state_dict

_NATIVE_SIZE = ("vit_", "maxvit_", "swin_")  # their position embeddings fix the input size


@dataclass
class TrainingModel:
    model: nn.Module
    weights: ResolvedWeights
    head: str  # the module replaced (or kept) for the classes
    frozen: list[str]  # modules whose parameters do not train


def _head_size(resolved: ResolvedWeights) -> int:
    """Outputs of the starting weights' classifier head."""
    if resolved.kind == "file" and resolved.path is not None:
        matrices = [v for k, v in load_state_dict(resolved.path).items() if v.dim() >= 2]
        if matrices:
            return int(matrices[-1].shape[0])
    return len(resolved.categories)


def find_head(model: nn.Module, outputs: int) -> str:
    """The last Linear (or 1x1 Conv2d, SqueezeNet) giving ``outputs`` values: the head."""
    found = [
        name
        for name, module in model.named_modules()
        if (isinstance(module, nn.Linear) and module.out_features == outputs)
        or (isinstance(module, nn.Conv2d) and module.out_channels == outputs)
    ]
    if not found:
        raise UsageError(f"cannot find the classifier head ({outputs} outputs) of this model")
    return found[-1]


def _replace(model: nn.Module, name: str, classes: int) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, classes, old.kernel_size, old.stride, old.padding)
    setattr(parent, child, new)


def _drop_aux_heads(model: nn.Module) -> None:
    """GoogLeNet/Inception train with auxiliary heads only in their papers' recipes: here the
    main head alone is trained, so they go (and the saved weights have none)."""
    if hasattr(model, "aux_logits"):
        setattr(model, "aux_logits", False)  # noqa: B010 - a plain attribute, not a module
        for name in ("aux1", "aux2", "AuxLogits"):
            if hasattr(model, name):
                setattr(model, name, None)


def stages(model: nn.Module, head: str) -> list[str]:
    """The model's stages in order, for ``--freeze N``: the blocks of ``features`` for
    VGG/MobileNet/EfficientNet/ConvNeXt/DenseNet, else its top-level children with weights."""
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        return [
            f"features.{name}"
            for name, m in features.named_children()
            if any(True for _ in m.parameters())
        ]
    top = head.split(".")[0]
    return [
        name
        for name, module in model.named_children()
        if name != top and any(True for _ in module.parameters())
    ]


def frozen_prefixes(model: nn.Module, spec: str, head: str) -> list[str]:
    """Names (of parameters or modules) that stay frozen: none, everything but the head, or
    the first N stages."""
    text = spec.strip().lower()
    if text == "none":
        return []
    if text == "backbone":
        return [n for n, _ in model.named_parameters() if not n.startswith(head + ".")]
    if not text.isdigit():
        raise UsageError(f"--freeze takes none, backbone or a number of stages, got {spec!r}")
    available = stages(model, head)
    count = int(text)
    if count > len(available):
        raise UsageError(
            f"--freeze {count}: the model has {len(available)} stages ({', '.join(available)})"
        )
    return available[:count]


def train_mode(model: nn.Module) -> None:
    """Training mode, except BatchNorm layers whose weights are frozen: their statistics stay
    as loaded (a frozen stage behaves as it did when its weights were learned)."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            weight = getattr(module, "weight", None)
            if weight is not None and not weight.requires_grad:
                module.eval()


def build_for_training(
    name: str, resolved: ResolvedWeights, classes: list[str], freeze: str, img_size: int
) -> TrainingModel:
    """Load the starting weights strictly, then give the model a head for ``classes``."""
    check_model_name(name, classification_models(), "train")
    if name.startswith(_NATIVE_SIZE):
        raise UsageError(f"{name} trains at its native input size only; pick a CNN for --img-size")
    start = len(classes) if resolved.kind == "none" else _head_size(resolved)
    model = build_classifier(name, resolved, start, warn_random=False)  # from scratch is fine
    _drop_aux_heads(model)
    head = find_head(model, start)
    same_run_classes = resolved.kind == "run" and list(resolved.labels) == list(classes)
    if resolved.kind != "none" and not same_run_classes:
        _replace(model, head, len(classes))
    frozen = frozen_prefixes(model, freeze, head)
    for parameter_name, parameter in model.named_parameters():
        parameter.requires_grad_(
            not any(parameter_name == f or parameter_name.startswith(f + ".") for f in frozen)
        )
    if not any(p.requires_grad for p in model.parameters()):
        raise UsageError(f"--freeze {freeze} leaves nothing to train")
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(2, 3, img_size, img_size))
    except RuntimeError as exc:
        raise UsageError(
            f"--img-size {img_size} is too small for {name}: {str(exc).splitlines()[0]}"
        ) from None
    return TrainingModel(model, resolved, head, frozen)
