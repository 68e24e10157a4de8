"""Figures of `eval detect`: precision-recall curves per class and the confusion matrix with a
background row and column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def pr_figure(
    evaluator: Any, names: Mapping[int, str], counts: Sequence[int], path: Path, most: int = 12
) -> None:
    """Precision against recall at IoU 0.5 (all areas, 100 detections): the classes with the
    most instances (``counts``, per category in the evaluator's order), and the mean."""
    from cvtasks.classify.train.plots import _pyplot, _save

    plt = _pyplot()
    precision = evaluator.eval["precision"][0, :, :, 0, -1]  # [recall, class]
    recall = evaluator.params.recThrs
    shown = np.argsort(counts)[::-1][:most]
    figure, axes = plt.subplots(figsize=(7.2, 5.4))
    for k in shown:
        curve = precision[:, k]
        if (curve > -1).any():
            axes.plot(recall, np.where(curve > -1, curve, np.nan), lw=1.4,
                      label=f"{names[evaluator.params.catIds[k]]} ({counts[k]})")  # fmt: skip
    valid = np.where(precision > -1, precision, np.nan)
    if np.isfinite(valid).any():
        axes.plot(recall, np.nanmean(valid, axis=1), color="black", lw=2.4, label="mean")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.set_title("precision-recall at IoU 0.5 (instances in brackets)", fontsize=10)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, fontsize=8)
    figure.tight_layout()
    _save(figure, path)


def confusion_figure(matrix: np.ndarray, classes: Sequence[str], conf: float, path: Path) -> None:
    from cvtasks.classify.train.plots import confusion_png

    confusion_png(matrix, [*classes, "background"], path,
                  f"detections at score >= {conf}, IoU 0.5 (rows: true)")  # fmt: skip


def pixel_confusion_figure(result: Mapping[str, Any], path: Path) -> None:
    """The pixel confusion of the classes that occur (rows: true)."""
    from cvtasks.classify.train.plots import confusion_png

    shown = [c["index"] for c in result["classes"]]
    matrix = np.array(result["confusion"])[np.ix_(shown, shown)]
    labels = [result["labels"][i] for i in shown]
    confusion_png(matrix, labels, path, f"pixels: mean IoU {result['miou']:.3f} (rows: true)")
