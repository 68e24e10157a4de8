"""The L2CS-Net model (Abdelrahman et al. 2022): a ResNet whose pooled features feed two
classification heads over angle bins; the angle is the softmax expectation over the bins.

Which head is which follows the public training and test code, not the layer names alone:
``train.py`` trains the first output (layer ``fc_yaw_gaze``) on column 0 of the datasets'
``gaze2d`` label and ``test.py`` scores it through ``gazeto3d`` as the angle that moves the gaze
vector sideways (``x = -cos(v) sin(h)``), so the first head is the horizontal angle: yaw. The
code's variable names call it "pitch"; its geometry treats it as yaw. The second head
(``fc_pitch_gaze``) is the vertical angle: pitch. ``fc_finetune`` is vestigial (unused).

Bins: 90 of 4 degrees from -180 (Gaze360 checkpoints) or 28 of 3 degrees from -42 (MPIIGaze),
told apart by the head size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from cvtasks.errors import WeightsError

BIN_LAYOUTS = {90: (4.0, -180.0), 28: (3.0, -42.0)}  # bins -> (width, start) in degrees
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class L2CSNet(ResNet):
    """torchvision's ResNet with L2CS-Net's heads (and its parameter names)."""

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], bins: int) -> None:
        super().__init__(block, layers, num_classes=1)
        features = 512 * block.expansion
        self.fc = nn.Identity()  # L2CS has no fc layer
        self.fc_yaw_gaze = nn.Linear(features, bins)
        self.fc_pitch_gaze = nn.Linear(features, bins)
        self.fc_finetune = nn.Linear(features + 3, 3)  # vestigial in L2CS-Net, kept for its keys

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.flatten(self.avgpool(self.layer4(self.layer3(self.layer2(self.layer1(
            self.maxpool(self.relu(self.bn1(self.conv1(x))))))))), 1)  # fmt: skip
        return self.fc_yaw_gaze(features), self.fc_pitch_gaze(features)


def architecture_of(
    state: Mapping[str, torch.Tensor],
) -> tuple[type[BasicBlock | Bottleneck], list[int], int]:
    """Block type, blocks per stage and bins of an L2CS checkpoint, from its keys and shapes."""
    if "fc_yaw_gaze.weight" not in state or "fc_pitch_gaze.weight" not in state:
        raise WeightsError(
            "not an L2CS-Net checkpoint: it has no fc_yaw_gaze/fc_pitch_gaze heads "
            "(expected keys conv1, layer1..layer4, fc_yaw_gaze, fc_pitch_gaze, fc_finetune)"
        )
    block: type[BasicBlock | Bottleneck] = (
        Bottleneck if "layer1.0.conv3.weight" in state else BasicBlock
    )
    layers = []
    for stage in range(1, 5):
        indices = {int(m.group(1)) for k in state if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
        if not indices:
            raise WeightsError(f"not an L2CS-Net checkpoint: no layer{stage} blocks")
        layers.append(max(indices) + 1)
    bins = int(state["fc_yaw_gaze.weight"].shape[0])
    if bins not in BIN_LAYOUTS:
        raise WeightsError(
            f"the gaze heads have {bins} bins; L2CS-Net checkpoints have 90 (Gaze360) or 28 "
            "(MPIIGaze)"
        )
    return block, layers, bins


def build_l2cs(state: Mapping[str, torch.Tensor], origin: str) -> tuple[L2CSNet, int]:
    """The model of a checkpoint, its weights loaded strictly."""
    from cvtasks.weights import load_into

    block, layers, bins = architecture_of(state)
    model = L2CSNet(block, layers, bins)
    load_into(model, state, origin)
    return model.eval(), bins


def decode(logits: torch.Tensor, bins: int) -> torch.Tensor:
    """Degrees from bin logits: the softmax expectation of the bin index, scaled."""
    width, start = BIN_LAYOUTS[bins]
    index = torch.arange(bins, dtype=torch.float32, device=logits.device)
    return (logits.float().softmax(dim=1) * index).sum(dim=1) * width + start


def gaze_vector(yaw: float, pitch: float) -> list[float]:
    """L2CS-Net's ``gazeto3d``: camera coordinates (x right, y down, z away from the camera);
    looking straight at the camera is (0, 0, -1); positive pitch looks up, positive yaw
    towards the image's left."""
    h, v = math.radians(yaw), math.radians(pitch)
    return [-math.cos(v) * math.sin(h), -math.sin(v), -math.cos(v) * math.cos(h)]


def face_tensor(image: np.ndarray, box: list[float], size: int = 448) -> torch.Tensor:
    """L2CS-Net's demo preprocessing: the face crop resized to half the input side with
    OpenCV's bilinear resize, then to the input side (torchvision Resize on PIL), ImageNet
    normalisation (224 then 448 by default)."""
    height, width = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(width, int(box[2])), min(height, int(box[3]))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ValueError("the face box is empty inside the image")
    crop = cv2.resize(np.ascontiguousarray(image[y1:y2, x1:x2]), (size // 2, size // 2))
    resized = Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR)
    tensor = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (tensor - mean) / std
