"""What a detector's detection, or a segmenter's class region, depends on: the scores explained.

- **A detection** (Faster/Mask/Keypoint R-CNN, RetinaNet, FCOS, SSD): its class score. Under a
  perturbation (occlusion, noise, an integration path) the same object is found again as D-RISE
  does (Petsiuk et al. 2021): the detection of the same class that maximises IoU x score. The
  model reports one class per box, so D-RISE's cosine similarity of class vectors is 1 for the
  same class and 0 otherwise. On the unperturbed image that is the detection itself (IoU 1).
- **A class's region** (DeepLabV3, FCN, LR-ASPP): the sum of the class's logit over the pixels
  predicted as that class on the unperturbed image (the region stays fixed), as Seg-Grad-CAM
  (Vinogradova et al. 2020) and pytorch-grad-cam's ``SemanticSegmentationTarget`` do.

Both are wrapped as modules mapping a batch of model inputs to one score per target (B x T), so
every attribution method (Captum's, occlusion, Grad-CAM) runs on them as on a classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torchvision.ops import box_iou

from cvtasks.errors import UsageError

HIDDEN = {"N/A", "__background__", "background", "no person"}  # torchvision's placeholders
EXPLAIN_SCORE_THRESH = 0.01  # detections kept while explaining: a weakened object still counts
EXPLAIN_MAX_DETECTIONS = 300


def detector_models() -> list[str]:
    """Every torchvision detector: box, instance-mask and keypoint models (their boxes)."""
    return list(torchvision.models.list_models(module=torchvision.models.detection))


def semantic_models() -> list[str]:
    return list(torchvision.models.list_models(module=torchvision.models.segmentation))


def explainable_models() -> list[str]:
    """What `cvtasks explain` accepts: classifiers, detectors and semantic segmenters."""
    from cvtasks.classify.predictor import classification_models

    return classification_models() + detector_models() + semantic_models()


@dataclass
class ObjectTarget:
    """One thing to explain: a detection (``box``, model-input pixels) or a class's predicted
    region (``mask``, model-input resolution), with its record fields."""

    label: str
    index: int
    score: float
    box: list[float] | None = None
    mask: np.ndarray | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def relax_detector(model: nn.Module) -> None:
    """Keep weak detections (score >= 0.01, up to 300) so that a perturbed object is still found
    with its lowered score, and skip mask and keypoint heads (only box scores are explained).
    The detections above a higher threshold are unchanged: NMS is greedy by score, so boxes
    below that threshold cannot suppress boxes above it."""
    heads = getattr(model, "roi_heads", None)
    owner: Any = heads if heads is not None else model
    if hasattr(owner, "score_thresh"):
        owner.score_thresh = min(float(owner.score_thresh), EXPLAIN_SCORE_THRESH)
    if hasattr(owner, "detections_per_img"):
        owner.detections_per_img = max(int(owner.detections_per_img), EXPLAIN_MAX_DETECTIONS)
    if heads is not None:
        heads.mask_roi_pool = None
        heads.keypoint_roi_pool = None


def matched_scores(output: dict[str, torch.Tensor], boxes: torch.Tensor, labels: torch.Tensor
                   ) -> torch.Tensor:  # fmt: skip
    """Each target's score in one image's detections (T,): the identical box when present (the
    unperturbed image), else D-RISE's best IoU x score among detections of its class (0 if
    none); the IoU weights the score but carries no gradient."""
    scores = output["scores"]
    if scores.numel() == 0:
        return scores.sum() * 0 + torch.zeros(len(labels), device=boxes.device)
    iou = box_iou(boxes, output["boxes"].detach()).detach()
    same = labels[:, None] == output["labels"][None, :]
    weighted = torch.where(same, iou * scores[None, :], torch.zeros_like(iou))
    exact = same & (iou >= 1.0 - 1e-6)
    best = weighted.max(dim=1).values
    exact_score = torch.where(exact, scores[None, :].expand_as(iou), torch.zeros_like(iou))
    return torch.where(exact.any(dim=1), exact_score.max(dim=1).values, best)


class DetectionScores(nn.Module):
    """Images (B x 3 x H x W, 0-1) -> each target detection's matched score (B x T). Records the
    geometry of the detector's internal resize and padding, which Grad-CAM maps back."""

    def __init__(self, detector: nn.Module, boxes: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__()
        self.detector = detector
        self.boxes, self.labels = boxes, labels
        self.geometry: tuple[tuple[int, int], tuple[int, int]] | None = None

    def _keep_geometry(self, _module: nn.Module, _args: Any, output: Any) -> None:
        images = output[0]
        self.geometry = (tuple(images.image_sizes[0]), tuple(images.tensors.shape[-2:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        transform: nn.Module = getattr(self.detector, "transform")  # noqa: B009
        handle = transform.register_forward_hook(self._keep_geometry)
        try:
            outputs = self.detector(list(x.unbind(0)))
        finally:
            handle.remove()
        return torch.stack([matched_scores(o, self.boxes, self.labels) for o in outputs])


class RegionScores(nn.Module):
    """Inputs (B x 3 x H x W, normalised) -> each target class's logit summed over its fixed
    region (B x T)."""

    def __init__(self, model: nn.Module, classes: torch.Tensor, masks: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.classes, self.masks = classes, masks
        self.geometry = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)["out"]
        return (logits[:, self.classes] * self.masks[None]).sum(dim=(2, 3))


def find_detections(
    detector: nn.Module,
    x: torch.Tensor,
    categories: list[str],
    conf: float,
    wanted: int | None,
    limit: int,
) -> list[ObjectTarget]:
    """The detections of ``x`` (1 x 3 x H x W) scoring at least ``conf``, most confident first;
    ``detection`` numbers them as `cvtasks detect --conf` lists them. Only class ``wanted``
    when given; at most ``limit``."""
    with torch.no_grad():
        out = detector([x[0]])[0]
    order = torch.argsort(out["scores"], descending=True, stable=True).tolist()
    targets = []
    number = 0
    for i in order:
        score, index = float(out["scores"][i]), int(out["labels"][i])
        label = categories[index] if index < len(categories) else str(index)
        if score < conf or label in HIDDEN:
            continue
        number += 1
        if wanted is not None and index != wanted:
            continue
        box = [round(float(v), 2) for v in out["boxes"][i].tolist()]
        targets.append(ObjectTarget(label, index, score, box=box, fields={"detection": number}))
    return targets[:limit]


def find_regions(
    model: nn.Module,
    x: torch.Tensor,
    categories: list[str],
    wanted: int | None,
    limit: int,
    min_fraction: float = 0.005,
) -> list[ObjectTarget]:
    """The classes predicted on ``x`` (background excepted), largest region first: those
    covering at least ``min_fraction`` of the pixels, or class ``wanted`` wherever present.
    Each target's score is its mean probability over its region; ``logit_sum`` is what the
    maps explain."""
    with torch.no_grad():
        logits = model(x)["out"][0]
    best = logits.argmax(dim=0)
    probabilities = logits.float().softmax(dim=0)
    counts = torch.bincount(best.flatten(), minlength=logits.shape[0]).tolist()
    total = best.numel()
    targets = []
    for index in sorted(range(len(counts)), key=lambda i: -counts[i]):
        label = categories[index] if index < len(categories) else str(index)
        fraction = counts[index] / total
        if counts[index] == 0 or index == 0 or label in HIDDEN:
            continue
        if wanted is not None and index != wanted:
            continue
        if wanted is None and fraction < min_fraction:
            continue
        inside = best == index
        probability = float(probabilities[index][inside].mean())
        fields = {
            "fraction": round(fraction, 6),
            "logit_sum": round(float(logits[index][inside].sum()), 4),
        }
        targets.append(
            ObjectTarget(label, index, probability, mask=inside.cpu().numpy(), fields=fields)
        )
    return targets[:limit]


def score_module(model: nn.Module, targets: list[ObjectTarget], semantic: bool) -> nn.Module:
    """The B x T score module of ``targets``, on the model's device."""
    device = next(model.parameters()).device
    if semantic:
        classes = torch.tensor([t.index for t in targets], device=device)
        regions = [t.mask for t in targets if t.mask is not None]
        masks = torch.from_numpy(np.stack(regions)).to(device, torch.float32)
        return RegionScores(model, classes, masks)
    boxes = torch.tensor([t.box for t in targets], device=device, dtype=torch.float32)
    labels = torch.tensor([t.index for t in targets], device=device)
    return DetectionScores(model, boxes, labels)


def default_object_layer(model: nn.Module) -> str:
    """The backbone's last stage: ``backbone.body.<last>`` (R-CNNs, RetinaNet, FCOS),
    ``backbone.<last>`` (DeepLabV3, FCN, LR-ASPP), SSD's ``backbone.features`` (its last block
    for SSDlite, whose feature blocks are called one by one)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise UsageError("this model has no backbone: pass --layer NAME")
    body = getattr(backbone, "body", None)
    if isinstance(body, nn.Module):
        return f"backbone.body.{list(dict(body.named_children()))[-1]}"
    features = getattr(backbone, "features", None)
    if isinstance(features, nn.Module):
        if type(backbone).__name__.startswith("SSDLite"):
            return f"backbone.features.{len(list(features.children())) - 1}"
        return "backbone.features"
    return f"backbone.{list(dict(backbone.named_children()))[-1]}"


def cam_on_input(cam: torch.Tensor, scores: nn.Module, size: tuple[int, int]) -> torch.Tensor:
    """A ``1 x 1 x h x w`` map of a backbone layer on the model input's ``size`` (H, W): a
    detector's layer covers its resized, padded image, whose padding is cut off first."""
    geometry = getattr(scores, "geometry", None)
    if geometry is not None:
        (height, width), padded = geometry
        cam = F.interpolate(cam, size=padded, mode="bilinear", align_corners=False)
        cam = cam[..., :height, :width]
    return F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
