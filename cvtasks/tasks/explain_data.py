"""The explain visualisations beyond attributions: feature maps (per image), top patches and
embeddings (over a whole dataset, streamed), filters and class model visualisation (per
model, no inputs). Which predictor or runner serves a method is decided here."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from PIL import Image
from torch import nn

from cvtasks.config import is_given
from cvtasks.errors import UsageError
from cvtasks.explain import visualize as viz
from cvtasks.explain.layers import captured, get_layer, spatial_layers
from cvtasks.io.atomic import atomic_write, atomic_write_text, safe_join
from cvtasks.io.decode import decode_image
from cvtasks.io.lock import out_lock
from cvtasks.render.figure import titled
from cvtasks.render.palette import instance_colour
from cvtasks.tasks.base import Predictor
from cvtasks.tasks.explain import (
    Classifier,
    ExplainPredictor,
    crop_box,
    input_to_original,
    load_classifier,
    parse_target,
)
from cvtasks.tasks.registry import ExplainConfig, TaskSpec
from cvtasks.types import Artifact, Frame, Result
from cvtasks.weights import apply_run_model

MODEL_LEVEL = ("filters", "maximize")
DATASET_LEVEL = ("top-patches", "embed")


def parse_channels(values: Sequence[str]) -> list[int] | None:
    if not values:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise UsageError(f"--channels takes channel numbers, got {','.join(values)}") from None


def require_layer(cfg: ExplainConfig, model: nn.Module) -> str:
    if cfg.layer is None:
        candidates = spatial_layers(model)
        examples = ", ".join(candidates[:3] + candidates[-3:])
        raise UsageError(f"{cfg.method} needs --layer NAME, e.g. one of: {examples}")
    get_layer(model, cfg.layer)
    return cfg.layer


# --------------------------------------------------------------------------- feature maps


@dataclass
class FeatureMapsResult:
    """One image's activation maps at a layer."""

    layer: str
    activation: np.ndarray  # C x H x W
    channels: list[int] | None
    max_maps: int
    title: str = ""  # model, layer and image, for the figure

    def chosen(self) -> np.ndarray:
        return self.activation[self.channels] if self.channels is not None else self.activation

    def to_record(self) -> dict[str, Any]:
        means = self.activation.reshape(self.activation.shape[0], -1).mean(axis=1)
        strongest = np.argsort(means)[::-1][:8]
        return {
            "method": "feature-maps",
            "layer": self.layer,
            "shape": list(self.activation.shape),
            "strongest": [
                {"channel": int(c), "mean": round(float(means[c]), 6)} for c in strongest
            ],
        }

    def summary(self) -> str:
        return f"{self.layer} {'x'.join(map(str, self.activation.shape))}"

    def grid(self) -> np.ndarray:
        chosen = self.chosen()
        shown = list(self.channels or range(chosen.shape[0]))[: self.max_maps]
        grid = viz.feature_map_grid(torch.from_numpy(chosen), self.max_maps, labels=shown)
        height, width = self.activation.shape[1:]
        return titled(
            grid,
            self.title,
            f"{len(shown)} of {self.activation.shape[0]} channels, {height}x{width} each; "
            "tile number = channel; each map scaled to its own maximum (white), negatives black",
        )

    def annotate(self, image: np.ndarray) -> np.ndarray:
        return self.grid()

    def artifacts(self) -> list[Artifact]:
        def grid(path: Path) -> None:
            Image.fromarray(self.grid()).save(path, format="PNG")

        def raw(path: Path) -> None:
            save_npy(path, self.activation)

        return [
            Artifact("grid", "explain", ".feature-maps.png", grid),
            Artifact("raw", "explain", ".feature-maps.npy", raw),
        ]


class FeatureMapsPredictor(Predictor):
    """Activations of ``--layer`` for each image, as a grid of maps."""

    task = "explain"

    def __init__(self, cfg: ExplainConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        self.net = load_classifier(cfg, device)
        self.layer = require_layer(cfg, self.net.model)
        self.channels = parse_channels(cfg.channels)

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.net.transforms

    def tensor_preprocessor(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return self.net.transforms  # torchvision's preset transforms take tensors too

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        with captured(get_layer(self.net.model, self.layer)) as store:
            self.net.model(batch)
        return store[0]

    def postprocess(self, outputs: torch.Tensor, frames: Sequence[Frame]) -> list[Result]:
        assert isinstance(self.cfg, ExplainConfig)
        if outputs.dim() != 4:
            raise UsageError(
                f"layer {self.layer} outputs {tuple(outputs.shape)}, not C x H x W maps"
            )
        return [
            FeatureMapsResult(
                self.layer,
                a.float().cpu().numpy(),
                self.channels,
                self.cfg.max_maps,
                f"{self.cfg.model} · {self.layer}: activation maps of {frame.source}",
            )
            for a, frame in zip(outputs, frames, strict=True)
        ]


# --------------------------------------------------------------------------- top patches


@dataclass
class UnitHits:
    """Per-image record of top-patches: the image's strongest units (the grid comes at the end)."""

    layer: str
    strongest: list[tuple[int, float]]

    def to_record(self) -> dict[str, Any]:
        return {
            "method": "top-patches",
            "layer": self.layer,
            "strongest": [{"channel": c, "activation": round(v, 6)} for c, v in self.strongest],
        }

    def summary(self) -> str:
        return ", ".join(f"#{c} {v:.2f}" for c, v in self.strongest[:3])

    def annotate(self, image: np.ndarray) -> np.ndarray:
        return image


@dataclass
class _Seen:
    path: Path
    source: str
    width: int
    height: int


class DatasetPredictor(Predictor):
    """Shared by top-patches and embed: one streaming pass, outputs written at the end."""

    task = "explain"
    gathers_inputs = True  # state over all inputs in one process: not on --engine ray

    def __init__(self, cfg: ExplainConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        if cfg.out is None:
            raise UsageError(f"{cfg.method} writes its figures under --out: pass -o DIR")
        if any(
            Path(i).suffix.lower() in (".mp4", ".avi", ".mov", ".mkv", ".gif", ".webm")
            for i in cfg.inputs
        ):
            raise UsageError(f"{cfg.method} takes still images; extract video frames first")
        self.net = load_classifier(cfg, device)
        self.seen: list[_Seen] = []

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.net.transforms

    def remember(self, frames: Sequence[Frame]) -> list[int]:
        start = len(self.seen)
        self.seen += [_Seen(Path(f.source), f.source, f.width, f.height) for f in frames]
        return list(range(start, len(self.seen)))

    def model_input(self, index: int) -> torch.Tensor:
        """Re-decode an image as the model saw it (3 x H x W, normalised)."""
        seen = self.seen[index]
        assert isinstance(self.cfg, ExplainConfig)
        tensor: torch.Tensor = self.net.transforms(
            decode_image(seen.path, self.cfg.max_image_pixels)
        )
        return tensor

    def to_rgb(self, tensor: torch.Tensor) -> np.ndarray:
        mean = torch.tensor(self.net.transforms.mean).view(3, 1, 1)
        std = torch.tensor(self.net.transforms.std).view(3, 1, 1)
        rgb = (tensor.cpu() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
        return (rgb * 255).round().astype(np.uint8)


class TopPatchesPredictor(DatasetPredictor):
    """Girshick et al. 2014's figure: for each unit, the image patches it responds to most."""

    def __init__(self, cfg: ExplainConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        self.layer = require_layer(cfg, self.net.model)
        self.collector = viz.TopPatchCollector(parse_channels(cfg.channels), cfg.k)
        self.field: viz.Field = None
        self.input_size: tuple[int, int] = (0, 0)

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        if self.field is None:
            self.field = viz.layer_field(self.net.model, self.layer, batch[:1])
            self.input_size = (int(batch.shape[-2]), int(batch.shape[-1]))
        with captured(get_layer(self.net.model, self.layer)) as store:
            self.net.model(batch)
        if store[0].dim() != 4:
            raise UsageError(
                f"layer {self.layer} outputs {tuple(store[0].shape)}, not C x H x W maps"
            )
        return store[0].float().cpu()

    def postprocess(self, outputs: torch.Tensor, frames: Sequence[Frame]) -> list[Result]:
        results: list[Result] = []
        for activation, index in zip(outputs, self.remember(frames), strict=True):
            self.collector.update(activation, index)
            peaks = activation.flatten(1).max(dim=1).values
            top = peaks.argsort(descending=True)[:3].tolist()
            results.append(UnitHits(self.layer, [(int(c), float(peaks[c])) for c in top]))
        return results

    def finalize(self, out: Path | None) -> list[str]:
        assert out is not None and isinstance(self.cfg, ExplainConfig)
        if not self.collector.heaps:
            return []
        units = self.collector.channels or self.collector.best_units(self.cfg.top_units)
        tiles, labels, entries = [], [], []
        cache: dict[int, np.ndarray] = {}
        for unit in units:
            for rank, hit in enumerate(self.collector.ranked(unit), start=1):
                if hit.image not in cache:
                    cache = {
                        hit.image: self.to_rgb(self.model_input(hit.image))
                    }  # one image at a time
                rgb = cache[hit.image]
                box = viz.unit_box(self.field, hit.y, hit.x, rgb.shape[0], rgb.shape[1])
                tiles.append(_square_tile(rgb[box[1] : box[3], box[0] : box[2]], 72))
                labels.append(f"{unit}: {hit.value:.1f}")
                seen = self.seen[hit.image]
                crop = crop_box(self.net.transforms, seen.width, seen.height)
                entries.append(
                    {
                        "unit": unit,
                        "rank": rank,
                        "source": seen.source,
                        "position": [hit.y, hit.x],
                        "activation": round(hit.value, 6),
                        "box_model_input": list(box),
                        "box_original": input_to_original(box, crop, self.input_size),
                    }
                )
            tiles += [np.full((72, 72, 3), 255, np.uint8)] * (
                self.cfg.k - len(self.collector.ranked(unit))
            )
            labels += [""] * (self.cfg.k - len(self.collector.ranked(unit)))
        grid = titled(
            viz.tile_grid(tiles, self.cfg.k, labels),
            f"{self.cfg.model} · {self.layer}: the {self.cfg.k} image patches that excite each "
            f"unit most, over {self.collector.images_seen} images",
            "one row per unit (channel), strongest first; label = unit: activation; each patch is "
            "the unit's receptive field, clipped to the model's input",
        )
        stem = f"explain/top-patches.{self.layer}"
        png, data = safe_join(out, stem + ".png"), safe_join(out, stem + ".json")
        atomic_write(png, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))
        assert self.field is not None
        fy, fx = self.field
        payload = {
            "layer": self.layer,
            "receptive_field": [fy.size, fx.size],
            "jump": [fy.jump, fx.jump],
            "images": self.collector.images_seen,
            "units": units,
            "patches": entries,
        }
        atomic_write_text(data, json.dumps(payload, indent=2))
        return [f"top-patches: {len(units)} units x {self.cfg.k} patches -> {png} and {data}"]


def save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.save(handle, array)


def _square_tile(patch: np.ndarray, size: int) -> np.ndarray:
    """A patch scaled (nearest) to fit ``size`` x ``size``, centred on white."""
    image = Image.fromarray(patch)
    scale = size / max(image.size)
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(
        new_size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BICUBIC
    )
    canvas = Image.new("RGB", (size, size), "white")
    canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return np.asarray(canvas)


# --------------------------------------------------------------------------- embed


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
        coords = viz.project(np.stack(self.features), self.cfg.projection, self.cfg.perplexity)
        groups = [p.label if self.cfg.color == "predicted" else p.folder for p in self.points]
        stem = f"explain/embed.{self.cfg.projection}"
        paths = {
            name: safe_join(out, f"{stem}{suffix}")
            for name, suffix in (("csv", ".csv"), ("scatter", ".png"), ("mosaic", ".mosaic.png"))
        }
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["source", "x", "y", "predicted", "index", "score", "folder"])
        for seen, (x, y), p in zip(self.seen, coords, self.points, strict=True):
            writer.writerow(
                [seen.source, f"{x:.4f}", f"{y:.4f}", p.label, p.index, f"{p.score:.6f}", p.folder]
            )
        atomic_write_text(paths["csv"], buffer.getvalue())
        cfg = self.cfg
        atomic_write(paths["scatter"], lambda tmp: _scatter(coords, groups, cfg, tmp))
        mosaic = titled(
            _mosaic(coords, [self.to_rgb(self.model_input(i)) for i in range(len(self.seen))]),
            f"{self.cfg.projection} of {self.cfg.model} representations ({self.layer}): "
            f"{len(self.points)} images",
            "each image in the grid cell nearest its 2-D position: neighbours have similar "
            "representations",
        )
        atomic_write(paths["mosaic"], lambda tmp: Image.fromarray(mosaic).save(tmp, format="PNG"))
        return [
            f"embed: {len(self.points)} images, {self.cfg.projection} of {self.layer} -> "
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
    axes.set_title(f"{cfg.projection} of {cfg.model} representations, coloured by {cfg.color}")
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


# --------------------------------------------------------------------------- dispatch


def make_explain_predictor(cfg: ExplainConfig, device: torch.device) -> Predictor:
    """The predictor serving ``cfg.method``."""
    if cfg.method == "feature-maps":
        return FeatureMapsPredictor(cfg, device)
    if cfg.method == "top-patches":
        return TopPatchesPredictor(cfg, device)
    if cfg.method == "embed":
        return EmbedPredictor(cfg, device)
    if cfg.method in MODEL_LEVEL:
        raise UsageError(f"{cfg.method} explains a model, not images")  # served by run_explain
    return ExplainPredictor(cfg, device)


def run_explain(
    spec: TaskSpec, cfg: ExplainConfig, *, stdin: TextIO | None = None, **kwargs: Any
) -> Any:
    """`cvtasks explain`: per-model methods run here; everything else through the engine."""
    from cvtasks.runner import run_task

    if cfg.method not in MODEL_LEVEL:
        return run_task(spec, cfg, stdin=stdin, **kwargs)
    return run_model_level(cfg)


def run_model_level(cfg: ExplainConfig) -> Any:
    """filters and maximize: no inputs (a single input word names the model)."""
    from cvtasks.device import resolve_device
    from cvtasks.engine import RunStats
    from cvtasks.io.sinks import dumps
    from cvtasks.runner import RunSummary

    start = time.perf_counter()
    if cfg.inputs:
        if len(cfg.inputs) > 1 or Path(cfg.inputs[0]).exists():
            raise UsageError(
                f"{cfg.method} takes no images: `cvtasks explain {cfg.method} MODEL` or -m MODEL"
            )
        if is_given(cfg, "model") and cfg.model != cfg.inputs[0]:
            raise UsageError(
                f"two models named: {cfg.inputs[0]} (argument) and {cfg.model} (-m/--model); "
                "give one"
            )
        cfg.model = cfg.inputs[0]
    if cfg.out is None:
        raise UsageError(f"{cfg.method} writes its figures under --out: pass -o DIR")
    out = Path(cfg.out)
    apply_run_model(cfg)
    net = load_classifier(cfg, resolve_device(cfg.device))
    with out_lock(out, wait=cfg.wait_lock):
        record = (
            filters_record(cfg, net, out)
            if cfg.method == "filters"
            else maximize_record(cfg, net, out)
        )
    print(dumps({"task": "explain", "model": cfg.model, **record}), file=sys.stdout, flush=True)
    load = time.perf_counter() - start
    stats = RunStats(processed=1)
    return RunSummary(stats, 0, load, load)


def filters_record(cfg: ExplainConfig, net: Classifier, out: Path) -> dict[str, Any]:
    layer = cfg.layer or viz.first_conv(net.model)
    module = get_layer(net.model, layer)
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        raise UsageError(
            f"layer {layer} has no convolution filters (weight of shape out x in x k x k)"
        )
    grid = viz.filter_grid(weight, max_filters=cfg.max_maps)
    out_c, in_c, kh, kw = weight.shape
    if grid.mode == "rgb":
        what = str(min(out_c, cfg.max_maps))
        subtitle = (
            "RGB filters as colour tiles, each stretched from its lowest to its highest weight"
        )
    else:
        what = f"first {grid.rows}"
        subtitle = (
            f"rows: filters 0-{grid.rows - 1}; columns: input channels 0-{grid.columns - 1}; "
            "grey levels scaled per filter"
        )
    image = titled(
        grid.image,
        f"{cfg.model} · {layer}: {what} of {out_c} filters ({in_c}x{kh}x{kw})",
        subtitle,
    )
    png, raw = (
        safe_join(out, f"explain/filters.{layer}.png"),
        safe_join(out, f"explain/filters.{layer}.npy"),
    )
    atomic_write(png, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))
    atomic_write(raw, lambda tmp: save_npy(tmp, grid.weights))
    return {
        "method": "filters",
        "layer": layer,
        "shape": list(weight.shape),
        "mode": grid.mode,
        "rows": grid.rows,
        "columns": grid.columns,
        "files": {"grid": str(png.relative_to(out)), "raw": str(raw.relative_to(out))},
    }


def maximize_record(cfg: ExplainConfig, net: Classifier, out: Path) -> dict[str, Any]:
    if cfg.target is None:
        raise UsageError("maximize needs --target LABEL|INDEX (the class to visualise)")
    target = parse_target(cfg.target, net.labels)
    size = int(net.transforms.crop_size[0])
    steps = cfg.steps
    result = viz.maximize_class(
        net.model,
        target,
        size,
        net.transforms.mean,
        net.transforms.std,
        steps=steps,
        lr=cfg.lr,
        l2=cfg.l2,
        jitter=cfg.jitter,
        blur_every=cfg.blur_every,
    )
    label = net.labels[target]
    stem = f"explain/maximize.{target}"
    png, trace = safe_join(out, stem + ".png"), safe_join(out, stem + ".csv")
    enlarged = np.asarray(
        Image.fromarray(result.image).resize((size * 2, size * 2), Image.Resampling.NEAREST)
    )
    figure = titled(
        enlarged,
        f"{cfg.model}: an input that excites '{label}' (class {target})",
        f"gradient ascent on the logit for {steps} steps: {result.scores[0]:.3g} -> "
        f"{result.scores[-1]:.3g} (p = {result.probabilities[-1]:.3f}); lr {cfg.lr}, L2 {cfg.l2}, "
        f"jitter {cfg.jitter} px, blur every {cfg.blur_every} steps",
    )
    atomic_write(png, lambda tmp: Image.fromarray(figure).save(tmp, format="PNG"))
    lines = ["step,score,probability"] + [
        f"{i},{s:.6f},{p:.6f}"
        for i, (s, p) in enumerate(zip(result.scores, result.probabilities, strict=True))
    ]
    atomic_write_text(trace, "\n".join(lines) + "\n")
    return {
        "method": "maximize",
        "target": {"label": label, "index": target},
        "steps": steps,
        "initial_score": round(result.scores[0], 6),
        "final_score": round(result.scores[-1], 6),
        "final_probability": round(result.probabilities[-1], 6),
        "files": {"image": str(png.relative_to(out)), "trajectory": str(trace.relative_to(out))},
    }
