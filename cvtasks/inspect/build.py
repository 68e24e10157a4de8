"""Building torchvision models for inspection: meta parameters, the pretrained architecture."""

from __future__ import annotations

from typing import Any

import torch
import torchvision
from torch import nn
from torchvision.models import get_model

from cvtasks.config import suggest
from cvtasks.errors import UsageError
from cvtasks.inspect.table import meta_parameters
from cvtasks.weights import ResolvedWeights, load_state_dict, resolve_weights


def inspectable_models() -> list[str]:
    """Classifiers and semantic segmentation models (both take one image tensor)."""
    return list(torchvision.models.list_models(module=torchvision.models)) + list(
        torchvision.models.list_models(module=torchvision.models.segmentation)
    )


def default_input_size(resolved: ResolvedWeights) -> int:
    """The side the weights' preprocessing produces (crop size, or resize size)."""
    transforms = resolved.transforms()
    for attr in ("crop_size", "resize_size"):
        value = getattr(transforms, attr, None)
        if value:
            return int(value[0])
    return 224


def _head_classes(state: dict[str, torch.Tensor]) -> int | None:
    """Number of classes of a classifier state dict: rows of its last 2-D weight."""
    matrices = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    return int(matrices[-1].shape[0]) if matrices else None


def build_for_inspection(
    name: str, weights_file: str | None = None
) -> tuple[nn.Module, ResolvedWeights]:
    """The model as its DEFAULT pretrained weights define it (or as a weights file does),
    with parameters on the meta device."""
    names = inspectable_models()
    if name not in names:
        raise UsageError(
            f"cannot inspect '{name}'"
            + suggest(name, names)
            + ": inspect takes image classifiers and semantic segmentation models"
        )
    resolved = resolve_weights(name, weights_file or "DEFAULT")
    num_classes = len(resolved.categories)
    state = None
    if weights_file and resolved.path is not None:  # a file, or a run folder's best weights
        state = load_state_dict(resolved.path)
        num_classes = _head_classes(state) or num_classes
    kwargs: dict[str, Any]
    if name in torchvision.models.list_models(module=torchvision.models.segmentation):
        kwargs = {"weights_backbone": None, "num_classes": num_classes}
        if not name.startswith("lraspp"):
            kwargs["aux_loss"] = state is None or any(
                k.startswith("aux_classifier.") for k in state
            )
    else:
        from cvtasks.classify.predictor import architecture_kwargs

        kwargs = {"num_classes": num_classes, **architecture_kwargs(name, resolved, state)}
        if name == "googlenet" and state is None:
            kwargs["aux_logits"] = False  # torchvision drops GoogLeNet's aux heads after loading
    with meta_parameters():
        model = get_model(name, weights=None, **kwargs)
    if state is not None:
        from cvtasks.weights import load_into

        load_into(model, state, str(weights_file), check_only=True)  # meta tensors hold no data
    return model.eval(), resolved
