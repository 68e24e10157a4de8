"""`cvtasks export` of a segmenter: a semantic model's per-pixel logits for a batch of any size
(normalised images at the model's resize), or an instance model (Mask R-CNN) as detect exports
it; and the runtime model `segment --backend` runs."""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from cvtasks.export.config import ExportConfig
from cvtasks.export.metadata import weights_metadata
from cvtasks.export.plan import ExportPlan, max_difference
from cvtasks.tasks.base import class_names
from cvtasks.weights import resolve_weights


class Logits(nn.Module):
    """A torchvision segmenter's ``out`` logits (B x classes x H x W) as one tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(images)["out"]
        return out


def export_plan(cfg: ExportConfig, images: list[Image.Image]) -> ExportPlan:
    from cvtasks.segment.predictor import build_semantic, instance_models, semantic_models
    from cvtasks.weights import check_model_name

    if cfg.model in instance_models():
        from cvtasks.detect.export import export_plan as detector_plan

        return detector_plan(cfg, images)
    check_model_name(cfg.model, semantic_models() + instance_models(), "segment")
    resolved = resolve_weights(cfg.model, cfg.weights, cfg.release)
    labels = class_names(resolved, cfg.labels)
    model = build_semantic(cfg.model, resolved, len(labels))
    transforms = resolved.transforms()
    tensors = [transforms(image) for image in images]
    shape = tensors[0].shape
    same = [t for t in tensors if t.shape == shape]  # a batch needs one size
    checks: list[tuple[torch.Tensor, ...]] = [(t[None],) for t in tensors]
    if len(same) > 1:
        checks.append((torch.stack(same),))
    metadata = {
        "task": "segment",
        "model": cfg.model,
        **weights_metadata(resolved, labels),
        "input": {"name": "images", "shape": ["batch", 3, "height", "width"]},
        "outputs": ["logits"],
    }
    return ExportPlan(
        module=Logits(model).eval(),
        example=(torch.stack((same * 2)[:2]),),  # two: a batch of 1 would be fixed at 1
        input_names=["images"],
        output_names=["logits"],
        dynamic={name: {0: "batch", 2: "height", 3: "width"} for name in ("images", "logits")},
        checks=checks,
        compare=max_difference,
        metadata=metadata,
        int8_outputs=lambda outputs: outputs[0].argmax(dim=1).numpy(),
    )
