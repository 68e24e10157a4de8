"""Options of `cvtasks detect` (pose and instance segmentation inherit them). No torch here: the
CLI builds its options from this class."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import MODEL_HELP, InferenceConfig, option
from cvtasks.export.config import backend_option

_FORMAT_HELP = (
    "What goes to stdout: table, jsonl, json, csv, or coco (COCO results JSON with the images "
    "list) (default: table on a terminal, else jsonl)."
)


@dataclass
class DetectConfig(InferenceConfig):
    """Options of `cvtasks detect` (also inherited by pose and instance segmentation)."""

    model: str = option("fasterrcnn_resnet50_fpn_v2", MODEL_HELP, flag="-m", panel="Model")
    backend: str = backend_option()
    format: str | None = option(
        None,
        _FORMAT_HELP,
        flag="-f",
        choices=("table", "jsonl", "json", "csv", "coco"),
        affects_results=False,
        panel="Output",
    )
    batch_size: int = option(
        4, "Images per forward pass.", flag="-b", minimum=1, maximum=4096, affects_results=False
    )
    conf: float = option(0.5, "Minimum detection score.", minimum=0.0, maximum=1.0, panel="Task")
    iou: float | None = option(
        None,
        "Extra non-maximum suppression at this IoU, per class (the model already runs its own); "
        "off by default.",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    agnostic_nms: bool = option(
        False, "Make the extra NMS class-agnostic (IoU --iou, 0.5 if unset).", panel="Task"
    )
    classes: list[str] = option(
        [],
        "Keep only these classes: names or indices, comma-separated (e.g. person,car).",
        panel="Task",
    )
    max_det: int = option(
        100,
        "At most this many detections per image, highest scores first.",
        minimum=1,
        maximum=10_000,
        panel="Task",
    )
    min_size: int | None = option(
        None,
        "Resize the shorter image side to this inside the model (default: the model's own, 800 "
        "for R-CNNs); smaller is faster, less accurate. Not for SSD models.",
        minimum=32,
        maximum=4096,
        panel="Model",
    )
    save_txt: bool = option(
        False,
        "Also write YOLO-style label files under --out/labels: 'index cx cy w h score', "
        "normalised to 0-1.",
        affects_results=False,
        panel="Output",
    )
