"""Options of `cvtasks classify` and `cvtasks eval classify`. No torch here: the CLI builds its
options from this class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cvtasks.config import MODEL_HELP, InferenceConfig, option
from cvtasks.export.config import backend_option


def crop_option() -> Any:
    return option(
        None,
        "What the classifier judges: the whole image (default) or each face MTCNN finds "
        "(faces: an aligned crop, or the box with context, see --context). A run folder "
        "trained with --crop faces crops the same way without being told.",
        choices=("faces",),
        panel="Task",
    )


def context_option() -> Any:
    return option(
        None,
        "--crop faces: the face box scaled this much about its centre (e.g. 2.7, as "
        "Silent-Face-Anti-Spoofing) instead of the aligned 112x112 crop.",
        minimum=1.0,
        maximum=10.0,
        panel="Task",
    )


def face_weights_option() -> Any:
    return option(
        "DEFAULT",
        "--crop faces: MTCNN's weights (DEFAULT: the cache, see `cvtasks models info mtcnn`; "
        "or a folder with pnet.pt, rnet.pt, onet.pt).",
        panel="Model",
    )


@dataclass
class ClassifyConfig(InferenceConfig):
    """Options of `cvtasks classify` and `cvtasks eval classify`."""

    model: str = option("resnet50", MODEL_HELP, flag="-m", panel="Model")
    backend: str = backend_option()
    top_k: int = option(5, "Predictions per image, highest first.", minimum=1, panel="Task")
    aggregate: str | None = option(
        None,
        "Videos: also one summary record per video, its verdict by the mean probability of each "
        "class over the frames read (mean) or by the most frequent top-1 class (vote).",
        choices=("mean", "vote"),
        panel="Task",
    )
    crop: str | None = crop_option()
    context: float | None = context_option()
    face_weights: str = face_weights_option()


@dataclass
class EvalConfig(ClassifyConfig):
    """Options of `cvtasks eval classify DATA`: classify a labelled folder and measure."""

    kind: str = option(
        "classify",
        "What to evaluate.",
        choices=("classify",),
        panel="Task",
        cli=False,
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
    positive: str | None = option(
        None,
        "Two classes: the bona fide (positive) class for ROC AUC, EER, APCER, BPCER and ACER "
        "(ISO/IEC 30107-3). Default: the first class name that says real/live/bona fide, "
        "else the first class.",
        panel="Task",
    )
    threshold: float = option(
        0.5,
        "Two classes: a presentation is accepted as bona fide when P(positive) >= this.",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    target_apcer: float | None = option(
        None,
        "Two classes: also report the threshold whose APCER is at most this (e.g. 0.01) and "
        "the BPCER it costs.",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    target_bpcer: float | None = option(
        None,
        "Two classes: also report the threshold whose BPCER is at most this, and its APCER.",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    calibrate: bool = option(
        False,
        "With -w RUN_FOLDER, on held-out (validation) data: fit a temperature to the logits "
        "(ECE before and after in the report) and, for two classes, choose the decision "
        "threshold (at --target-apcer, --target-bpcer, else the EER); write both to "
        "RUN_FOLDER/calibration.json, which `classify -w RUN_FOLDER` then applies.",
        panel="Task",
    )
