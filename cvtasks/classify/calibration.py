"""How far to trust a classifier's probabilities, and where to put a two-class decision:
expected calibration error and its reliability bins, temperature scaling (Guo et al. 2017),
and the thresholds that meet a target APCER or BPCER (ISO/IEC 30107-3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 15  # Guo et al.'s equal-width confidence bins


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin (equal width over [0, 1]): images, mean confidence, accuracy."""

    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        total = self.counts.sum()
        if total == 0:
            return 0.0
        gaps = np.abs(self.accuracy - self.confidence) * self.counts
        return float(np.nansum(gaps) / total)


def reliability(probabilities: np.ndarray, truth: np.ndarray, bins: int = BINS) -> Reliability:
    """Bins of the top-1 confidence; bin k holds confidences in (k/bins, (k+1)/bins]."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, confidence, minlength=bins) / counts
        accuracy = np.bincount(which, correct.astype(float), minlength=bins) / counts
    return Reliability(counts, mean_conf, accuracy)


def scaled_log(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    """log softmax(logits / T) from log softmax(logits) (which is logits minus a constant)."""
    z = np.asarray(log_probs, np.float64) / temperature
    top = z.max(axis=1, keepdims=True)
    return z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))


def scaled(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) from the log-probabilities log softmax(logits)."""
    return np.exp(scaled_log(log_probs, temperature))


def _nll(log_probs: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    return float(-scaled_log(log_probs, temperature)[np.arange(len(truth)), truth].mean())


def fit_temperature(log_probs: np.ndarray, truth: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of the true classes
    (golden-section search on log T over [1/20, 20]; the NLL is unimodal in log T)."""
    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = _nll(log_probs, truth, math.exp(a)), _nll(log_probs, truth, math.exp(b))
    for _ in range(80):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = _nll(log_probs, truth, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = _nll(log_probs, truth, math.exp(b))
    return math.exp((low + high) / 2)


def floor6(value: float) -> float:
    """Six decimals, rounded down: a threshold written shorter must accept what it did."""
    return math.floor(value * 1e6) / 1e6


def threshold_for(
    scores: np.ndarray, bona_fide: np.ndarray, *, apcer: float | None = None,
    bpcer: float | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """The threshold on P(bona fide) (accept when score >= t) meeting a target: with
    ``apcer``, among the thresholds whose APCER is at most it the one with the lowest BPCER
    (then the lowest APCER); with ``bpcer`` the other way round. None when the data hold no
    attack or no bona fide presentation."""
    attacks = ~bona_fide
    if not attacks.any() or not bona_fide.any():
        return None
    candidates = np.unique(np.concatenate([scores, [np.inf]]))
    attack_scores, bona_scores = np.sort(scores[attacks]), np.sort(scores[bona_fide])
    # at threshold t: attacks scoring >= t are accepted, bona fide scoring < t rejected
    below = np.searchsorted(attack_scores, candidates, "left")
    apcers = (len(attack_scores) - below) / len(attack_scores)  # as a mean of booleans is
    bpcers = np.searchsorted(bona_scores, candidates, "left") / len(bona_scores)
    if apcer is not None:  # the fewest bona fide rejected, then the fewest attacks accepted
        ok, first, then = apcers <= apcer, bpcers, apcers
    else:
        assert bpcer is not None
        ok, first, then = bpcers <= bpcer, apcers, bpcers
    pick = np.flatnonzero(ok)[np.lexsort((candidates[ok], then[ok], first[ok]))[0]]
    t, a, b = candidates[pick], float(apcers[pick]), float(bpcers[pick])
    return {  # accepting nothing is a threshold just above any probability
        "threshold": floor6(float(t)) if np.isfinite(t) else 1.000001,
        "apcer": round(a, 6),
        "bpcer": round(b, 6),
    }


CALIBRATION = "calibration.json"  # in a run folder, written by `eval classify --calibrate`


def read_calibration(spec: str) -> dict[str, Any] | None:
    """The calibration of the run folder ``spec`` (temperature, decision), if it has one."""
    import json
    from pathlib import Path

    from cvtasks.errors import WeightsError
    from cvtasks.run_spec import is_run_folder

    if not is_run_folder(spec.strip()):
        return None
    path = Path(spec.strip()).expanduser() / CALIBRATION
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        float(data["temperature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path} is not a usable calibration ({exc})") from None
    return dict(data)


def write_calibration(spec: str, data: dict[str, Any]) -> str:
    import json
    from pathlib import Path

    from cvtasks.io.atomic import atomic_write_text

    path = Path(spec.strip()).expanduser() / CALIBRATION
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return str(path)


def _bins_record(rel: Reliability) -> dict[str, list[Any]]:
    def clean(values: np.ndarray) -> list[float | None]:
        return [None if not np.isfinite(v) else round(float(v), 6) for v in values]

    return {
        "counts": [int(c) for c in rel.counts],
        "confidence": clean(rel.confidence),
        "accuracy": clean(rel.accuracy),
    }


def evaluate(
    cfg: Any,
    log_probs: np.ndarray,
    truth: np.ndarray,
    classes: list[str],
    positive: int | None,
    temperature: float,
) -> dict[str, Any]:
    """The calibration part of an eval report: ECE and its bins (of the probabilities as the
    model gives them, after the run folder's temperature if it has one); for two classes the
    thresholds at the target APCER/BPCER; with ``cfg.calibrate``, a fitted temperature and
    decision threshold, written to the run folder."""
    from cvtasks.classify import metrics

    probabilities = np.exp(np.asarray(log_probs, np.float64))
    rel = reliability(probabilities, truth)
    out: dict[str, Any] = {
        "ece": round(rel.ece, 6),
        "reliability": _bins_record(rel),
        "temperature": round(temperature, 6),
    }
    bona_fide = truth == positive if positive is not None else None
    if bona_fide is not None:
        scores = probabilities[:, positive]
        if cfg.target_apcer is not None:
            out["at_target_apcer"] = threshold_for(scores, bona_fide, apcer=cfg.target_apcer)
        if cfg.target_bpcer is not None:
            out["at_target_bpcer"] = threshold_for(scores, bona_fide, bpcer=cfg.target_bpcer)
    if not cfg.calibrate:
        return out
    fitted = fit_temperature(log_probs, truth)
    if not 0.0505 < fitted < 19.8:
        from cvtasks.log import warn

        warn(
            f"--calibrate: the temperature went to its bound ({fitted:.3g}): the model "
            "separates these images perfectly (or not at all), so their likelihood says "
            "little; calibrate on harder held-out images"
        )
    calibrated = scaled(log_probs, fitted)
    after = reliability(calibrated, truth)
    chosen: dict[str, Any] = {
        "temperature": round(fitted, 6),
        "ece_before": round(rel.ece, 6),
        "ece_after": round(after.ece, 6),
        "reliability_after": _bins_record(after),
        "positive": None,
        "threshold": None,
        "rule": None,
        "fitted_on": f"{cfg.inputs[0]} ({len(truth)} images)",
    }
    if bona_fide is not None and bona_fide.any() and (~bona_fide).any():
        scores = calibrated[:, positive]
        if cfg.target_apcer is not None:
            pick = threshold_for(scores, bona_fide, apcer=cfg.target_apcer)
            rule = f"APCER <= {cfg.target_apcer:g}"
        elif cfg.target_bpcer is not None:
            pick = threshold_for(scores, bona_fide, bpcer=cfg.target_bpcer)
            rule = f"BPCER <= {cfg.target_bpcer:g}"
        else:
            fpr, tpr, thresholds = metrics.roc(bona_fide, scores)
            _, at = metrics.equal_error_rate(fpr, tpr, thresholds)
            pick, rule = {"threshold": floor6(min(at, 1.000001))}, "EER"
        assert pick is not None and positive is not None
        chosen.update(positive=classes[positive], threshold=pick["threshold"], rule=rule)
    chosen["written"] = write_calibration(str(cfg.weights), chosen)
    out["calibration"] = chosen
    return out
