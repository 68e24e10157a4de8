"""MTCNN (Zhang et al. 2016, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks"): a proposal net over an image pyramid, a refinement net and an output
net that also places five landmarks.

Written here in torch for the widely used facenet-pytorch weight files (``pnet.pt``,
``rnet.pt``, ``onet.pt``, MIT licence; converted from the authors' Caffe models by way of
davidsandberg/facenet). The cascade keeps that implementation's conventions (pixel boxes with
one-based padding, area resampling, the final "Min" NMS) so that, on the same weights, it finds
the same faces at the same places.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, nms

CELL, STRIDE = 12, 2  # P-Net sees 12x12 windows, 2 px apart on its input


class PNet(nn.Module):
    """Proposal net: fully convolutional, a face score and a box offset per 12x12 window."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement net on 24x24 crops: a face score and a box offset."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # the weights come from a (width, height, channel)-ordered framework
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48x48 crops: a face score, a box offset and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2 = nn.Linear(256, 2), nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


@dataclass(frozen=True)
class Settings:
    """The cascade's knobs: the smallest face (px), a score threshold per net, pyramid step."""

    min_size: float = 20.0
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709


@dataclass
class Detections:
    """One image's faces: boxes (N, 4) x1 y1 x2 y2, scores (N,), landmarks (N, 5, 2) — left
    eye, right eye, nose, left and right mouth corner, in the image's pixels."""

    boxes: torch.Tensor
    scores: torch.Tensor
    landmarks: torch.Tensor

    def rows(self) -> list[tuple[list[float], float, list[list[float]]]]:
        """Per face: box, score and landmarks as Python numbers (full precision)."""
        return list(
            zip(self.boxes.tolist(), self.scores.tolist(), self.landmarks.tolist(), strict=True)
        )


def round2(values: list[float]) -> list[float]:
    """Coordinates as records keep them: 1/100 pixel."""
    return [round(float(v), 2) for v in values]


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


def pyramid(height: int, width: int, settings: Settings) -> list[float]:
    """The scales at which P-Net's 12-px window covers faces from ``min_size`` up."""
    first = CELL / settings.min_size
    scales, side = [], min(height, width) * first
    scale = first
    while side >= CELL:
        scales.append(scale)
        scale *= settings.factor
        side *= settings.factor
    return scales


def _proposals(image: torch.Tensor, pnet: PNet, settings: Settings) -> torch.Tensor:
    """P-Net over the pyramid: rows of x1 y1 x2 y2 score dx1 dy1 dx2 dy2 (input pixels)."""
    _, _, height, width = image.shape
    found = []
    for scale in pyramid(height, width, settings):
        size = (int(height * scale + 1), int(width * scale + 1))
        offsets, probs = pnet(_normalise(F.interpolate(image, size=size, mode="area")))
        face = probs[0, 1]
        rows, cols = torch.nonzero(face >= settings.thresholds[0], as_tuple=True)
        if rows.numel() == 0:
            continue
        corner = torch.stack([cols, rows], dim=1).to(image.dtype)
        top_left = ((STRIDE * corner + 1) / scale).floor()
        bottom_right = ((STRIDE * corner + CELL) / scale).floor()
        candidates = torch.cat(
            [top_left, bottom_right, face[rows, cols, None], offsets[0][:, rows, cols].T], dim=1
        )
        found.append(candidates[nms(candidates[:, :4], candidates[:, 4], 0.5)])
    if not found:
        return image.new_zeros((0, 9))
    boxes = torch.cat(found)
    boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
    extent = boxes[:, 2:4] - boxes[:, 0:2]
    corrected = boxes[:, 0:4] + boxes[:, 5:9] * extent.repeat(1, 2)
    return torch.cat([_square(corrected), boxes[:, 4:5]], dim=1)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box made square (its longer side) about its centre."""
    size = boxes[:, 2:4] - boxes[:, 0:2]
    side = size.max(dim=1).values
    top_left = boxes[:, 0:2] + size * 0.5 - side[:, None] * 0.5
    return torch.cat([top_left, top_left + side[:, None]], dim=1)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Apply a net's box offsets (fractions of the box's inclusive size)."""
    size = boxes[:, 2:4] - boxes[:, 0:2] + 1
    return boxes[:, 0:4] + offsets * size.repeat(1, 2)


def _crops(
    image: torch.Tensor, boxes: torch.Tensor, side: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each box's pixels (clipped to the image, one-based as in the reference) resized to
    ``side`` x ``side``; also which boxes had any pixels."""
    _, _, height, width = image.shape
    whole = boxes[:, 0:4].trunc().int().tolist()
    crops, kept = [], []
    for k, (x1, y1, x2, y2) in enumerate(whole):
        x1, y1, x2, y2 = max(x1, 1), max(y1, 1), min(x2, width), min(y2, height)
        if y2 > y1 - 1 and x2 > x1 - 1:
            patch = image[:, :, y1 - 1 : y2, x1 - 1 : x2]
            crops.append(F.interpolate(patch, size=(side, side), mode="area"))
            kept.append(k)
    if not crops:
        return image.new_zeros((0, 3, side, side)), torch.zeros(0, dtype=torch.long)
    return _normalise(torch.cat(crops)), torch.tensor(kept, dtype=torch.long)


def nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS whose overlap is the intersection over the *smaller* box (inclusive pixel
    areas): MTCNN's last step, which drops a box nested in a better one."""
    order = scores.argsort(descending=True, stable=True).tolist()
    area = ((boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)).tolist()
    coords = boxes.tolist()
    keep: list[int] = []
    while order:
        best, order = order[0], order[1:]
        keep.append(best)
        bx1, by1, bx2, by2 = coords[best]
        rest = []
        for other in order:
            ox1, oy1, ox2, oy2 = coords[other]
            w = max(0.0, min(bx2, ox2) - max(bx1, ox1) + 1)
            h = max(0.0, min(by2, oy2) - max(by1, oy1) + 1)
            if w * h / min(area[best], area[other]) <= threshold:
                rest.append(other)
        order = rest
    return torch.tensor(keep, dtype=torch.long)


@torch.inference_mode()
def detect(
    image: torch.Tensor, nets: tuple[PNet, RNet, ONet], settings: Settings = Settings()
) -> Detections:
    """The faces in one image: ``image`` is (H, W, 3) RGB, uint8 or float in 0..255."""
    pnet, rnet, onet = nets
    dtype = next(pnet.parameters()).dtype
    batch = image.permute(2, 0, 1)[None].to(dtype)
    empty = Detections(batch.new_zeros((0, 4)), batch.new_zeros(0), batch.new_zeros((0, 5, 2)))
    boxes = _proposals(batch, pnet, settings)
    if len(boxes) == 0:
        return empty
    crops, kept = _crops(batch, boxes, 24)
    boxes = boxes[kept]
    offsets, probs = rnet(crops)
    passed = probs[:, 1] > settings.thresholds[1]
    boxes = torch.cat([boxes[passed, :4], probs[passed, 1:2]], dim=1)
    offsets = offsets[passed]
    keep = batched_nms(boxes[:, :4], boxes[:, 4], torch.zeros(len(boxes)), 0.7)
    boxes = torch.cat([_square(_regress(boxes[keep], offsets[keep])), boxes[keep, 4:5]], dim=1)
    if len(boxes) == 0:
        return empty
    crops, kept = _crops(batch, boxes, 48)
    boxes = boxes[kept]
    offsets, marks, probs = onet(crops)
    passed = probs[:, 1] > settings.thresholds[2]
    boxes, offsets, marks, scores = boxes[passed], offsets[passed], marks[passed], probs[passed, 1]
    size = boxes[:, 2:4] - boxes[:, 0:2] + 1
    landmarks = torch.stack(
        [
            size[:, None, 0] * marks[:, 0:5] + boxes[:, None, 0] - 1,
            size[:, None, 1] * marks[:, 5:10] + boxes[:, None, 1] - 1,
        ],
        dim=2,
    )
    final = _regress(boxes, offsets)
    keep = nms_min(final, scores, 0.7)
    if len(keep) == 0:
        return empty
    return Detections(final[keep], scores[keep], landmarks[keep])
