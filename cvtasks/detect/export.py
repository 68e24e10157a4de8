"""`cvtasks export` of a torchvision detector (boxes; Mask R-CNN's masks; Keypoint R-CNN's
keypoints): one image (3 x H x W, 0-1, any size) in, the model's detections out, with its own
resize and normalisation inside the graph; and the runtime model `detect --backend` runs.

torchvision's detectors take a list of differently sized images and their NMS is
data-dependent, so the graph takes one image (a batch runs image by image) and ONNX is captured
by TorchScript tracing; TorchScript files are scripted; torch.export (.pt2) cannot hold them."""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image
from torch import nn

from cvtasks.errors import UsageError
from cvtasks.export.config import ExportConfig
from cvtasks.export.metadata import weights_metadata
from cvtasks.export.plan import ExportPlan
from cvtasks.tasks.base import class_names
from cvtasks.weights import resolve_weights

BOXES = ["boxes", "labels", "scores"]


def outputs_of(model: str) -> list[str]:
    """The detection fields the model returns, in its own order."""
    if model.startswith("maskrcnn_"):
        return [*BOXES, "masks"]
    if model.startswith("keypointrcnn_"):
        return [*BOXES, "keypoints", "keypoints_scores"]
    return list(BOXES)


class OneImage(nn.Module):
    """A detector as a graph of one image: its detections' fields as a list of tensors."""

    def __init__(self, model: nn.Module, keys: list[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        found = self.model([image])
        if torch.jit.is_scripting():  # noqa: SIM108  # TorchScript compiles this branch only
            detections = found[1]  # scripted R-CNNs return (losses, detections)
        else:
            detections = found
        first = detections[0]
        return [first[key] for key in self.keys]


def export_plan(cfg: ExportConfig, images: list[Image.Image]) -> ExportPlan:
    import torchvision

    from cvtasks.detect.predictor import build_detector
    from cvtasks.weights import check_model_name

    every = torchvision.models.list_models(module=torchvision.models.detection)
    check_model_name(cfg.model, every, "detect")
    resolved = resolve_weights(cfg.model, cfg.weights, cfg.release)
    labels = class_names(resolved, cfg.labels)
    model = build_detector(cfg.model, resolved, len(labels))
    transform: Any = model.transform
    if cfg.min_size is not None:
        if getattr(transform, "fixed_size", None) is not None:
            raise UsageError(
                f"--min-size does not apply to {cfg.model} (it has a fixed input size)"
            )
        scale = cfg.min_size / transform.min_size[0]
        transform.min_size = (cfg.min_size,)
        transform.max_size = round(transform.max_size * scale)
    keys = outputs_of(cfg.model)
    transforms = resolved.transforms()
    tensors = [transforms(image) for image in images]
    heads = getattr(model, "roi_heads", None)
    owner = heads if heads is not None else model
    task = "pose" if "keypoints" in keys else "segment" if "masks" in keys else "detect"
    metadata = {
        "task": task,
        "model": cfg.model,
        **weights_metadata(resolved, labels),
        "input": {"name": "image", "shape": [3, "height", "width"], "batch": "one image"},
        "outputs": keys,
        "score_thresh": float(getattr(owner, "score_thresh", 0.0)),
        "min_size": int(transform.fixed_size[0] if transform.fixed_size else transform.min_size[0]),
        "detections_per_img": int(getattr(owner, "detections_per_img", 0)),
    }
    if "keypoints" in keys:
        metadata["keypoint_names"] = list(resolved.member.meta.get("keypoint_names", []))
    return ExportPlan(
        module=OneImage(model, keys).eval(),
        example=(tensors[0],),
        input_names=["image"],
        output_names=keys,
        dynamic={"image": {1: "height", 2: "width"}, **{k: {0: "detections"} for k in keys}},
        checks=[(t,) for t in tensors],
        compare=compare_detections,
        metadata=metadata,
        graph="legacy",
        script=True,
    )


def compare_detections(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    """The largest difference in boxes (pixels), scores, masks or keypoints between the
    detections of one image, each of PyTorch's matched to the nearest box of its class in the
    export's (detections of equal score may come in either order); a different count of
    detections, or a detection with no box of its class, is infinitely different."""
    if len(ours) != len(theirs) or ours[0].shape != theirs[0].shape:
        return float("inf")
    boxes, other = ours[0].float(), theirs[0].float()
    labels, other_labels = ours[1].long(), theirs[1].long()
    free = torch.ones(len(other), dtype=torch.bool)
    worst = 0.0
    for i in range(len(boxes)):
        distance = (other - boxes[i]).abs().amax(dim=1)
        distance[~free | (other_labels != labels[i])] = float("inf")
        if not len(distance) or not torch.isfinite(distance.min()):
            return float("inf")
        j = int(distance.argmin())
        free[j] = False
        for field, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            if field != 1 and a[i].numel():
                worst = max(worst, float((a[i].float() - b[j].float()).abs().max()))
    return worst
