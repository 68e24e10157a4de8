"""Explanations where the answer is known, on the real MobileNetV2 (IMAGENET1K_V1): the cat of
scikit-image's chelsea and the cup of its coffee photo pasted at five known places onto gravel.
The model calls each composite 'Egyptian cat' or 'espresso'; Grad-CAM and occlusion must peak
inside the pasted box (the pointing game, with its 15-px tolerance), gradient maps put most of their mass inside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from composites import OBJECTS

from cvtasks import predict

FASTER = {"occlusion": {"window": 48, "stride": 32}, "integrated-gradients": {"steps": 8}}


def _maps(method: str, paths: list[Path], weights: Path) -> list:
    options = {"model": "mobilenet_v2", "weights": str(weights), "method": method, "quiet": True}
    return [r for _, r in predict("explain", paths, **options, **FASTER.get(method, {}))]


def _where(result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The heatmap and the original-image x, y of each of its pixels' centres."""
    heat = result.targets[0].attribution.heat
    x1, y1, x2, y2 = result.box
    ys, xs = np.mgrid[0 : heat.shape[0], 0 : heat.shape[1]]
    return (
        heat,
        x1 + (xs + 0.5) * (x2 - x1) / heat.shape[1],
        y1 + (ys + 0.5) * (y2 - y1) / heat.shape[0],
    )


def _inside(xs, ys, box, tolerance: float = 0.0) -> np.ndarray:
    x1, y1, x2, y2 = box
    return (
        (xs >= x1 - tolerance)
        & (xs <= x2 + tolerance)
        & (ys >= y1 - tolerance)
        & (ys <= y2 + tolerance)
    )


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_maps_peak_inside_the_pasted_object(method, composites, mnv2_file):
    for name, items in composites.items():
        results = _maps(method, [p for p, _ in items], mnv2_file)
        hits = 0
        for result, (_, box) in zip(results, items, strict=True):
            assert result.targets[0].index == OBJECTS[name][3]  # the model sees the object
            heat, xs, ys = _where(result)
            peak = np.unravel_index(np.argmax(heat), heat.shape)
            hits += bool(_inside(xs[peak], ys[peak], box, tolerance=15))  # Zhang et al. 2016
        assert hits >= 4, f"{method} on the {name}: {hits}/5 peaks inside the box"


@pytest.mark.parametrize("method", ["saliency", "integrated-gradients", "guided-backprop"])
def test_gradient_maps_put_most_mass_inside_the_object(method, composites, mnv2_file):
    items = [item for group in composites.values() for item in group]
    shares, areas = [], []
    for result, (_, box) in zip(
        _maps(method, [p for p, _ in items], mnv2_file), items, strict=True
    ):
        heat, xs, ys = _where(result)
        inside = _inside(xs, ys, box)
        positive = np.clip(heat, 0, None)
        shares.append(positive[inside].sum() / positive.sum())
        areas.append(inside.mean())
    assert np.mean(shares) > 0.5, shares
    assert min(s / a for s, a in zip(shares, areas, strict=True)) > 2.0  # far above chance
