"""How an explanation agrees with people: where they say the evidence is (boxes, masks), where
they looked (saliency and fixation maps), and what they called the image (labels).

Maps are H x W arrays in the pixels of the human annotation; NaN marks pixels the model never
saw (outside a classifier's centre crop): they hold no attribution.

- Pointing game (Zhang et al. 2016): a hit when a maximum of the map lies within ``tolerance``
  pixels (15 in the paper) of the evidence; with ties, any maximum counts (as Quantus does).
- Energy-based pointing game (Wang et al. 2020, Score-CAM): the share of the positive
  attribution that falls inside the evidence (Quantus' ``AttributionLocalisation``).
- Top-k IoU: the IoU of the map's k highest pixels with the evidence; k is the evidence's own
  area unless a percentage of the image is given.
- CC, NSS, AUC-Judd: the MIT/Tuebingen saliency benchmark's definitions (Bylinskii et al. 2019,
  its MATLAB code): the map is compared at the human map's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def _finite(heat: np.ndarray) -> np.ndarray:
    """The map with unseen (NaN) pixels at 0: no attribution there."""
    return np.nan_to_num(heat.astype(np.float64), nan=0.0)


def within(evidence: np.ndarray, tolerance: float) -> np.ndarray:
    """The pixels at most ``tolerance`` px (Euclidean) from the evidence mask."""
    if tolerance <= 0:
        return evidence.astype(bool)
    outside = (~evidence.astype(bool)).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.asarray(distance <= tolerance)


def pointing_game(heat: np.ndarray, evidence: np.ndarray, tolerance: float = 15.0) -> bool | None:
    """Whether a maximum of ``heat`` falls within ``tolerance`` px of ``evidence``; None when
    there is no evidence or the map is empty (all unseen)."""
    if not evidence.any() or not np.isfinite(heat).any():
        return None
    values = np.where(np.isfinite(heat), heat, -np.inf)
    maxima = values == values.max()
    return bool((maxima & within(evidence, tolerance)).any())


def energy_pointing_game(heat: np.ndarray, evidence: np.ndarray) -> float | None:
    """The share of the map's positive mass inside the evidence (None: no evidence or no
    positive mass)."""
    positive = np.clip(_finite(heat), 0, None)
    total = positive.sum()
    if not evidence.any() or total <= 0:
        return None
    return float(positive[evidence.astype(bool)].sum() / total)


def top_iou(heat: np.ndarray, evidence: np.ndarray, percent: float | None = None) -> float | None:
    """IoU of the ``k`` highest pixels of the map with the evidence: ``k`` is the evidence's
    area, or ``percent`` % of the image. Ties are broken by position (row-major), as a stable
    sort orders them."""
    mask = evidence.astype(bool).ravel()
    if not mask.any():
        return None
    k = int(mask.sum()) if percent is None else max(1, round(percent / 100 * mask.size))
    order = np.argsort(-_finite(heat).ravel(), kind="stable")[:k]
    hits = int(mask[order].sum())
    return hits / (k + int(mask.sum()) - hits)


def _resized(heat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    values = _finite(heat)
    if values.shape == shape:
        return values
    return np.asarray(cv2.resize(values, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR))


def _standard(values: np.ndarray) -> np.ndarray | None:
    """(x - mean) / std with MATLAB's std (N - 1); None for a constant map."""
    std = float(values.std(ddof=1))
    return None if std == 0 else (values - values.mean()) / std


def cc(heat: np.ndarray, density: np.ndarray) -> float | None:
    """Pearson's correlation of the map with a fixation density map (None: either constant)."""
    a, b = _standard(_resized(heat, density.shape)), _standard(density.astype(np.float64))
    if a is None or b is None:
        return None
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def nss(heat: np.ndarray, fixations: np.ndarray) -> float | None:
    """The standardised map's mean at the fixated pixels (None: no fixation, or a constant map)."""
    points = fixations.astype(bool)
    values = _standard(_resized(heat, fixations.shape))
    if values is None or not points.any():
        return None
    return float(values[points].mean())


def auc_judd(heat: np.ndarray, fixations: np.ndarray, seed: int = 0) -> float | None:
    """AUC-Judd: the ROC curve whose thresholds are the map's values at the fixations, after
    the benchmark's tiny jitter (uniform, 1e-7; seeded here) that breaks ties of flat maps."""
    points = fixations.astype(bool).ravel()
    if not points.any():
        return None
    values = _resized(heat, fixations.shape).ravel()
    values = values + np.random.default_rng(seed).random(values.shape) / 1e7
    low, high = values.min(), values.max()
    if high == low:
        return None
    values = (values - low) / (high - low)
    at_fixations = np.sort(values[points])[::-1]
    count, pixels = at_fixations.size, values.size
    ordered = np.sort(values)
    above = pixels - np.searchsorted(ordered, at_fixations, side="left")  # values >= threshold
    ranks = np.arange(1, count + 1)
    tp = np.concatenate([[0.0], ranks / count, [1.0]])
    fp = np.concatenate([[0.0], (above - ranks) / (pixels - count), [1.0]])
    return float(np.trapezoid(tp, fp))


def fixation_density(fixations: np.ndarray, sigma: float) -> np.ndarray:
    """A fixation map blurred by a Gaussian of ``sigma`` px: the continuous map CC compares."""
    points = fixations.astype(np.float64)
    if sigma <= 0:
        return points
    return np.asarray(cv2.GaussianBlur(points, (0, 0), sigmaX=sigma, sigmaY=sigma))


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items (None: fewer than one item, or
    chance agreement of 1, where kappa is undefined)."""
    if not first:
        return None
    labels = sorted(set(first) | set(second))
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for a, b in zip(first, second, strict=True):
        table[index[a], index[b]] += 1
    total = table.sum()
    observed = np.trace(table) / total
    expected = float((table.sum(axis=1) * table.sum(axis=0)).sum() / total**2)
    return None if expected == 1 else float((observed - expected) / (1 - expected))
