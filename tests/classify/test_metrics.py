"""Metrics on hand-made predictions equal scikit-learn's; PAD metrics by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)

from cvtasks.classify.metrics import attack_metrics, default_positive, equal_error_rate, report, roc


def ranked_from(probabilities: np.ndarray, k: int = 5):
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        [(int(i), float(p[i])) for i in row] for p, row in zip(probabilities, order, strict=True)
    ]


def test_report_equals_scikit_learn():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 6, size=200)
    logits = rng.normal(size=(200, 6)) + 1.5 * np.eye(6)[truth]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ours = report(truth.tolist(), ranked_from(probabilities), [f"c{i}" for i in range(6)])
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, zero_division=0
    )
    assert ours["top1"] == pytest.approx((predicted == truth).mean(), abs=1e-6)
    assert ours["top5"] == pytest.approx(top_k_accuracy_score(truth, probabilities, k=5), abs=1e-6)
    assert ours["confusion"] == confusion_matrix(truth, predicted).tolist()
    for mine, p, r, f, s in zip(ours["classes"], precision, recall, f1, support, strict=True):
        assert (mine["precision"], mine["recall"], mine["f1"]) == pytest.approx((p, r, f), abs=1e-6)
        assert mine["support"] == s


def test_a_class_never_predicted_has_zero_precision():
    ours = report([0, 0, 1, 2], [[(0, 0.9)], [(0, 0.8)], [(0, 0.7)], [(0, 0.6)]], ["a", "b", "c"])
    assert [c["precision"] for c in ours["classes"]] == [0.5, 0.0, 0.0]
    assert [c["recall"] for c in ours["classes"]] == [1.0, 0.0, 0.0]


def test_apcer_bpcer_acer_by_hand():
    # bona fide = class 1. Scores are P(bona fide); accepted when >= 0.5.
    truth = [1, 1, 1, 1, 0, 0, 0, 0, 0]
    p_bona = [0.9, 0.8, 0.4, 0.7, 0.1, 0.6, 0.2, 0.55, 0.3]
    ranked = [[(1, p), (0, 1 - p)] if p >= 0.5 else [(0, 1 - p), (1, p)] for p in p_bona]
    found = attack_metrics(truth, ranked, positive=1, threshold=0.5)
    # attacks accepted: 0.6 and 0.55 of 5 attacks; bona fide rejected: 0.4 of 4
    assert found["apcer"] == pytest.approx(2 / 5) and found["bpcer"] == pytest.approx(1 / 4)
    assert found["acer"] == pytest.approx((2 / 5 + 1 / 4) / 2)
    labels = np.array(truth) == 1
    assert found["roc_auc"] == pytest.approx(roc_auc_score(labels, p_bona), abs=1e-6)
    strict = attack_metrics(truth, ranked, positive=1, threshold=0.75)
    assert (strict["apcer"], strict["bpcer"]) == (0.0, pytest.approx(2 / 4))


def test_equal_error_rate_where_the_rates_cross():
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(500, bool), np.zeros(500, bool)]
    scores = np.r_[rng.normal(1.0, 1.0, 500), rng.normal(-1.0, 1.0, 500)]
    fpr, tpr, thresholds = roc(labels, scores)
    eer, threshold = equal_error_rate(fpr, tpr, thresholds)
    far = (scores[~labels] >= threshold).mean()
    frr = (scores[labels] < threshold).mean()
    assert abs(far - frr) < 0.01 and eer == pytest.approx((far + frr) / 2, abs=0.01)
    assert eer == pytest.approx(0.159, abs=0.03)  # two unit normals 2 apart: Phi(-1)
    perfect = equal_error_rate(*roc(labels, labels.astype(float)))
    assert perfect[0] == 0.0


def test_default_bona_fide_class():
    assert default_positive(["fake", "real"]) == 1
    assert default_positive(["attack", "live"]) == 1
    assert default_positive(["cats", "dogs"]) == 0


def test_no_top5_with_five_classes_or_fewer():
    two = report(
        [0, 1, 1], [[(0, 0.9), (1, 0.1)], [(0, 0.6), (1, 0.4)], [(1, 0.8), (0, 0.2)]], ["a", "b"]
    )
    assert two["top5"] is None and two["top1"] == pytest.approx(2 / 3, abs=1e-6)


def test_lists_in_messages_are_capped():
    from cvtasks.errors import listed

    assert listed(["a", "b"]) == "a, b"
    assert listed(range(1000)) == "0, 1, 2, 3, 4, 5, 6, 7 … and 992 more"


def test_many_classes_list_those_that_occur():
    """ImageNet's 1000 classes: the report keeps the classes that occur (nothing else is
    non-zero) and says how many the model has."""
    classes = [f"c{i}" for i in range(1000)]
    truth = [i % 40 for i in range(200)] + [7] * 10  # 40 classes occur
    ranked = [[((t + (i % 3 == 0)) % 40, 0.9)] for i, t in enumerate(truth)]
    ours = report(truth, ranked, classes)
    assert ours["classes_total"] == 1000 and len(ours["classes"]) == 40
    assert ours["top5"] is not None  # of the model's 1000 classes
    full = confusion_matrix(truth, [r[0][0] for r in ranked], labels=range(40))
    assert ours["confusion"] == full.tolist()  # lossless: the other 960 rows and columns are 0
    assert sum(c["support"] for c in ours["classes"]) == len(truth)
    small = report([0, 1], [[(0, 0.9)], [(0, 0.8)]], ["a", "b", "c"])
    assert small["confusion"] == [[1, 0, 0], [1, 0, 0], [0, 0, 0]]  # few classes: all kept
