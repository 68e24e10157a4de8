"""Figures of a training run and of an evaluation: confusion matrix, learning curves, ROC."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvtasks.io.atomic import atomic_write


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> None:
    plt = _pyplot()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    plt.close(figure)


def confusion_png(matrix: np.ndarray, classes: Sequence[str], path: Path, title: str) -> None:
    """Counts, with each row's share as the cell colour (rows: true class); of many classes,
    those that occur (at most 30: the rest summed as "other", said in the title)."""
    from cvtasks.render.confusion import shown_confusion

    matrix, classes, note = shown_confusion(matrix, classes)
    if note:
        title = f"{title}\n{note}"
    plt = _pyplot()
    count = len(classes)
    side = max(4.5, 0.55 * count + 2.5)
    figure, axes = plt.subplots(figsize=(side, side * 0.9))
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, np.maximum(totals, 1))
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(count), classes, rotation=45, ha="right")
    axes.set_yticks(range(count), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row in range(count):
        for column in range(count):
            axes.text(
                column,
                row,
                f"{matrix[row, column]}\n{shares[row, column]:.0%}",
                ha="center",
                va="center",
                fontsize=9 if count < 12 else 6,
                color="white" if shares[row, column] > 0.55 else "black",
            )
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)


def curves_png(history: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Loss and top-1 per epoch, training and validation."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    loss.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    loss.set_xlabel("epoch")
    loss.set_ylabel("cross-entropy (label-smoothed)")
    values = [h[k] for h in history for k in ("train_loss", "val_loss") if h[k] > 0]
    if values and max(values) / min(values) > 20:  # an early spike would flatten the rest
        loss.set_yscale("log")
    accuracy.plot(epochs, [h["train_top1"] for h in history], "o-", label="train")
    accuracy.plot(epochs, [h["val_top1"] for h in history], "o-", label="validation")
    accuracy.set_xlabel("epoch")
    accuracy.set_ylabel("top-1 accuracy")
    accuracy.set_ylim(0, 1.02)
    for axes in (loss, accuracy):
        axes.grid(alpha=0.3)
        axes.set_xticks(epochs if len(epochs) <= 20 else epochs[:: max(1, len(epochs) // 10)])
    figure.suptitle(title, fontsize=11)
    # One legend below both plots: inside the axes it hid the lines at top-1 = 1.0.
    handles, labels = accuracy.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, frameon=False)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    _save(figure, path)


def roc_png(
    fpr: np.ndarray, tpr: np.ndarray, auc: float, eer: float, positive: str, path: Path, title: str
) -> None:
    """ROC of accepting presentations as ``positive`` (bona fide), with the EER point."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(fpr, tpr, lw=2, label=f"ROC (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    axes.plot([eer], [1 - eer], "o", color="crimson", label=f"EER {eer:.3f}")
    axes.set_xlabel("APCER (attacks accepted)")
    axes.set_ylabel(f"1 - BPCER ({positive} accepted)")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)


def reliability_png(
    before: dict[str, Any], after: dict[str, Any] | None, path: Path, title: str
) -> None:
    """Accuracy against confidence per bin (the diagonal is perfect calibration), bar widths
    the bins; with ``after``, the calibrated model's bins beside."""
    plt = _pyplot()
    panels = [("as given", before)] + ([("calibrated", after)] if after else [])
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.6), squeeze=False)
    for ax, (name, bins) in zip(axes[0], panels, strict=True):
        count = len(bins["counts"])
        edges = np.linspace(0, 1, count + 1)
        accuracy = [a if a is not None else 0.0 for a in bins["accuracy"]]
        ax.bar(edges[:-1], accuracy, width=1 / count, align="edge", color="#3d7dd8",
               edgecolor="white", label="accuracy")  # fmt: skip
        ax.plot([0, 1], [0, 1], "--", color="#888", label="perfect calibration")
        total = sum(bins["counts"]) or 1
        gaps = [
            abs((a or 0.0) - (c or 0.0)) * n
            for a, c, n in zip(bins["accuracy"], bins["confidence"], bins["counts"], strict=True)
        ]
        ax.set_title(f"{name}: ECE {sum(gaps) / total:.3f}", fontsize=10)
        ax.set_xlabel("confidence (top-1 probability)")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)
