"""Options of `cvtasks segment`. No torch here: the CLI builds its options from this class."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import MODEL_HELP, option
from cvtasks.detect.config import DetectConfig


@dataclass
class SegmentConfig(DetectConfig):
    """Options of `cvtasks segment`: semantic (deeplabv3/fcn/lraspp) or instance (maskrcnn)."""

    model: str = option(
        "deeplabv3_resnet50",
        MODEL_HELP + " Semantic: deeplabv3_*, fcn_*, lraspp_*; instance: maskrcnn_*.",
        flag="-m",
        panel="Model",
    )
    alpha: float = option(
        0.5,
        "Opacity of the mask overlay in annotated images.",
        minimum=0.0,
        maximum=1.0,
        affects_results=False,
        panel="Output",
    )
    mask_threshold: float = option(
        0.5,
        "Instance models: mask probability above which a pixel belongs to the object.",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    mask_format: str = option(
        "rle",
        "Instance models: masks in records as COCO 'rle' (compressed) or 'polygon'.",
        choices=("rle", "polygon"),
        panel="Task",
    )
