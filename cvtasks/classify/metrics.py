"""Classification metrics from ranked predictions (what classify's records hold), and the
presentation-attack detection metrics of ISO/IEC 30107-3 for two classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Ranked = Sequence[tuple[int, float]]  # (class index, probability), best first


@dataclass
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


COMPACT_OVER = 30  # more classes than this: reports list only those that occur


def confusion(truth: Sequence[int], predicted: Sequence[int], count: int) -> np.ndarray:
    """Rows are the true classes, columns the predicted ones."""
    matrix = np.zeros((count, count), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        matrix[t, p] += 1
    return matrix


def per_class(matrix: np.ndarray, classes: Sequence[str]) -> list[ClassMetrics]:
    """Precision, recall and F1 of each class (0 where undefined, as scikit-learn's
    ``zero_division=0``)."""
    found = []
    for i, label in enumerate(classes):
        tp = int(matrix[i, i])
        predicted, actual = int(matrix[:, i].sum()), int(matrix[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        found.append(ClassMetrics(label, precision, recall, f1, actual))
    return found


def top_k_accuracy(truth: Sequence[int], ranked: Sequence[Ranked], k: int) -> float:
    hits = sum(t in [index for index, _ in r[:k]] for t, r in zip(truth, ranked, strict=True))
    return hits / len(truth) if truth else 0.0


def report(
    truth: Sequence[int], ranked: Sequence[Ranked], classes: Sequence[str]
) -> dict[str, Any]:
    """top-1, top-5, per-class precision/recall/F1/support and the confusion matrix (of a
    model with more than 30 classes, over the classes that occur as truth or prediction)."""
    predicted = [r[0][0] for r in ranked]
    matrix = confusion(truth, predicted, len(classes))
    total = len(classes)
    if total > COMPACT_OVER:  # ImageNet's 1000: the classes that occur (the rest are all 0)
        occurring = [int(i) for i in np.flatnonzero(matrix.sum(axis=0) + matrix.sum(axis=1))]
        matrix = matrix[np.ix_(occurring, occurring)]
        classes = [classes[i] for i in occurring]
    return {
        "n": len(truth),
        "top1": round(top_k_accuracy(truth, ranked, 1), 6),
        "top5": round(top_k_accuracy(truth, ranked, 5), 6) if total > 5 else None,
        "classes": [
            {
                "label": m.label,
                "precision": round(m.precision, 6),
                "recall": round(m.recall, 6),
                "f1": round(m.f1, 6),
                "support": m.support,
            }
            for m in per_class(matrix, classes)
        ],
        "confusion": matrix.tolist(),
        "classes_total": total,  # "classes" and "confusion" list those that occur past 30
    }


def positive_scores(ranked: Sequence[Ranked], positive: int) -> np.ndarray:
    """P(positive) of each image, from its ranked predictions (two classes: both are there)."""
    return np.array([dict(r).get(positive, 0.0) for r in ranked], dtype=np.float64)


def roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates and thresholds (scikit-learn's roc_curve)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, scores)
    return fpr, tpr, thresholds


def equal_error_rate(
    fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray
) -> tuple[float, float]:
    """Where the false acceptance rate (APCER) equals the false rejection rate (BPCER),
    interpolated linearly between the ROC points around the crossing; and that threshold."""
    fnr = 1.0 - tpr
    difference = fnr - fpr  # decreasing along the curve
    crossing = int(np.argmax(difference <= 0)) if (difference <= 0).any() else len(fpr) - 1
    if crossing == 0:
        return float(fpr[0]), float(thresholds[0])
    d0, d1 = difference[crossing - 1], difference[crossing]
    weight = d0 / (d0 - d1) if d0 != d1 else 0.0
    eer = fpr[crossing - 1] + weight * (fpr[crossing] - fpr[crossing - 1])
    low, high = thresholds[crossing - 1], thresholds[crossing]
    threshold = high if not np.isfinite(low) else low + weight * (high - low)
    return float(eer), float(threshold)


def attack_metrics(
    truth: Sequence[int], ranked: Sequence[Ranked], positive: int, threshold: float
) -> dict[str, Any]:
    """ISO/IEC 30107-3 with the bona fide class ``positive``: a presentation is accepted as
    bona fide when P(bona fide) >= ``threshold``.

    APCER: the share of attack presentations accepted as bona fide; BPCER: the share of bona
    fide presentations rejected as attacks; ACER: their mean. ROC AUC and EER (with its
    threshold) summarise every threshold."""
    labels = np.array([t == positive for t in truth], dtype=bool)
    scores = positive_scores(ranked, positive)
    attacks, bona_fide = ~labels, labels
    accepted = scores >= threshold
    apcer = float(accepted[attacks].mean()) if attacks.any() else 0.0
    bpcer = float((~accepted[bona_fide]).mean()) if bona_fide.any() else 0.0
    result: dict[str, Any] = {
        "threshold": threshold,
        "apcer": round(apcer, 6),
        "bpcer": round(bpcer, 6),
        "acer": round((apcer + bpcer) / 2, 6),
    }
    if attacks.any() and bona_fide.any():
        from sklearn.metrics import roc_auc_score

        fpr, tpr, thresholds = roc(labels, scores)
        eer, at = equal_error_rate(fpr, tpr, thresholds)
        result.update(
            roc_auc=round(float(roc_auc_score(labels, scores)), 6),
            eer=round(eer, 6),
            eer_threshold=round(at, 6),
        )
    else:
        result.update(roc_auc=None, eer=None, eer_threshold=None)
    return result


BONA_FIDE_WORDS = ("real", "live", "bona", "genuine", "authentic")


def default_positive(classes: Sequence[str]) -> int:
    """The bona fide class when none is named: the first that says so, else class 0."""
    for i, name in enumerate(classes):
        if any(word in name.lower() for word in BONA_FIDE_WORDS):
            return i
    return 0
