"""Config dataclasses of the task commands: every key's default, help, validation and CLI
option in one place (see :func:`cvtasks.config.option`). No torch here."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import InferenceConfig, option

MODEL_HELP = "Model name: a torchvision builder name (see `cvtasks models list`)."


@dataclass
class ClassifyConfig(InferenceConfig):
    """Options of `cvtasks classify`."""

    model: str = option("resnet50", MODEL_HELP, flag="-m", panel="Model")
    top_k: int = option(5, "Predictions per image, highest first.", minimum=1, panel="Task")
    aggregate: str | None = option(
        None,
        "Videos: also one summary record per video, its verdict by the mean probability of each "
        "class over the frames read (mean) or by the most frequent top-1 class (vote).",
        choices=("mean", "vote"),
        panel="Task",
    )


_FORMAT_HELP = (
    "What goes to stdout: table, jsonl, json, csv, or coco (COCO results JSON with the images "
    "list) (default: table on a terminal, else jsonl)."
)


@dataclass
class DetectConfig(InferenceConfig):
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
class ExplainConfig(InferenceConfig):
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
class DepthConfig(InferenceConfig):
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
