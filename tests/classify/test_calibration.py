"""Calibration and decisions: ECE and reliability bins, temperature scaling, thresholds at a
target APCER/BPCER; `eval classify --calibrate` writes them into the run folder and
`classify -w RUN` applies them (a `decision` per record)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from fake_faces import make_set
from helpers import jsonl

from cvtasks.classify.calibration import fit_temperature, reliability, scaled, threshold_for


def noisy_predictions(n: int = 400, classes: int = 3, sharpness: float = 3.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), truth] += 1.2
    logits *= sharpness  # overconfident
    shifted = logits - logits.max(1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(1, keepdims=True)), truth  # log-probabilities


def test_ece_equals_its_definition_computed_here():
    logs, truth = noisy_predictions()
    probs = np.exp(logs)
    confidence, predicted = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, 16)
    expected = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = abs((predicted[inside] == truth[inside]).mean() - confidence[inside].mean())
            expected += inside.mean() * gap
    assert reliability(probs, truth).ece == pytest.approx(expected, abs=1e-12)


def test_temperature_equals_scipy_and_lowers_ece():
    from scipy.optimize import minimize_scalar

    logs, truth = noisy_predictions()

    def nll(log_t: float) -> float:
        p = scaled(logs, float(np.exp(log_t)))[np.arange(len(truth)), truth]
        return float(-np.log(p).mean())

    peer = float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20)), method="bounded",
                                        options={"xatol": 1e-9}).x))  # fmt: skip
    ours = fit_temperature(logs, truth)
    assert ours == pytest.approx(peer, rel=1e-4) and ours > 1.5  # overconfident: T > 1
    before = reliability(np.exp(logs), truth).ece
    assert reliability(scaled(logs, ours), truth).ece < 0.5 * before


def test_thresholds_at_targets_equal_a_brute_force_over_the_roc():
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(3)
    bona_fide = rng.random(300) < 0.4
    scores = np.clip(rng.normal(np.where(bona_fide, 0.7, 0.35), 0.18), 0, 1).round(3)
    fpr, tpr, thresholds = roc_curve(bona_fide, scores, drop_intermediate=False)
    for target in (0.0, 0.01, 0.05, 0.2):
        found = threshold_for(scores, bona_fide, apcer=target)
        ok = fpr <= target  # APCER = FPR: the most bona fide kept, then the fewest attacks
        order = np.lexsort((fpr[ok], -tpr[ok]))
        best = thresholds[ok][order[0]]
        expected = 1.000001 if not np.isfinite(best) else best
        assert found["threshold"] == pytest.approx(expected, abs=1e-6)
        assert found["apcer"] <= target
        assert found["bpcer"] == pytest.approx(1 - tpr[ok].max(), abs=1e-6)
    for target in (0.01, 0.1):
        found = threshold_for(scores, bona_fide, bpcer=target)
        ok = (1 - tpr) <= target
        order = np.lexsort((-tpr[ok], fpr[ok]))
        assert found["threshold"] == pytest.approx(thresholds[ok][order[0]], abs=1e-6)
        assert found["apcer"] == pytest.approx(fpr[ok].min(), abs=1e-6)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A quickly trained, imperfect two-class run folder and held-out data."""
    from typer.testing import CliRunner

    from cvtasks.cli.app import app

    root = tmp_path_factory.mktemp("calibration")
    data = make_set(root / "data", per_class=40, seed=0)
    heldout = make_set(root / "heldout", per_class=30, seed=5)
    folder = root / "run"
    args = ["train", data, "-m", "resnet18", "-w", "none", "--img-size", "64", "-b", "16",
            "--lr", "0.003", "--augment", "none", "--epochs", "2", "-q", "-o", folder]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return folder, heldout


def test_calibrate_writes_the_run_and_classify_decides_by_it(cli, small_run, tmp_path):
    folder, heldout = small_run
    heldout = heldout / "val" if (heldout / "val").is_dir() else heldout
    plain = json.loads(cli(["eval", "classify", heldout, "-w", folder, "-f", "json"]).stdout)
    assert 0 <= plain["ece"] <= 1 and plain["temperature"] == 1
    assert sum(plain["reliability"]["counts"]) == plain["n"]

    out = tmp_path / "eval"
    calibrated = cli(["eval", "classify", heldout, "-w", folder, "--calibrate", "--target-apcer",
                      "0.1", "-o", out, "-f", "json"])  # fmt: skip
    assert calibrated.exit_code == 0, calibrated.stderr
    report = json.loads(calibrated.stdout)
    chosen = report["calibration"]
    assert chosen["rule"] == "APCER <= 0.1" and chosen["positive"] == "real"
    assert chosen["ece_after"] <= chosen["ece_before"] + 1e-9
    written = json.loads((folder / "calibration.json").read_text())
    assert written["temperature"] == chosen["temperature"]
    assert (out / "reliability.png").is_file()
    assert "eval --calibrate: temperature" in calibrated.stderr

    # classify -w RUN applies the temperature and decides by the threshold
    records = jsonl(cli(["classify", heldout, "-w", folder, "-f", "jsonl", "-q"]).stdout)
    threshold = written["threshold"]
    for record in records:
        decision = record["decision"]
        assert decision["threshold"] == threshold and decision["rule"] == "APCER <= 0.1"
        p_real = next(p["score"] for p in record["predictions"] if p["label"] == "real")
        assert decision["score"] == pytest.approx(p_real, abs=1e-6)
        assert decision["label"] == ("real" if p_real >= threshold else "fake")
    # eval with the calibrated run measures what classify decides: APCER within the target
    after = json.loads(cli(["eval", "classify", heldout, "-w", folder, "-f", "json"]).stdout)
    assert after["threshold"] == threshold and after["temperature"] == written["temperature"]
    assert after["apcer"] <= 0.1 + 1e-9
    assert after["ece"] == pytest.approx(chosen["ece_after"], abs=1e-4)


def test_calibrate_needs_a_run_folder(cli, small_run, r18_file):
    _, heldout = small_run
    result = cli(["eval", "classify", heldout, "-m", "resnet18", "-w", r18_file, "--calibrate"])
    assert result.exit_code == 2 and "pass -w runs/NAME" in result.stderr
