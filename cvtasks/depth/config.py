"""Options of `cvtasks depth`. No torch here: the CLI builds its options from this class."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import InferenceConfig, option
from cvtasks.export.config import backend_option


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
    backend: str = backend_option()
    weights: str = option(
        "DEFAULT",
        "DEFAULT (the model's own weights), none (random init from its config), or a file "
        "from `cvtasks export` (with --backend).",
        flag="-w",
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
