"""Crafted weight files for torchvision's own detector and segmenter architectures whose outputs
depend on known image regions, so that an explanation can be checked against the truth.

Every convolution passes two signal channels through (channel 0: red above the normalisation
mean, channel 1: green), at its centre tap, or as an average over its kernel where it strides
(so that no pixel falls between the taps); BatchNorm is the identity, residual branches are cut,
squeeze-and-excitation gates are constant 1. What a feature sees is then the image within about
one stride-32 cell (32 px, plus the strided averages: < 48 px) of its position, nothing global.

- ``crafted_detector``: fasterrcnn_mobilenet_v3_large_320_fpn, classes 1 'red' and 2 'green'.
  The RPN proposes anchors where either signal is strong; a box's class score is a steep
  logistic of the mean signal of its class inside the box's ROI features. So a detection's
  score depends on the image inside its box, widened by < 48 px, and on nothing else.
- ``crafted_segmenter``: lraspp_mobilenet_v3_large; a pixel's class-1 (class-2) logit grows
  with the red (green) signal around it; the global gate is constant. A class region's summed
  logit depends on the pixels within < 48 px of the region.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models import get_model
from torchvision.models.mobilenetv3 import InvertedResidual
from torchvision.ops.misc import FrozenBatchNorm2d, SqueezeExcitation

SIGNALS = 2
LABELS = ["__background__", "red", "green"]
RED_BOX = (16, 16, 112, 112)  # x1, y1, x2, y2 of the red square in two_squares()
GREEN_BOX = (208, 208, 304, 304)
REACH = 48  # px: how far beyond its box (or region) an output may look, with room to spare
STEM_GAIN = 30.0  # keeps the signal above 3, where Hardswish is the identity


def two_squares(path: Path) -> Path:
    """A 320 x 320 black image with a red and a green square."""
    image = np.zeros((320, 320, 3), np.uint8)
    x1, y1, x2, y2 = RED_BOX
    image[y1:y2, x1:x2, 0] = 255
    x1, y1, x2, y2 = GREEN_BOX
    image[y1:y2, x1:x2, 1] = 255
    Image.fromarray(image).save(path)
    return path


def labels_file(path: Path) -> Path:
    path.write_text("".join(f"{name}\n" for name in LABELS), encoding="utf-8")
    return path


def _localise(model: nn.Module) -> None:
    ends = set()
    for module in model.modules():
        if isinstance(module, InvertedResidual) and module.use_res_connect:
            norms = [m for m in module.block.modules() if isinstance(m, nn.BatchNorm2d)]
            ends.add(id(norms[-1]))
    for module in model.modules():
        if isinstance(module, SqueezeExcitation):
            module.fc1.weight.zero_()
            module.fc1.bias.zero_()
            module.fc2.weight.zero_()
            module.fc2.bias.fill_(3.0)  # hardsigmoid(3) = 1: the gate passes everything
        elif isinstance(module, nn.Conv2d):
            weight = module.weight
            weight.zero_()
            if module.bias is not None:
                module.bias.zero_()
            kh, kw = weight.shape[-2] // 2, weight.shape[-1] // 2
            strided = module.stride[0] > 1
            tap: tuple[object, ...] = (slice(None), slice(None)) if strided else (kh, kw)
            value = 1.0 / (weight.shape[-2] * weight.shape[-1]) if strided else 1.0
            if module.groups == module.in_channels and module.groups > 1:
                weight[(slice(0, SIGNALS), 0, *tap)] = value
            else:
                for c in range(min(SIGNALS, weight.shape[0], weight.shape[1])):
                    weight[(c, c, *tap)] = value
        elif isinstance(module, (nn.BatchNorm2d, FrozenBatchNorm2d)):
            module.weight.fill_(0.0 if id(module) in ends else 1.0)
            module.bias.zero_()
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
        elif isinstance(module, nn.Linear):
            module.weight.zero_()
            module.bias.zero_()


def crafted_detector(path: Path) -> Path:
    """The crafted Faster R-CNN (see the module docstring), saved as a state dict."""
    model = get_model(
        "fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, weights_backbone=None, num_classes=3
    ).eval()
    with torch.no_grad():
        _localise(model)
        model.backbone.body["0"][0].weight.mul_(STEM_GAIN)
        rpn = model.rpn.head
        rpn.cls_logits.weight[:, :SIGNALS] = 2.0
        rpn.cls_logits.bias.fill_(-2.0)
        rpn.bbox_pred.weight.zero_()
        full = torch.zeros(3, 320, 320)
        full[0] = 1.0
        level = model.backbone(model.transform([full])[0].tensors)["0"][0, 0]
        peak = float(level[2:-2, 2:-2].mean())  # channel 0 of a wholly red image
        fc6 = model.roi_heads.box_head.fc6
        for c in range(SIGNALS):
            fc6.weight[c, c * 49 : (c + 1) * 49] = 1.0 / 49  # the ROI's mean of channel c
        model.roi_heads.box_head.fc7.weight[:SIGNALS, :SIGNALS] = torch.eye(SIGNALS)
        score = model.roi_heads.box_predictor.cls_score
        for c in range(SIGNALS):
            score.weight[c + 1, c] = 10.0 / peak  # p = 0.5 where half the ROI is the colour
            score.bias[c + 1] = -5.0
    torch.save(model.state_dict(), path)
    return path


def crafted_segmenter(path: Path) -> Path:
    """The crafted LR-ASPP (see the module docstring), saved as a state dict."""
    model = get_model(
        "lraspp_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=3
    ).eval()
    with torch.no_grad():
        _localise(model)
        model.backbone["0"][0].weight.mul_(STEM_GAIN)
        head = model.classifier
        head.scale[1].weight.zero_()  # the global gate: a constant sigmoid(0) = 0.5
        head.low_classifier.weight.zero_()
        full = torch.zeros(1, 3, 520, 520)
        full[:, 0] = 2.2  # a red image, normalised
        peak = float(model.backbone(full)["high"][0, 0, 4:-4, 4:-4].mean()) * 0.5
        head.high_classifier.weight.zero_()
        for c in range(SIGNALS):
            head.high_classifier.weight[c + 1, c] = 10.0 / peak
            head.high_classifier.bias[c + 1] = -5.0
    torch.save(model.state_dict(), path)
    return path
