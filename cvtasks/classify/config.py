"""Options of `cvtasks classify` and `cvtasks eval classify`. No torch here: the CLI builds its
options from this class."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import MODEL_HELP, InferenceConfig, option


@dataclass
class ClassifyConfig(InferenceConfig):
    """Options of `cvtasks classify` and `cvtasks eval classify`."""

    model: str = option("resnet50", MODEL_HELP, flag="-m", panel="Model")
    top_k: int = option(5, "Predictions per image, highest first.", minimum=1, panel="Task")
    aggregate: str | None = option(
        None,
        "Videos: also one summary record per video, its verdict by the mean probability of each "
        "class over the frames read (mean) or by the most frequent top-1 class (vote).",
        choices=("mean", "vote"),
        panel="Task",
    )


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
