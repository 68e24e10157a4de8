"""The task registry: names, one-line help, config schemas and where each predictor lives.

Kept free of torch so that building the CLI (and ``cvtasks --help``) stays fast; the predictor
module is imported only when a task runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from cvtasks.config import BaseConfig, option
from cvtasks.errors import UsageError

MODEL_HELP = "Model name: a torchvision builder name (see `cvtasks models list`)."


@dataclass
class ClassifyConfig(BaseConfig):
    """Options of `cvtasks classify`."""

    model: str = option("resnet50", MODEL_HELP, flag="-m", panel="Model")
    top_k: int = option(5, "Predictions per image, highest first.", minimum=1, panel="Task")


_FORMAT_HELP = (
    "What goes to stdout: table, jsonl, json, csv, or coco (COCO results JSON with the images "
    "list) (default: table on a terminal, else jsonl)."
)


@dataclass
class DetectConfig(BaseConfig):
    """Options of `cvtasks detect` (also inherited by pose and instance segmentation)."""

    model: str = option("fasterrcnn_resnet50_fpn_v2", MODEL_HELP, flag="-m", panel="Model")
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


ATTRIBUTION_METHODS = (
    "occlusion",
    "saliency",
    "smoothgrad",
    "integrated-gradients",
    "deconvnet",
    "guided-backprop",
    "gradcam",
    "guided-gradcam",
)
VISUALISATION_METHODS = ("feature-maps", "top-patches", "embed", "filters", "maximize")
EXPLAIN_METHODS = ATTRIBUTION_METHODS + VISUALISATION_METHODS


@dataclass
class ExplainConfig(BaseConfig):
    """Options of `cvtasks explain METHOD`."""

    method: str = option(
        "gradcam",
        "Method (attribution or visualisation).",
        choices=EXPLAIN_METHODS,
        panel="Task",
        cli=False,
    )
    model: str = option("resnet50", MODEL_HELP, flag="-m", panel="Model")
    batch_size: int = option(
        8,
        "Perturbed copies per forward (occlusion windows, SmoothGrad samples, IG steps); "
        "on a 2-core CPU 4-8 is fastest, on a GPU use 64 or more.",
        flag="-b",
        minimum=1,
        maximum=4096,
        affects_results=False,
    )
    target: str | None = option(
        None, "Class to explain, by label or index (default: the top prediction).", panel="Task"
    )
    top_k: int = option(
        1,
        "Explain each of the top K classes (ignored with --target).",
        minimum=1,
        maximum=100,
        panel="Task",
    )
    layer: str | None = option(
        None,
        "Layer for gradcam/guided-gradcam (default: the last conv stage), or whose unit "
        "--channel explains.",
        panel="Task",
    )
    channel: int | None = option(
        None,
        "deconvnet/guided-backprop: explain this channel of --layer (its strongest "
        "activation) instead of a class.",
        minimum=0,
        panel="Task",
    )
    window: int = option(32, "Occlusion patch size in model-input pixels.", minimum=1, panel="Task")
    stride: int = option(16, "Occlusion step in model-input pixels.", minimum=1, panel="Task")
    baseline: str = option(
        "zero",
        "Occlusion patch / IG reference: zero (the normalisation mean, grey), mean (the "
        "image's mean colour) or blur.",
        choices=("zero", "mean", "blur"),
        panel="Task",
    )
    samples: int = option(25, "SmoothGrad noisy samples.", minimum=1, maximum=10_000, panel="Task")
    noise: float = option(
        0.15,
        "SmoothGrad noise level, as a fraction of the input's value range.",
        minimum=0.0,
        maximum=10.0,
        panel="Task",
    )
    steps: int = option(50, "Integrated-gradients steps.", minimum=1, maximum=10_000, panel="Task")
    sanity: bool = option(
        False,
        "Also explain with a randomised copy of the model and report the maps' rank "
        "correlation (Adebayo et al. 2018: a faithful method gives a low one).",
        panel="Task",
    )
    sanity_runs: int = option(
        3,
        "--sanity: how many re-initialised copies of the model (seeds 0..N-1); the record "
        "gives the mean rank correlation and its range.",
        minimum=1,
        maximum=20,
        panel="Task",
    )
    colormap: str = option(
        "turbo",
        "Heatmap colours.",
        choices=("turbo", "inferno", "jet", "viridis"),
        affects_results=False,
        panel="Output",
    )
    alpha: float = option(
        0.6,
        "Heatmap opacity in the overlay.",
        minimum=0.0,
        maximum=1.0,
        affects_results=False,
        panel="Output",
    )

    channels: list[str] = option(
        [],
        "top-patches/feature-maps: these channels of --layer, comma-separated (e.g. 0,5,9).",
        panel="Visualise",
    )
    top_units: int = option(
        8,
        "top-patches without --channels: the K units with the strongest activations.",
        minimum=1,
        maximum=512,
        panel="Visualise",
    )
    k: int = option(9, "top-patches: patches per unit.", minimum=1, maximum=100, panel="Visualise")
    max_maps: int = option(
        64,
        "feature-maps/filters: at most this many maps or filters in the grid.",
        minimum=1,
        maximum=1024,
        panel="Visualise",
    )
    projection: str = option(
        "tsne",
        "embed: 2-D projection, tsne (van der Maaten & Hinton) or pca.",
        choices=("tsne", "pca"),
        panel="Visualise",
    )
    perplexity: float = option(
        30.0, "embed: t-SNE perplexity.", minimum=1.0, maximum=500.0, panel="Visualise"
    )
    color: str = option(
        "predicted",
        "embed: colour points by the predicted class or by the image's folder.",
        choices=("predicted", "folder"),
        panel="Visualise",
    )
    lr: float = option(0.05, "maximize: step size.", minimum=0.0, maximum=100.0, panel="Visualise")
    l2: float = option(
        0.01,
        "maximize: L2 decay, the fraction the image shrinks each step.",
        minimum=0.0,
        maximum=1.0,
        panel="Visualise",
    )
    jitter: int = option(
        4,
        "maximize: random shift in pixels per step (undone before the update). Larger shifts "
        "suit shift-invariant (trained) networks; on others the un-shifted score may not rise.",
        minimum=0,
        maximum=64,
        panel="Visualise",
    )
    blur_every: int = option(
        4, "maximize: blur every N steps (0: never).", minimum=0, maximum=1000, panel="Visualise"
    )


@dataclass
class DepthConfig(BaseConfig):
    """Options of `cvtasks depth`."""

    model: str = option(
        "depth-anything-v2-small",
        "Depth model: an alias from `cvtasks models list --task depth`, a Hugging Face hub id "
        "or a local folder saved with save_pretrained.",
        flag="-m",
        panel="Model",
    )
    weights: str = option(
        "DEFAULT",
        "DEFAULT (the model's own weights) or none (random init from its config).",
        flag="-w",
        choices=("DEFAULT", "none"),
        panel="Model",
    )
    batch_size: int = option(
        4, "Images per forward pass.", flag="-b", minimum=1, maximum=4096, affects_results=False
    )
    colormap: str = option(
        "turbo",
        "Colours of the depth PNG (near is warm).",
        choices=("turbo", "inferno", "jet", "viridis"),
        affects_results=False,
        panel="Output",
    )
    raw_format: str = option(
        "npy",
        "Raw depth file: npy (float32) or png16 (16-bit PNG, scale in the record).",
        choices=("npy", "png16"),
        panel="Output",
    )
    eval_gt: str | None = option(
        None,
        "Ground truth to score against: a file (one input) or a folder of files named like the "
        "inputs (.npy, .npz, .pfm, .png).",
        panel="Task",
    )
    gt_kind: str = option(
        "disparity",
        "What the ground truth holds: disparity (or inverse depth) or depth.",
        choices=("disparity", "depth"),
        panel="Task",
    )
    gt_scale: float = option(
        1.0,
        "Multiply ground-truth values by this (e.g. 1/256 for KITTI-style 16-bit PNGs).",
        minimum=0.0,
        panel="Task",
    )


@dataclass(frozen=True)
class TaskSpec:
    """One task family: its CLI name, help, config class and predictor location."""

    name: str
    help: str
    config_cls: type[BaseConfig]
    predictor: str  # "module:Class"
    models: str  # "module:function" returning the model names this task accepts
    positional: tuple[str, ...] = ()  # config keys given as arguments before the inputs
    model_source: str = "torchvision"  # or "transformers" (hub ids, aliases, local folders)
    runner: str | None = None  # "module:function" replacing the standard run (see runner.py)

    def load_predictor_class(self) -> Any:
        """Import the predictor class (this is where torch gets imported)."""
        return _load(self.predictor)

    def run_function(self) -> Any:
        """The function that runs this task: ``run(spec, cfg, stdin=...) -> RunSummary``."""
        return _load(self.runner or "cvtasks.runner:run_task")

    def model_names(self) -> list[str]:
        """Names of the models this task accepts (imports torchvision)."""
        return list(_load(self.models)())


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            name="classify",
            help="Classify images or video frames with a torchvision classifier (top-k labels).",
            config_cls=ClassifyConfig,
            predictor="cvtasks.tasks.classify:ClassifyPredictor",
            models="cvtasks.tasks.classify:classification_models",
        ),
        TaskSpec(
            name="detect",
            help="Detect objects (boxes, labels, scores) with a torchvision detector.",
            config_cls=DetectConfig,
            predictor="cvtasks.tasks.detect:DetectPredictor",
            models="cvtasks.tasks.detect:detection_models",
        ),
        TaskSpec(
            name="segment",
            help="Segment images: per-pixel classes (deeplabv3/fcn/lraspp) or instance masks "
            "(maskrcnn).",
            config_cls=SegmentConfig,
            predictor="cvtasks.tasks.segment:make_segment_predictor",
            models="cvtasks.tasks.segment:segmentation_models",
        ),
        TaskSpec(
            name="pose",
            help="Estimate human pose: person boxes and 17 COCO keypoints (keypointrcnn).",
            config_cls=PoseConfig,
            predictor="cvtasks.tasks.pose:PosePredictor",
            models="cvtasks.tasks.pose:pose_models",
        ),
        TaskSpec(
            name="explain",
            help="Explain a classifier's decision: occlusion, saliency, smoothgrad, "
            "integrated-gradients, deconvnet, guided-backprop, gradcam, guided-gradcam.",
            config_cls=ExplainConfig,
            predictor="cvtasks.tasks.explain_data:make_explain_predictor",
            models="cvtasks.tasks.classify:classification_models",
            positional=("method",),
            runner="cvtasks.tasks.explain_data:run_explain",
        ),
        TaskSpec(
            name="depth",
            help="Estimate depth from one image (Depth Anything V2, DPT, ZoeDepth; transformers).",
            config_cls=DepthConfig,
            predictor="cvtasks.tasks.depth:DepthPredictor",
            models="cvtasks.tasks.depth_models:depth_model_names",
            model_source="transformers",
        ),
    ]
}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name; unknown names are usage errors with a suggestion."""
    from cvtasks.config import suggest

    try:
        return TASKS[name]
    except KeyError:
        raise UsageError(
            f"unknown task '{name}'; tasks: {', '.join(TASKS)}" + suggest(name, TASKS)
        ) from None
