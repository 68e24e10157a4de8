"""The explain visualisations beyond attributions: feature maps (per image) and top patches
(over a whole dataset, streamed). Embeddings are in :mod:`cvtasks.explain.embed`, filters and
class model visualisation in :mod:`cvtasks.explain.model_level`; :mod:`cvtasks.explain.dispatch`
decides which serves a method."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from cvtasks.errors import UsageError
from cvtasks.explain import visualize as viz
from cvtasks.explain.classifier import crop_box, input_to_original, load_classifier
from cvtasks.explain.config import ExplainConfig
from cvtasks.explain.layers import captured, get_layer, spatial_layers
from cvtasks.io.atomic import atomic_write, atomic_write_text, safe_join, save_npy
from cvtasks.io.decode import decode_image
from cvtasks.render.figure import titled
from cvtasks.tasks.base import Predictor
from cvtasks.types import Artifact, Frame, Result

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
                patch = _square_tile(rgb[box[1] : box[3], box[0] : box[2]], TILE)
                assert self.field is not None
                fy, fx = self.field
                centre = (fx.start + hit.x * fx.jump, fy.start + hit.y * fy.jump)
                tiles.append(np.concatenate([patch, _where_tile(rgb, box, centre, TILE)], axis=0))
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
            tiles += [np.full((TILE + TILE // 2, TILE, 3), 255, np.uint8)] * (
                self.cfg.k - len(self.collector.ranked(unit))
            )
            labels += [""] * (self.cfg.k - len(self.collector.ranked(unit)))
        grid = titled(
            viz.tile_grid(tiles, self.cfg.k, labels),
            f"{self.cfg.model} · {self.layer}: the {self.cfg.k} image patches that excite each "
            f"unit most, over {self.collector.images_seen} images",
            "one row per unit (channel), strongest first; label = unit: activation; each patch is "
            "the unit's receptive field, clipped to the model's input; below it, where it lies in "
            "that input (red box; the dot is the unit's centre): units whose best patches all "
            "sit at one border show the network's border effect, not a concept",
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


TILE = 96  # px per patch in the top-patches grid


def _where_tile(
    rgb: np.ndarray, box: Sequence[int], centre: tuple[float, float], size: int
) -> np.ndarray:
    """A ``size`` x ``size/2`` strip: the model input shrunk, the patch's box drawn in red and
    the unit's centre as a red dot (late layers see the whole input: the dot still tells)."""
    height = size // 2
    scale = (height - 4) / max(rgb.shape[:2])
    thumb = Image.fromarray(rgb).resize(
        (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
        Image.Resampling.BILINEAR,
    )
    strip = Image.new("RGB", (size, height), "white")
    left, top = (size - thumb.width) // 2, 2
    strip.paste(thumb, (left, top))
    x1, y1, x2, y2 = (round(v * scale) for v in box)
    draw = ImageDraw.Draw(strip)
    draw.rectangle(
        (left + x1, top + y1, left + max(x1, x2 - 1), top + max(y1, y2 - 1)), outline=(230, 0, 0)
    )
    cx, cy = left + centre[0] * scale, top + centre[1] * scale
    draw.ellipse(
        (cx - 2.5, cy - 2.5, cx + 2.5, cy + 2.5), fill=(230, 0, 0), outline=(255, 255, 255)
    )
    return np.asarray(strip)


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
