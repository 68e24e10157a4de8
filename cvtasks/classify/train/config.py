"""Options of `cvtasks train` (no torch here: the CLI is built from this)."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.classify.config import context_option, crop_option, face_weights_option
from cvtasks.config import MODEL_HELP, BaseConfig, option

AUGMENTS = ("none", "light", "strong")


@dataclass
class TrainConfig(BaseConfig):
    """Fine-tune (or train from scratch) a torchvision classifier on your own labelled folders."""

    inputs: list[str] = option(
        [],
        "DATA: a folder with one sub-folder per class (with train/ and val/ inside, or split "
        "by --val-split), or a CSV/JSONL list of path,label.",
        cli=False,
        panel="Input",
    )
    model: str = option("resnet18", MODEL_HELP, flag="-m", panel="Model")
    weights: str = option(
        "DEFAULT",
        "Starting weights: DEFAULT, an enum member (IMAGENET1K_V1), a file, a run folder, or "
        "none (from scratch); the head is replaced for your classes.",
        flag="-w",
        panel="Model",
    )
    labels: str | None = option(
        None,
        "A class names file fixing the class order (default: sorted folder names).",
        panel="Model",
    )
    out: str | None = option(
        None,
        "The run folder (required): best/last weights, labels.txt, config.yaml, metrics.jsonl, "
        "confusion.png, curves.png.",
        flag="-o",
        affects_results=False,
        panel="Output",
    )
    resume: bool = option(
        False,
        "Continue an interrupted run from its last completed epoch (same result as not "
        "stopping: CPU, same seed).",
        affects_results=False,
        panel="Output",
    )
    batch_size: int = option(
        32, "Images per step.", flag="-b", minimum=1, maximum=4096, affects_results=True
    )
    precision: str = option(
        "auto",
        "Training precision: auto (bf16 autocast where the hardware computes bf16 natively: "
        "CPUs with AVX-512 BF16 or AMX, GPUs with bf16 support; fp32 elsewhere), fp32, bf16, or "
        "fp16 (CUDA only, with gradient scaling).",
        choices=("auto", "fp32", "bf16", "fp16"),
    )
    val_split: float = option(
        0.2,
        "Without train/ and val/ folders: this fraction of each class is held out for "
        "validation (stratified, seeded; saved as split.json in the run).",
        minimum=0.0,
        maximum=0.9,
        panel="Data",
    )
    img_size: int | None = option(
        None,
        "Training crop side in pixels (default: the weights' crop size, e.g. 224); evaluation "
        "resizes to img_size * resize/crop of the weights and centre-crops.",
        minimum=16,
        maximum=1024,
        panel="Data",
    )
    crop: str | None = crop_option()
    context: float | None = context_option()
    face_weights: str = face_weights_option()
    augment: str = option(
        "light",
        "Augmentation (torchvision transforms v2): none (evaluation preprocessing), light "
        "(random resized crop, flip), strong (also colour jitter, RandAugment, random erasing).",
        choices=AUGMENTS,
        panel="Data",
    )
    balance: bool = option(
        False,
        "Sample classes equally often (class-weighted sampling) instead of as they come.",
        panel="Data",
    )
    cache_mb: int = option(
        1024,
        "Keep decoded images in memory up to this many MB, so later epochs do not decode JPEGs "
        "again (0: off).",
        minimum=0,
        maximum=1_000_000,
        affects_results=False,
        panel="Data",
    )
    epochs: int = option(10, "Epochs.", minimum=1, maximum=100_000, panel="Recipe")
    lr: float = option(
        1e-3, "Peak learning rate of AdamW.", minimum=0.0, maximum=10.0, panel="Recipe"
    )
    weight_decay: float = option(
        0.05, "AdamW weight decay.", minimum=0.0, maximum=10.0, panel="Recipe"
    )
    warmup: float = option(
        1.0,
        "Epochs of linear warm-up before the cosine decay.",
        minimum=0.0,
        maximum=1000.0,
        panel="Recipe",
    )
    label_smoothing: float = option(
        0.1, "Label smoothing of the cross-entropy loss.", minimum=0.0, maximum=0.5, panel="Recipe"
    )
    freeze: str = option(
        "none",
        "Train only part of the model: none, backbone (the head alone), or N (the first N "
        "stages stay frozen).",
        panel="Recipe",
    )
    patience: int | None = option(
        None,
        "Early stopping: stop after this many epochs without a better validation top-1.",
        minimum=1,
        maximum=100_000,
        panel="Recipe",
    )
    seed: int = option(
        0, "Seed of the split, the data order and augmentation.", minimum=0, panel="Recipe"
    )
