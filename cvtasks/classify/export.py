"""`cvtasks export` of a classifier (or a `cvtasks train` run folder): logits of a batch of any
size; and the runtime model that `classify --backend` runs in its place."""

from __future__ import annotations

import torch
from PIL import Image

from cvtasks.classify.predictor import build_classifier, classification_models
from cvtasks.export.config import ExportConfig
from cvtasks.export.metadata import weights_metadata
from cvtasks.export.plan import ExportPlan, max_difference
from cvtasks.tasks.base import class_names
from cvtasks.weights import check_model_name, resolve_weights


def export_plan(cfg: ExportConfig, images: list[Image.Image]) -> ExportPlan:
    """The classifier, checked on its preprocessed ``images`` in batches of 1 and of the rest."""
    check_model_name(cfg.model, classification_models(), "classify")
    resolved = resolve_weights(cfg.model, cfg.weights, cfg.release)
    labels = class_names(resolved, cfg.labels)
    model = build_classifier(cfg.model, resolved, len(labels))
    transforms = resolved.transforms()
    batch = torch.stack([transforms(image) for image in images])
    side = int(batch.shape[-1])
    checks: list[tuple[torch.Tensor, ...]] = [(batch[:1],), (batch[1:],)]
    if len(batch) == 1:
        checks = [(batch,)]
    metadata = {
        "task": "classify",
        "model": cfg.model,
        **weights_metadata(resolved, labels),
        "input": {"name": "images", "shape": ["batch", 3, side, side]},
        "outputs": ["logits"],
    }
    return ExportPlan(
        module=model,
        example=(torch.cat([batch, batch])[:2],),  # two: a batch of 1 would be fixed at 1
        input_names=["images"],
        output_names=["logits"],
        dynamic={"images": {0: "batch"}, "logits": {0: "batch"}},
        checks=checks,
        compare=max_difference,
        metadata=metadata,
        int8_outputs=lambda outputs: outputs[0].argmax(dim=1).numpy(),
    )
