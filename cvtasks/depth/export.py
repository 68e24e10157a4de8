"""`cvtasks export` of a depth model (transformers: Depth Anything, DPT, ...): ``pixel_values``
from its image processor (a batch of any size and shape) to ``predicted_depth``; the processor's
settings travel in the metadata, so `depth --backend` needs no hub or cache."""

from __future__ import annotations

import json

import torch
from PIL import Image
from torch import nn

from cvtasks.export.config import ExportConfig
from cvtasks.export.plan import ExportPlan, max_difference


class Depth(nn.Module):
    """A transformers depth model as a graph: pixel values -> predicted depth (B x H x W)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        depth: torch.Tensor = self.model(pixel_values=pixel_values).predicted_depth
        return depth


def export_plan(cfg: ExportConfig, images: list[Image.Image]) -> ExportPlan:
    from cvtasks.depth.models import depth_kind, load_depth_model

    random_init = cfg.weights.strip().lower() == "none"
    model, processor, source = load_depth_model(cfg.model, random_init)
    tensors = [processor(images=image, return_tensors="pt")["pixel_values"][0] for image in images]
    shape = tensors[0].shape
    same = [t for t in tensors if t.shape == shape]
    checks: list[tuple[torch.Tensor, ...]] = [(t[None],) for t in tensors]
    if len(same) > 1:
        checks.append((torch.stack(same),))
    metadata = {
        "task": "depth",
        "model": cfg.model,
        "weights": "none (random init)" if random_init else source,
        "categories": [],
        "depth_kind": depth_kind(model.config),
        "processor_class": type(processor).__name__,
        "processor": json.loads(processor.to_json_string()),
        "input": {"name": "pixel_values", "shape": ["batch", 3, "height", "width"]},
        "outputs": ["predicted_depth"],
    }
    return ExportPlan(
        module=Depth(model).eval(),
        example=(torch.stack((same * 2)[:2]),),  # two: a batch of 1 would be fixed at 1
        input_names=["pixel_values"],
        output_names=["predicted_depth"],
        dynamic={
            "pixel_values": {0: "batch", 2: "height", 3: "width"},
            "predicted_depth": {0: "batch", 1: "height", 2: "width"},
        },
        checks=checks,
        compare=max_difference,
        metadata=metadata,
    )
