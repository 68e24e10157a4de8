"""Semantic segmentation against index-PNG ground truth (`eval segment --gt-masks DIR`):
pixel accuracy, IoU per class and mean IoU from one confusion over the whole set."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvtasks.errors import UsageError


class PixelConfusion:
    """Semantic masks against index-PNG ground truth: one confusion over every pixel of the set
    (rows: true class, columns: predicted), so mean IoU is the dataset's, not a mean of images'."""

    def __init__(self, folder: Path, ignore_index: int) -> None:
        if not folder.is_dir():
            raise UsageError(f"--gt-masks {folder}: no such folder")
        self.folder, self.ignore = folder, ignore_index
        self.counts: np.ndarray | None = None
        self.images = 0

    def add(self, source: str, predicted: np.ndarray) -> str | None:
        """Count one image; a one-line problem instead when its ground truth is unusable."""
        from PIL import Image

        path = self.folder / f"{Path(source).stem}.png"
        if not path.is_file():
            return f"no ground-truth mask {path}"
        truth = np.asarray(Image.open(path))
        if truth.ndim != 2:
            return f"{path} is not an index PNG (one value per pixel)"
        if truth.shape != predicted.shape:
            (h, w), (ph, pw) = truth.shape, predicted.shape
            return f"{path} is {w}x{h}, the image {pw}x{ph}"
        return self._count(truth.astype(np.int64), predicted.astype(np.int64), path)

    def _count(self, truth: np.ndarray, predicted: np.ndarray, path: Path) -> str | None:
        scored = truth != self.ignore
        size = self.counts.shape[0] if self.counts is not None else 0
        size = max(size, int(predicted.max(initial=0)) + 1, int(truth[scored].max(initial=0)) + 1)
        if self.counts is None or size > self.counts.shape[0]:
            grown = np.zeros((size, size), dtype=np.int64)
            if self.counts is not None:
                n = self.counts.shape[0]
                grown[:n, :n] = self.counts
            self.counts = grown
        cells = truth[scored] * size + predicted[scored]
        self.counts += np.bincount(cells, minlength=size * size).reshape(size, size)
        self.images += 1
        return None

    def report(self, classes: Sequence[str]) -> dict[str, Any]:
        counts = self.counts if self.counts is not None else np.zeros((0, 0), dtype=np.int64)
        if counts.shape[0] > len(classes) and classes:
            raise UsageError(
                f"--gt-masks holds class index {counts.shape[0] - 1}, the model has "
                f"{len(classes)} classes (pixels not to score should be {self.ignore})"
            )
        size = max(len(classes), counts.shape[0])
        full = np.zeros((size, size), dtype=np.int64)
        full[: counts.shape[0], : counts.shape[0]] = counts
        hits = np.diag(full)
        union = full.sum(0) + full.sum(1) - hits
        rows = []
        for i in range(size):
            if union[i] == 0:
                continue  # in neither the masks nor the predictions: no IoU to speak of
            rows.append({"label": classes[i] if i < len(classes) else str(i), "index": i,
                         "iou": round(float(hits[i] / union[i]), 6),
                         "pixels": int(full[i].sum())})  # fmt: skip
        total = int(full.sum())
        return {
            "iou_type": "semantic",
            "images": self.images,
            "pixels": total,
            "ignore_index": self.ignore,
            "pixel_accuracy": round(float(hits.sum() / total), 6) if total else None,
            "miou": round(float(np.mean([r["iou"] for r in rows])), 6) if rows else None,
            "classes": rows,
            "confusion": full.tolist(),
            "labels": [classes[i] if i < len(classes) else str(i) for i in range(size)],
        }
