"""Seeing inside a CNN: filter grids, feature maps, maximally activating patches, embeddings
of representations, and class model visualisation. Pure functions on models and tensors;
the `explain` task wires them to inputs and files."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageDraw
from torch import nn

from cvtasks.errors import UsageError
from cvtasks.explain.layers import captured, get_layer
from cvtasks.inspect.fields import Field, ReceptiveFieldMode
from cvtasks.render.draw import font

MIN_TILE = 64  # grids are enlarged (nearest neighbour) until every tile is at least this
LABEL_SIZE = 12


def scale_for(side: int) -> int:
    """The whole-number enlargement that makes a ``side`` px tile at least MIN_TILE px."""
    return max(1, -(-MIN_TILE // max(side, 1)))


def first_conv(model: nn.Module) -> str:
    """Name of the first Conv2d (the layer whose filters look like Gabors and colour blobs)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    raise UsageError("this model has no Conv2d layer")


# --------------------------------------------------------------------------- grids


def tile_grid(
    tiles: Sequence[np.ndarray],
    columns: int,
    labels: Sequence[str] = (),
    gap: int = 2,
    scale: int = 1,
) -> np.ndarray:
    """RGB uint8 grid of equally sized RGB tiles, row by row, with optional small labels."""
    height, width = tiles[0].shape[:2]
    height, width = height * scale, width * scale
    label_h = LABEL_SIZE + 4 if labels else 0
    rows = -(-len(tiles) // columns)
    canvas = Image.new(
        "RGB", (columns * (width + gap) + gap, rows * (height + gap + label_h) + gap), "white"
    )
    draw = ImageDraw.Draw(canvas)
    face = font(LABEL_SIZE)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        x, y = gap + c * (width + gap), gap + r * (height + gap + label_h)
        image = Image.fromarray(tile)
        if scale != 1:
            image = image.resize((width, height), Image.Resampling.NEAREST)
        canvas.paste(image, (x, y + label_h))
        if labels:
            draw.text((x, y), labels[i], font=face, fill=(0, 0, 0))
    return np.asarray(canvas)


def _unit(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


@dataclass
class FilterGrid:
    """A picture of a conv layer's weights and what it shows."""

    image: np.ndarray
    weights: np.ndarray  # out x in x k x k
    rows: int
    columns: int
    mode: str  # "rgb" (a colour tile per filter), "kernels" (a grey tile per filter with one
    # input channel: depthwise layers) or "channels" (a grey tile per filter and input channel)


def filter_grid(
    weight: torch.Tensor, max_filters: int = 64, max_channels: int = 16, scale: int | None = None
) -> FilterGrid:
    """First-layer RGB filters as colour tiles (each normalised on its own), as in the
    lecture's AlexNet conv1 figure; deeper layers as a row of grey tiles per filter (the first
    16 filters), one per input channel (the first ``max_channels``), normalised per filter."""
    weights = weight.detach().float().cpu().numpy()
    out_channels, in_channels = weights.shape[:2]
    scale = scale or scale_for(max(weights.shape[-2:]))
    if in_channels == 3:
        count = min(out_channels, max_filters)
        tiles = [(_unit(w.transpose(1, 2, 0)) * 255).astype(np.uint8) for w in weights[:count]]
        columns = int(np.ceil(np.sqrt(count)))
        image = tile_grid(tiles, columns, scale=scale)
        return FilterGrid(image, weights, -(-count // columns), columns, "rgb")
    if in_channels == 1:  # depthwise (groups = channels): one 2-D kernel per channel, all shown
        count = min(out_channels, max_filters)
        tiles = [
            np.repeat((_unit(w[0]) * 255).astype(np.uint8)[..., None], 3, axis=2)
            for w in weights[:count]
        ]
        columns = int(np.ceil(np.sqrt(count)))
        labels = [str(i) for i in range(count)]
        image = tile_grid(tiles, columns, labels=labels, scale=max(scale, 3))
        return FilterGrid(image, weights, -(-count // columns), columns, "kernels")
    rows, columns = min(out_channels, max_filters, 16), min(in_channels, max_channels)
    tiles = []
    for w in weights[:rows]:
        normed = _unit(w[:columns])
        tiles += [
            np.repeat((normed[c] * 255).astype(np.uint8)[..., None], 3, axis=2)
            for c in range(columns)
        ]
    image = tile_grid(tiles, columns, scale=scale)
    return FilterGrid(image, weights, rows, columns, "channels")


def feature_map_grid(
    activation: torch.Tensor,
    max_maps: int = 64,
    scale: int | None = None,
    labels: Sequence[int] | None = None,
) -> np.ndarray:
    """Activation maps of one image (C x H x W) as grey tiles, each normalised to its own
    maximum, labelled with the channel number (``labels``, by default 0, 1, ...)."""
    maps = activation.detach().float().cpu().numpy()[:max_maps]
    scale = scale or scale_for(min(maps.shape[-2:]))
    tiles = [
        np.repeat((_unit(np.maximum(m, 0)) * 255).astype(np.uint8)[..., None], 3, axis=2)
        for m in maps
    ]
    columns = int(np.ceil(np.sqrt(len(tiles))))
    names = list(labels) if labels is not None else list(range(len(tiles)))
    return tile_grid(tiles, columns, [str(i) for i in names[: len(tiles)]], scale=scale)


# --------------------------------------------------------------------------- receptive fields


def layer_field(model: nn.Module, layer: str, x: torch.Tensor) -> Field:
    """Receptive field (size, jump, start per axis) of ``layer``'s units for input ``x``."""
    mode = ReceptiveFieldMode()
    with captured(get_layer(model, layer)) as store, torch.no_grad():
        mode.mark_input(x)
        with mode:
            model(x)
    known, found = mode.field_of(store[0])
    if not known or found is None:
        raise UsageError(
            f"layer '{layer}' has no spatial receptive field (its units see everything)"
        )
    return found


def unit_box(found: Field, y: int, x: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The input pixels (x1, y1, x2, y2) that unit (y, x) sees, clipped to the image."""
    assert found is not None
    fy, fx = found
    cy, cx = fy.start + y * fy.jump, fx.start + x * fx.jump
    half_y, half_x = (fy.size - 1) / 2, (fx.size - 1) / 2
    x1, y1 = max(0, int(np.floor(cx - half_x))), max(0, int(np.floor(cy - half_y)))
    x2, y2 = min(width, int(np.ceil(cx + half_x)) + 1), min(height, int(np.ceil(cy + half_y)) + 1)
    return (x1, y1, x2, y2)


# --------------------------------------------------------------------------- top patches


@dataclass(order=True)
class Hit:
    """One unit activation: its value, the image it came from and the position in the map."""

    value: float
    image: int = field(compare=False)
    y: int = field(compare=False)
    x: int = field(compare=False)


class TopPatchCollector:
    """Running top-k of each unit's strongest activation per image: a min-heap of k hits per
    channel, so memory is channels x k whatever the number of images."""

    def __init__(self, channels: Sequence[int] | None, k: int) -> None:
        self.channels = list(channels) if channels is not None else None
        self.k = k
        self.heaps: dict[int, list[Hit]] = {}
        self.images_seen = 0

    def update(self, activation: torch.Tensor, image: int) -> None:
        """Add one image's layer activation (C x H x W)."""
        self.images_seen += 1
        flat = activation.detach().float().flatten(1)
        values, positions = flat.max(dim=1)
        width = activation.shape[-1]
        chosen = self.channels if self.channels is not None else range(activation.shape[0])
        for channel in chosen:
            if channel >= activation.shape[0]:
                raise UsageError(
                    f"channel {channel} does not exist: the layer has {activation.shape[0]}"
                )
            pos = int(positions[channel])
            hit = Hit(float(values[channel]), image, pos // width, pos % width)
            heap = self.heaps.setdefault(channel, [])
            if len(heap) < self.k:
                heapq.heappush(heap, hit)
            elif hit.value > heap[0].value:
                heapq.heapreplace(heap, hit)

    def best_units(self, count: int) -> list[int]:
        """Channels whose single strongest activation is highest."""
        return sorted(self.heaps, key=lambda c: max(h.value for h in self.heaps[c]), reverse=True)[
            :count
        ]

    def ranked(self, channel: int) -> list[Hit]:
        return sorted(self.heaps.get(channel, []), reverse=True)


# --------------------------------------------------------------------------- embeddings


def tsne_perplexity(asked: float, count: int) -> float:
    """The perplexity t-SNE can use on ``count`` points: at most (count - 1) / 3."""
    return min(asked, (count - 1) / 3)


def project(
    features: np.ndarray, method: str, perplexity: float = 30.0, seed: int = 0
) -> np.ndarray:
    """2-D coordinates of feature vectors: PCA (numpy SVD) or t-SNE (scikit-learn)."""
    count = features.shape[0]
    if count < 3:
        raise UsageError("an embedding needs at least 3 images")
    centred = features - features.mean(axis=0, keepdims=True)
    if method == "pca":
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return (centred @ vt[:2].T).astype(np.float32)
    from sklearn.manifold import TSNE

    tsne = TSNE(
        n_components=2, perplexity=tsne_perplexity(perplexity, count), init="pca", random_state=seed
    )
    return np.asarray(tsne.fit_transform(centred), dtype=np.float32)


def grid_positions(coords: np.ndarray, columns: int, rows: int) -> list[tuple[int, int]]:
    """A distinct grid cell (column, row) for every 2-D point, keeping neighbours together:
    each axis is replaced by its rank (so dense clusters spread over the grid instead of
    piling into corners), then points, nearest to their spot first, take the closest free
    cell. Needs ``columns * rows >= len(coords)``."""
    count = len(coords)
    if columns * rows < count:
        raise ValueError("not enough cells")
    ranks = np.argsort(np.argsort(coords, axis=0, kind="stable"), axis=0, kind="stable")
    spot = (ranks + 0.5) / count * np.array([columns, rows]) - 0.5  # cell coordinates
    cells = np.array([(c, r) for r in range(rows) for c in range(columns)], dtype=np.float64)
    free = np.ones(len(cells), dtype=bool)
    nearest = np.linalg.norm(spot - np.rint(spot), axis=1)
    placed: list[tuple[int, int]] = [(0, 0)] * count
    for i in np.argsort(nearest, kind="stable"):
        distance = np.linalg.norm(cells - spot[i], axis=1)
        distance[~free] = np.inf
        best = int(np.argmin(distance))
        free[best] = False
        placed[i] = (int(cells[best, 0]), int(cells[best, 1]))
    return placed


# --------------------------------------------------------------------------- class visualisation


@dataclass
class Maximized:
    """An input optimised to excite a class (or a unit), and its score along the way."""

    image: np.ndarray  # RGB uint8 at the model's input size: the best step's image
    scores: list[float]  # the objective before the first step and after every step
    probabilities: list[float]  # the target class's softmax probability (classes only)
    best_step: int = 0  # the step whose image is saved (0: the start)
    saved_score: float = 0.0  # the objective of the saved uint8 image itself
    saved_probability: float | None = None  # its class probability (classes only)


Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def class_objective(model: nn.Module, target: int) -> Objective:
    """The class logit (Simonyan et al. 2014), with the logits for the probability."""

    def score(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = model(x)
        return logits[0, target], logits

    return score


def unit_objective(model: nn.Module, layer: nn.Module, channel: int) -> Objective:
    """The mean activation of one channel of ``layer`` (a C x H x W map or B x T x C tokens):
    the lecture's "visualizing arbitrary neurons along the way to the top"."""

    def score(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        store: list[torch.Tensor] = []
        handle = layer.register_forward_hook(lambda _m, _a, out: store.append(out))
        try:
            model(x)
        finally:
            handle.remove()
        out = store[0]
        values = out[0, channel] if out.dim() == 4 else out[0, :, channel]
        return values.float().mean(), None

    return score


def maximize_class(
    model: nn.Module,
    target: int,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    steps: int = 200,
    lr: float = 0.05,
    l2: float = 1e-3,
    jitter: int = 4,
    blur_every: int = 4,
    seed: int = 0,
    objective: Objective | None = None,
) -> Maximized:
    """Simonyan et al. 2014's class model visualisation: gradient ascent on the input to raise
    the class score (the logit, or ``objective``), with L2 decay (``x *= 1 - l2`` each step),
    random jitter (the image is shifted by up to ``jitter`` px before each forward) and a light
    blur every ``blur_every`` steps (Yosinski et al. 2015's regularisers). ``scores`` holds the
    objective of the un-shifted image before the first and after every step; the image of the
    best step is kept (later steps can fall back as the regularisers pull), quantised to uint8,
    and scored again as saved."""
    objective = objective or class_objective(model, target)
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    x = (0.01 * torch.randn(1, 3, size, size, generator=generator)).to(device).requires_grad_(True)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    low, high = (0 - mean_t) / std_t, (1 - mean_t) / std_t
    scores: list[float] = []
    probabilities: list[float] = []
    best = (-float("inf"), 0, x.detach().clone())

    def record(step: int) -> None:
        nonlocal best
        with torch.no_grad():
            score, logits = objective(x)
        scores.append(float(score))
        if logits is not None:
            probabilities.append(float(logits.float().softmax(dim=1)[0, target]))
        if scores[-1] > best[0]:
            best = (scores[-1], step, x.detach().clone())

    record(0)
    for step in range(steps):
        if jitter:
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
        else:
            dy, dx = 0, 0
        shifted = torch.roll(x.detach(), shifts=(dy, dx), dims=(2, 3)).requires_grad_(True)
        (gradient,) = torch.autograd.grad(objective(shifted)[0], shifted)
        gradient = torch.roll(gradient, shifts=(-dy, -dx), dims=(2, 3))  # undo the jitter
        with torch.no_grad():
            x += lr * gradient / (gradient.abs().mean() + 1e-12)
            x *= 1.0 - l2
            if blur_every and (step + 1) % blur_every == 0:
                x.copy_(TF.gaussian_blur(x, [3, 3], [0.5, 0.5]))
            x.copy_(torch.max(torch.min(x, high), low))
        record(step + 1)
    with torch.no_grad():
        rgb = (best[2] * std_t + mean_t).clamp(0, 1)
        image = (rgb[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        saved = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float() / 255
        score, logits = objective((saved - mean_t) / std_t)
    probability = None if logits is None else float(logits.float().softmax(dim=1)[0, target])
    return Maximized(image, scores, probabilities, best[1], float(score), probability)
