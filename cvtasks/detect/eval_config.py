"""Options of `cvtasks eval detect` (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cvtasks.config import MODEL_HELP, option
from cvtasks.detect.config import DetectConfig


@dataclass
class DetectEvalConfig(DetectConfig):
    """Score a detector (or saved predictions) against COCO ground truth."""

    iou_type: ClassVar[str] = "bbox"  # COCOeval's iouType

    gt: str | None = option(
        None,
        "The ground truth: a COCO instances JSON, or a YOLO label folder (STEM.txt per image, "
        "with its names file); images matched to the inputs by file name, categories to the "
        "model's classes by name.",
        panel="Task",
    )
    gt_names: str | None = option(
        None,
        "A YOLO --gt folder's class names: a text file (one per line) or a data.yaml (default: "
        "classes.txt, names.txt, obj.names or data.yaml beside the labels).",
        panel="Task",
    )
    predictions: str | None = option(
        None,
        "Score saved predictions instead of running a model: a COCO results JSON (a list with "
        "the --gt's image and category ids), a `detect -f coco` file, a results.jsonl or an "
        "--out folder.",
        panel="Input",
    )
    class_map: list[str] = option(
        [],
        "model_name=gt_name pairs, comma-separated, for classes named differently in --gt.",
        panel="Task",
    )
    min_score: float = option(
        0.05,
        "Detections kept for AP (torchvision's reference evaluation keeps its models' 0.05): "
        "low, so the precision-recall curves are complete.",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    conf: float = option(
        0.5,
        "The operating score: precision, recall and the confusion matrix count the detections "
        "at least this confident (AP uses all above --min-score).",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    format: str | None = option(
        None,
        "What goes to stdout: table (a readable report) or json (one object) (default: table "
        "on a terminal, else json).",
        flag="-f",
        choices=("table", "json"),
        affects_results=False,
        panel="Output",
    )


@dataclass
class SegmentEvalConfig(DetectEvalConfig):
    """Score instance masks against COCO ground truth (COCOeval's segm)."""

    iou_type: ClassVar[str] = "segm"
    model: str = option("maskrcnn_resnet50_fpn_v2", MODEL_HELP, flag="-m", panel="Model")
    gt_masks: str | None = option(
        None,
        "Semantic models (deeplabv3/fcn/lraspp): a folder of index PNGs, one per image with "
        "the image's file stem, pixel values the model's class indices; gives pixel accuracy, "
        "mean IoU, IoU per class and the confusion, accumulated over the whole set.",
        panel="Task",
    )
    ignore_index: int = option(
        255, "--gt-masks: the value of pixels that are not scored.", minimum=0, panel="Task"
    )


@dataclass
class PoseEvalConfig(DetectEvalConfig):
    """Score keypoints against COCO person keypoints (COCOeval's keypoints, OKS)."""

    iou_type: ClassVar[str] = "keypoints"
    model: str = option("keypointrcnn_resnet50_fpn", MODEL_HELP, flag="-m", panel="Model")
