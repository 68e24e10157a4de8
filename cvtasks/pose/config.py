"""Options of `cvtasks pose`. No torch here: the CLI builds its options from this class."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import MODEL_HELP, option
from cvtasks.detect.config import DetectConfig


@dataclass
class PoseConfig(DetectConfig):
    """Options of `cvtasks pose`."""

    model: str = option("keypointrcnn_resnet50_fpn", MODEL_HELP, flag="-m", panel="Model")
    kpt_conf: float = option(
        0.05,
        "Keypoints scoring below this are not drawn (the keypoint head's heatmap logit, as in "
        "detectron2); records keep all 17.",
        minimum=-1000.0,
        maximum=1000.0,
        affects_results=False,
        panel="Task",
    )
