"""Deletion and insertion curves against Quantus' pixel flipping and RISE's own evaluation loop
(CausalMetric in eclique/RISE's evaluation.py, transliterated), and their baselines."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from cvtasks.explain.faithfulness import (
    auc,
    causal_curve,
    centre_map,
    curves,
    insertion_start,
    random_map,
)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(24, 4),
    ).eval()  # fmt: skip


def test_deletion_equals_quantus_pixel_flipping():
    quantus = pytest.importorskip("quantus")
    warnings.filterwarnings("ignore", module="quantus")
    model = _model()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    heat = rng.random((12, 12)).astype(np.float32)
    flipping = quantus.PixelFlipping(features_in_step=6, perturb_baseline=0.0, normalise=False,
                                     disable_warnings=True)  # fmt: skip
    theirs = flipping(model=model, x_batch=x, y_batch=np.array([2]), a_batch=heat[None, None],
                      softmax=True, device="cpu")[0]  # fmt: skip
    tensor = torch.from_numpy(x)
    ours = causal_curve(lambda b: model(b).softmax(1)[:, 2], tensor, heat,
                        torch.zeros_like(tensor), steps=24, batch_size=5)  # fmt: skip
    # Quantus flips 6 of the 3 x 144 features a step: 6 pixels (all channels) every 3 steps.
    assert ours[1:] == pytest.approx(np.asarray(theirs)[2::3], abs=1e-6)
    with torch.no_grad():
        assert ours[0] == pytest.approx(float(model(tensor).softmax(1)[0, 2]))


def _rise(model, image: torch.Tensor, explanation: np.ndarray, mode: str, step: int,
          substrate) -> np.ndarray:  # fmt: skip
    """RISE's CausalMetric.single_run, for the class ``c`` of the unperturbed prediction."""
    hw = image.shape[-1] * image.shape[-2]
    c = int(model(image).argmax())
    n_steps = (hw + step - 1) // step
    if mode == "del":
        start, finish = image.clone(), substrate(image)
    else:
        start, finish = substrate(image), image.clone()
    scores = np.empty(n_steps + 1)
    salient_order = np.flip(np.argsort(explanation.reshape(-1, hw), axis=1), axis=-1)
    for i in range(n_steps + 1):
        scores[i] = float(model(start).softmax(1)[0, c])
        if i < n_steps:
            coords = salient_order[:, step * i : step * (i + 1)]
            flat = start.numpy().reshape(1, 3, hw)
            flat[0, :, coords] = finish.numpy().reshape(1, 3, hw)[0, :, coords]
            start = torch.from_numpy(flat.reshape(start.shape))
    return scores


def test_deletion_and_insertion_equal_rises_own_loop():
    model = _model()
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((1, 3, 16, 16)).astype(np.float32))
    heat = rng.random((16, 16)).astype(np.float32)  # distinct values: both sorts agree
    with torch.no_grad():
        target = int(model(x).argmax())

        def score(b):
            return model(b).softmax(1)[:, target]

        found = curves(score, x, {"method": heat}, torch.zeros_like(x), steps=16, batch_size=4)
        deletion = _rise(model, x, heat, "del", 16, torch.zeros_like)
        insertion = _rise(model, x, heat, "ins", 16, insertion_start)
    assert found["deletion"]["method"] == pytest.approx(deletion, abs=1e-6)
    assert found["insertion"]["method"] == pytest.approx(insertion, abs=1e-6)
    # RISE's auc(): (sum - first/2 - last/2) / (n - 1)
    for curve in (deletion, insertion):
        assert auc(curve) == pytest.approx((curve.sum() - curve[0] / 2 - curve[-1] / 2) / 16)


def test_a_map_of_what_the_score_uses_beats_the_baselines():
    """A score that is the mean of the image's top-left quarter: a map of that quarter deletes
    it first (deletion AUC low, insertion high); the random and centre maps do not."""

    def score(batch: torch.Tensor) -> torch.Tensor:
        return batch[:, :, :16, :16].mean(dim=(1, 2, 3))

    x = torch.ones(1, 3, 32, 32)
    truth = np.zeros((32, 32), np.float32)
    truth[:16, :16] = 1 + np.random.default_rng(0).random((16, 16))
    maps = {"method": truth, "random": random_map((32, 32), 0), "centre": centre_map((32, 32))}
    found = curves(score, x, maps, torch.zeros_like(x), steps=32, batch_size=8)
    deletion = {name: auc(c) for name, c in found["deletion"].items()}
    assert deletion["method"] < 0.15 < min(deletion["random"], deletion["centre"])
    assert found["deletion"]["method"][0] == 1.0 and found["deletion"]["method"][-1] == 0.0


def test_the_baseline_maps():
    assert random_map((20, 30), 3).shape == (20, 30)
    assert np.array_equal(random_map((20, 30), 3), random_map((20, 30), 3))
    assert not np.array_equal(random_map((20, 30), 3), random_map((20, 30), 4))
    centre = centre_map((21, 31))
    assert np.unravel_index(np.argmax(centre), centre.shape) == (10, 15)
    assert centre[0, 0] < 0.03 and centre.max() == pytest.approx(1.0, abs=0.01)
