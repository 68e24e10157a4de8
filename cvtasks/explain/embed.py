"""`explain embed`: every image's representation at a layer, projected to 2-D (t-SNE or PCA)
at the end of the run, written as a CSV, a scatter plot and a thumbnail mosaic."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from cvtasks.explain import visualize as viz
from cvtasks.explain.config import ExplainConfig
from cvtasks.explain.features import DatasetPredictor
from cvtasks.explain.layers import captured, get_layer
from cvtasks.io.atomic import atomic_write, atomic_write_text, safe_join
from cvtasks.log import warn
from cvtasks.render.figure import titled
from cvtasks.render.palette import instance_colour
from cvtasks.types import Frame, Result

MIN_TSNE_IMAGES = 10  # below this a t-SNE map is mostly noise (perplexity < 3)


@dataclass
class EmbedPoint:
    """An image's predicted class and folder (its coordinates are in the CSV at the end)."""

    label: str
    index: int
    score: float
    folder: str

    def to_record(self) -> dict[str, Any]:
        return {
            "method": "embed",
            "predicted": {"label": self.label, "index": self.index, "score": round(self.score, 6)},
            "folder": self.folder,
        }

    def summary(self) -> str:
        return f"{self.label} {self.score:.3f} ({self.folder})"

    def annotate(self, image: np.ndarray) -> np.ndarray:
        return image


class EmbedPredictor(DatasetPredictor):
    """Representations of every image at ``--layer`` (default: what the last Linear layer
    receives), projected to 2-D at the end with t-SNE or PCA."""

    def __init__(self, cfg: ExplainConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        if cfg.layer is not None:
            self.module, self.use_input, self.layer = (
                get_layer(self.net.model, cfg.layer),
                False,
                cfg.layer,
            )
        else:
            name, linear = [
                (n, m) for n, m in self.net.model.named_modules() if isinstance(m, nn.Linear)
            ][-1]
            self.module, self.use_input, self.layer = linear, True, f"input of {name}"
        self.features: list[np.ndarray] = []
        self.points: list[EmbedPoint] = []

    def infer(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with captured(self.module, self.use_input) as store:
            probs = self.net.model(batch).float().softmax(dim=1)
        features = store[0].float()
        if features.dim() == 4:  # a feature map: average over positions
            features = features.mean(dim=(2, 3))
        return features.flatten(1).cpu(), probs.cpu()

    def postprocess(
        self, outputs: tuple[torch.Tensor, torch.Tensor], frames: Sequence[Frame]
    ) -> list[Result]:
        features, probs = outputs
        self.remember(frames)
        results: list[Result] = []
        for vector, row, frame in zip(features, probs, frames, strict=True):
            index = int(row.argmax())
            point = EmbedPoint(
                self.net.labels[index], index, float(row[index]), Path(frame.source).parent.name
            )
            self.features.append(vector.numpy().astype(np.float32))
            self.points.append(point)
            results.append(point)
        return results

    def finalize(self, out: Path | None) -> list[str]:
        assert out is not None and isinstance(self.cfg, ExplainConfig)
        if len(self.points) < 3:
            return [f"embed: {len(self.points)} image(s) processed; a 2-D map needs at least 3"]
        count = len(self.points)
        perplexity: float | None = None
        if self.cfg.projection == "tsne":
            perplexity = viz.tsne_perplexity(self.cfg.perplexity, count)
            if perplexity < self.cfg.perplexity:
                warn(
                    f"embed: t-SNE perplexity {self.cfg.perplexity:g} lowered to "
                    f"{perplexity:.3g} for {count} images (it must stay below a third of them)"
                )
            if count < MIN_TSNE_IMAGES:
                warn(
                    f"embed: a t-SNE map of {count} images says little (points may coincide); "
                    f"use {MIN_TSNE_IMAGES} or more, or --projection pca"
                )
        coords = viz.project(np.stack(self.features), self.cfg.projection, self.cfg.perplexity)
        groups = [p.label if self.cfg.color == "predicted" else p.folder for p in self.points]
        stem = f"explain/embed.{self.cfg.projection}"
        paths = {
            name: safe_join(out, f"{stem}{suffix}")
            for name, suffix in (("csv", ".csv"), ("scatter", ".png"), ("mosaic", ".mosaic.png"))
        }
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["source", "x", "y", "predicted", "index", "score", "folder", "perplexity"])
        used = "" if perplexity is None else f"{perplexity:.4g}"
        for seen, (x, y), p in zip(self.seen, coords, self.points, strict=True):
            row = [seen.source, f"{x:.4f}", f"{y:.4f}", p.label, p.index, f"{p.score:.6f}"]
            writer.writerow([*row, p.folder, used])
        atomic_write_text(paths["csv"], buffer.getvalue())
        cfg = self.cfg
        atomic_write(paths["scatter"], lambda tmp: _scatter(coords, groups, cfg, tmp))
        mosaic = titled(
            _mosaic(coords, [self.to_rgb(self.model_input(i)) for i in range(len(self.seen))]),
            f"{self.cfg.projection} of {self.cfg.model} representations ({self.layer}): "
            f"{len(self.points)} images"
            + (f", perplexity {perplexity:.3g}" if perplexity is not None else ""),
            "each image in the grid cell nearest its 2-D position: neighbours have similar "
            "representations",
        )
        atomic_write(paths["mosaic"], lambda tmp: Image.fromarray(mosaic).save(tmp, format="PNG"))
        return [
            f"embed: {len(self.points)} images, {self.cfg.projection}"
            + (f" (perplexity {perplexity:.3g})" if perplexity is not None else "")
            + f" of {self.layer} -> "
            + ", ".join(str(p) for p in paths.values())
        ]


def _scatter(coords: np.ndarray, groups: list[str], cfg: ExplainConfig, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 7), dpi=120)
    names = sorted(set(groups))
    for i, name in enumerate(names):
        mask = np.array([g == name for g in groups])
        axes.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=18,
            color=np.array(instance_colour(i)) / 255,
            label=name,
            edgecolors="none",
        )
    by = "predicted class" if cfg.color == "predicted" else "the image's folder"
    axes.set_title(f"{cfg.projection} of {cfg.model} representations, coloured by {by}")
    axes.set_xticks([])
    axes.set_yticks([])
    if len(names) <= 20:
        axes.legend(loc="best", fontsize=8, markerscale=1.5)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def _mosaic(coords: np.ndarray, images: list[np.ndarray], thumb: int = 72) -> np.ndarray:
    """Each image as a thumbnail in the grid cell nearest its 2-D position (van der Maaten's
    figures, snapped to a grid so that no thumbnail hides another and none are crowded into
    the corners); y grows upwards as in the scatter plot."""
    columns = max(1, int(np.ceil(np.sqrt(len(images) * 1.25))))
    rows = -(-len(images) // columns)
    cells = viz.grid_positions(coords * np.array([1, -1]), columns, rows)
    gap = 2
    canvas = Image.new("RGB", (columns * (thumb + gap) + gap, rows * (thumb + gap) + gap), "white")
    for (column, row), rgb in zip(cells, images, strict=True):
        image = Image.fromarray(rgb)
        image.thumbnail((thumb, thumb))
        x = gap + column * (thumb + gap) + (thumb - image.width) // 2
        y = gap + row * (thumb + gap) + (thumb - image.height) // 2
        canvas.paste(image, (x, y))
    return np.asarray(canvas)
