"""Options of `cvtasks explain METHOD` and the method names. No torch here: the CLI builds its
options from this class."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import MODEL_HELP, InferenceConfig, option

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
    model: str = option(
        "resnet50",
        MODEL_HELP + " A classifier, or a detector (fasterrcnn_*, maskrcnn_*, retinanet_*, fcos_*, "
        "ssd*, keypointrcnn_*: each detection is explained) or a semantic segmenter "
        "(deeplabv3_*, fcn_*, lraspp_*: each class's region).",
        flag="-m",
        panel="Model",
    )
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
        None,
        "Class to explain, by label or index (default: the top prediction; detectors and "
        "segmenters: every detection or region, or only this class's).",
        panel="Task",
    )
    top_k: int = option(
        1,
        "Classifiers: explain each of the top K classes (ignored with --target).",
        minimum=1,
        maximum=100,
        panel="Task",
    )
    layer: str | None = option(
        None,
        "Layer for gradcam/guided-gradcam (default: the last conv stage), or whose unit "
        "--channel explains (deconvnet, guided-backprop) or maximize excites.",
        panel="Task",
    )
    channel: int | None = option(
        None,
        "deconvnet/guided-backprop: explain this channel of --layer (its strongest "
        "activation) instead of a class; maximize: excite it (its mean activation).",
        minimum=0,
        panel="Task",
    )
    window: int = option(
        32,
        "Occlusion patch size in model-input pixels (detectors and segmenters, whose input is "
        "the whole image: 32/224 of its shorter side unless given).",
        minimum=1,
        panel="Task",
    )
    stride: int = option(
        16,
        "Occlusion step in model-input pixels (detectors and segmenters: half the window "
        "unless given).",
        minimum=1,
        panel="Task",
    )
    conf: float = option(
        0.5,
        "Detectors: explain the detections scoring at least this (as `cvtasks detect --conf`).",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    max_objects: int = option(
        10,
        "Detectors and segmenters: at most this many detections (most confident first) or "
        "class regions (largest first) per image.",
        minimum=1,
        maximum=1000,
        panel="Task",
    )
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
    ascent_steps: int = option(
        200,
        "maximize: gradient-ascent steps; the step whose image scores highest is saved (the "
        "real MobileNetV2 reaches p > 0.99 for its class within 200).",
        minimum=1,
        maximum=100_000,
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
