"""Is a map faithful to what the model uses? Deletion and insertion curves (Petsiuk et al. 2018,
RISE), and the maps that make their numbers mean something: a random map and a centre prior.

Deletion replaces the input's pixels, most important first, by a neutral grey (RISE: zeros of
the normalised input, i.e. the normalisation mean) and records the explained score after each
step; insertion starts from a blurred copy (RISE: an 11-tap Gaussian of sigma 5 at 224 px,
scaled with the input here) and puts the pixels back in the same order. The area under each
curve, over the fraction of pixels changed from 0 to 1, is RISE's ``auc``: low for deletion and
high for insertion mean the map found what the score depends on.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torch.nn import functional as F

Score = Callable[[torch.Tensor], torch.Tensor]  # a batch of inputs -> one score each (B,)
BASELINES = ("random", "centre")
RANDOM_GRID = 14  # the random map's cells along each side: as coarse as a Grad-CAM map


def auc(curve: np.ndarray) -> float:
    """The trapezoid area under ``curve`` sampled evenly from 0 to 1 (RISE's ``auc``)."""
    return float((curve.sum() - curve[0] / 2 - curve[-1] / 2) / (len(curve) - 1))


def insertion_start(x: torch.Tensor) -> torch.Tensor:
    """RISE's blurred substrate: Gaussian, 11 taps and sigma 5 at 224 px, scaled with the
    input's shorter side."""
    scale = min(x.shape[-2:]) / 224
    sigma = 5.0 * scale
    taps = max(3, round(11 * scale) | 1)
    return TF.gaussian_blur(x, [taps, taps], [sigma, sigma])


def random_map(size: tuple[int, int], seed: int) -> np.ndarray:
    """Uniform noise on a 14 x 14 grid, upsampled bilinearly to ``size`` (H, W): a random
    explanation as smooth as a Grad-CAM map."""
    generator = torch.Generator().manual_seed(seed)
    grid = torch.rand(1, 1, RANDOM_GRID, RANDOM_GRID, generator=generator)
    return F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def centre_map(size: tuple[int, int]) -> np.ndarray:
    """A Gaussian centred on the input, sigma a quarter of each side: the centre bias."""
    height, width = size
    ys = (np.arange(height) + 0.5 - height / 2) / (height / 4)
    xs = (np.arange(width) + 0.5 - width / 2) / (width / 4)
    return np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2)).astype(np.float32)


def causal_curve(
    score: Score,
    x: torch.Tensor,
    heat: np.ndarray,
    substrate: torch.Tensor,
    steps: int,
    batch_size: int,
) -> np.ndarray:
    """The score after each of ``steps`` steps that copy the next ``ceil(HW / steps)`` most
    important pixels of ``heat`` from ``substrate`` into ``x`` (1 x C x H x W); ``steps + 1``
    values, the first for ``x`` itself. Deletion: ``x`` the image, ``substrate`` grey;
    insertion: ``x`` the blurred image, ``substrate`` the image."""
    height, width = x.shape[-2:]
    pixels = height * width
    if heat.shape != (height, width):
        raise ValueError(f"map {heat.shape} is not the input's size {(height, width)}")
    step = math.ceil(pixels / steps)
    order = torch.from_numpy(np.argsort(-heat.ravel(), kind="stable").copy()).to(x.device)
    rank = torch.empty(pixels, dtype=torch.long, device=x.device)
    rank[order] = torch.arange(pixels, device=x.device)
    rank = rank.view(1, 1, height, width)
    values = np.empty(steps + 1, np.float64)
    with torch.no_grad():
        for start in range(0, steps + 1, batch_size):
            counts = torch.arange(start, min(start + batch_size, steps + 1), device=x.device)
            changed = rank < (counts * step).view(-1, 1, 1, 1)  # B x 1 x H x W
            batch = torch.where(changed, substrate, x)
            values[start : start + len(counts)] = score(batch).float().cpu().numpy()
    return values


def curves(
    score: Score,
    x: torch.Tensor,
    maps: dict[str, np.ndarray],
    grey: torch.Tensor,
    steps: int,
    batch_size: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Deletion and insertion curves of each map in ``maps`` (name -> H x W at the input's
    size): ``{"deletion": {name: curve}, "insertion": {name: curve}}``."""
    blurred = insertion_start(x)
    found: dict[str, dict[str, np.ndarray]] = {"deletion": {}, "insertion": {}}
    for name, heat in maps.items():
        found["deletion"][name] = causal_curve(score, x, heat, grey, steps, batch_size)
        found["insertion"][name] = causal_curve(score, blurred, heat, x, steps, batch_size)
    return found
