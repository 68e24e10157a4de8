"""The agreement metrics of `eval explain` against Quantus (the explanation-metrics toolkit) and
the MIT/Tuebingen saliency benchmark's MATLAB code, transliterated here line by line."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import cohen_kappa_score

from cvtasks.explain import agreement

quantus = pytest.importorskip("quantus")
warnings.filterwarnings("ignore", module="quantus")


def _cases(count: int = 12, seed: int = 0):
    """Random maps (some with ties and unseen pixels) and box or blob masks."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        heat = rng.random((40, 48)).astype(np.float32)
        if k % 3 == 0:
            heat = np.round(heat * 4) / 4  # ties, several maxima
        mask = np.zeros((40, 48), bool)
        y, x = rng.integers(0, 25), rng.integers(0, 30)
        mask[y : y + rng.integers(3, 15), x : x + rng.integers(3, 18)] = True
        yield heat, mask


def _quantus(metric, heat: np.ndarray, mask: np.ndarray) -> float:
    x = np.zeros((1, 3, *heat.shape), np.float32)
    found = metric(model=None, x_batch=x, y_batch=np.array([0]), a_batch=heat[None, None],
                   s_batch=mask[None, None].astype(float))  # fmt: skip
    return float(found[0])


def test_pointing_game_equals_quantus_on_the_tolerance_grown_evidence():
    game = quantus.PointingGame(disable_warnings=True)
    for tolerance in (0, 3, 15):
        for heat, mask in _cases():
            grown = agreement.within(mask, tolerance)
            ours = agreement.pointing_game(heat, mask, tolerance)
            assert ours == bool(_quantus(game, heat, grown))


def test_pointing_game_tolerance_is_a_distance_and_unseen_pixels_never_win():
    mask = np.zeros((100, 100), bool)
    mask[40:60, 40:60] = True
    heat = np.zeros((100, 100))
    heat[50, 69] = 1.0  # 10 px right of the box's last column (59)
    assert agreement.pointing_game(heat, mask, 15) is True
    assert agreement.pointing_game(heat, mask, 5) is False
    heat[72, 72] = 1.0  # a tie 12.7 px away diagonally (> 10 px): still a hit at 15 (any max)
    assert agreement.pointing_game(heat, mask, 12) is True
    unseen = np.full((100, 100), np.nan)
    unseen[50, 50] = 0.1  # the only seen pixel is the maximum, whatever NaN would compare as
    assert agreement.pointing_game(unseen, mask, 0) is True
    assert agreement.pointing_game(heat, np.zeros_like(mask), 15) is None


def test_energy_pointing_game_equals_quantus_attribution_localisation():
    metric = quantus.AttributionLocalisation(
        positive_attributions=True, abs=False, normalise=False, max_size=1.0, disable_warnings=True
    )
    for heat, mask in _cases():
        signed = heat - 0.3  # negative attributions do not count
        assert agreement.energy_pointing_game(signed, mask) == pytest.approx(
            _quantus(metric, signed, mask), rel=1e-5
        )


def test_top_iou_from_quantus_rank_accuracy_and_top_k_intersection():
    rank = quantus.RelevanceRankAccuracy(disable_warnings=True)
    for heat, mask in _cases():
        heat = heat + np.arange(heat.size).reshape(heat.shape) * 1e-7  # no ties: sorts agree
        size = int(mask.sum())
        hits = _quantus(rank, heat, mask) * size  # |top-|M| pixels inside| / |M|
        assert agreement.top_iou(heat, mask) == pytest.approx(hits / (2 * size - hits))
        k = round(0.1 * heat.size)
        inside = _quantus(quantus.TopKIntersection(k=k, disable_warnings=True), heat, mask) * k
        assert agreement.top_iou(heat, mask, 10.0) == pytest.approx(inside / (k + size - inside))


# ----------------------------------------------------------------- the MIT benchmark's code


def _mit_cc(saliency: np.ndarray, density: np.ndarray) -> float:
    a = (saliency - saliency.mean()) / saliency.std(ddof=1)
    b = (density - density.mean()) / density.std(ddof=1)
    return float(pearsonr(a.ravel(), b.ravel())[0])  # corr2


def _mit_nss(saliency: np.ndarray, fixations: np.ndarray) -> float:
    values = (saliency - saliency.mean()) / saliency.std(ddof=1)
    return float(values[fixations.astype(bool)].mean())


def _mit_auc_judd(saliency: np.ndarray, fixations: np.ndarray, jitter: np.ndarray) -> float:
    """AUC_Judd.m, a loop per fixation as written."""
    s = saliency + jitter
    s = (s - s.min()) / (s.max() - s.min())
    S, F = s.ravel(), fixations.ravel()
    Sth = S[F > 0]
    n_fix, n_pix = len(Sth), len(S)
    threshes = np.sort(Sth)[::-1]
    tp, fp = np.zeros(n_fix + 2), np.zeros(n_fix + 2)
    tp[-1] = fp[-1] = 1
    for i in range(n_fix):
        above = np.sum(threshes[i] <= S)
        tp[i + 1] = (i + 1) / n_fix
        fp[i + 1] = (above - (i + 1)) / (n_pix - n_fix)
    return float(np.trapezoid(tp, fp))


def test_cc_nss_and_auc_judd_equal_the_benchmark_code():
    rng = np.random.default_rng(3)
    for k in range(8):
        saliency = rng.random((30, 40))
        if k % 2:
            saliency = np.round(saliency * 3)  # flat stretches: the jitter breaks their ties
        fixations = rng.random((30, 40)) > 0.97
        density = agreement.fixation_density(fixations, 3.0)
        assert agreement.cc(saliency, density) == pytest.approx(_mit_cc(saliency, density))
        assert agreement.nss(saliency, fixations) == pytest.approx(_mit_nss(saliency, fixations))
        jitter = np.random.default_rng(7).random(saliency.shape).ravel() / 1e7
        expected = _mit_auc_judd(saliency, fixations, jitter.reshape(saliency.shape))
        assert agreement.auc_judd(saliency, fixations, seed=7) == pytest.approx(expected)


def test_saliency_metrics_know_a_perfect_and_an_inverted_map():
    fixations = np.zeros((50, 50), bool)
    fixations[10, 10] = fixations[30, 40] = True
    density = agreement.fixation_density(fixations, 4.0)
    assert agreement.cc(density, density) == pytest.approx(1.0)
    assert agreement.auc_judd(density, fixations) > 0.99
    assert agreement.auc_judd(-density, fixations) <= 0.25 + 1e-9  # the least two fixations allow
    assert agreement.nss(density, fixations) > 4
    assert agreement.cc(np.ones((50, 50)), density) is None  # a constant map: undefined


def test_cohen_kappa_equals_scikit_learn():
    rng = np.random.default_rng(1)
    for _ in range(10):
        a = [str(v) for v in rng.integers(0, 4, 40)]
        b = [v if rng.random() < 0.6 else str(rng.integers(0, 4)) for v in a]
        assert agreement.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert agreement.cohen_kappa(["x", "x"], ["x", "x"]) is None  # chance agreement 1
