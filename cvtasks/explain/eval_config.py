"""Options of `cvtasks eval explain METHOD IMAGES` (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import option
from cvtasks.explain.config import ATTRIBUTION_METHODS, ExplainConfig


@dataclass
class ExplainEvalConfig(ExplainConfig):
    """Measure explanations: against where people say the evidence is or where they looked,
    for faithfulness (deletion and insertion), and against people's labels."""

    method: str = option(
        "gradcam",
        "Attribution method to measure.",
        choices=ATTRIBUTION_METHODS,
        panel="Task",
        cli=False,
    )
    gt: str | None = option(
        None,
        "Where people say the evidence is: a COCO instances JSON (boxes, or masks where "
        "annotated; images matched by file name, categories to the model's classes by name or "
        "--class-map), or a folder of human maps (STEM.png per image: a fixation map of two "
        "values, or a fixation density map). Without it only faithfulness is measured.",
        panel="Task",
    )
    class_map: list[str] = option(
        [],
        "model_label=gt_category pairs, comma-separated (e.g. 'tabby=cat,Egyptian cat=cat').",
        panel="Task",
    )
    human_labels: str | None = option(
        None,
        "A CSV of people's labels (columns image, label and optionally truth): their agreement "
        "with the classifier's top-1, Cohen's kappa, and where one errs and the other does not.",
        panel="Task",
    )
    tolerance: float = option(
        15.0,
        "Pointing game: a hit within this many pixels of the evidence (Zhang et al. 2016: 15).",
        minimum=0.0,
        maximum=1000.0,
        panel="Task",
    )
    top_percent: float | None = option(
        None,
        "Top-k IoU: the map's top PERCENT of pixels (default: as many pixels as the evidence "
        "covers).",
        minimum=0.01,
        maximum=100.0,
        panel="Task",
    )
    fixation_sigma: float = option(
        0.03,
        "Human fixation maps: the Gaussian blur (a fraction of the image's longer side) that "
        "makes the density map CC compares (about 1 degree of visual angle in the MIT "
        "benchmark's set-up).",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    curve_steps: int = option(
        50,
        "Deletion and insertion curves: steps from the whole image to none of it (RISE uses "
        "one per 224 pixels, 224 steps; on the real MobileNetV2 the mean AUCs moved by at most "
        "0.001 between 50 and 224 steps, see docs/explain.md).",
        minimum=2,
        maximum=10_000,
        panel="Task",
    )
    seed: int = option(0, "Seed of the random-map baseline.", minimum=0, panel="Task")
    format: str | None = option(
        None,
        "What goes to stdout: table (a readable report) or json (one object) (default: table "
        "on a terminal, else json).",
        flag="-f",
        choices=("table", "json"),
        affects_results=False,
        panel="Output",
    )
