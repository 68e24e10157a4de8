"""One explained target's numbers in `eval explain`: agreement with the human evidence or map,
and faithfulness, for the method's map and the random and centre-prior baselines."""

from __future__ import annotations

from typing import Any

import numpy as np

from cvtasks.explain import agreement
from cvtasks.explain.evidence import Evidence, ImageEvidence
from cvtasks.explain.faithfulness import auc
from cvtasks.explain.result import ExplainResult, TargetExplanation

MAPS = ("method", "random", "centre")
LOCALISATION = ("pointing_game", "energy_pointing_game", "top_iou")
SALIENCY = ("cc", "nss", "auc_judd")
FAITHFULNESS = ("deletion_auc", "insertion_auc")
METRICS = LOCALISATION + SALIENCY + FAITHFULNESS


def _round(value: float | bool | None) -> float | bool | None:
    return round(value, 6) if isinstance(value, float) else value


def _iou(a: list[float], b: list[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def evidence_mask(
    evidence: Evidence, found: ImageEvidence, result: ExplainResult, target: TargetExplanation
) -> tuple[np.ndarray | None, str]:
    """The pixels people marked as this target's evidence, and how they were chosen:

    - a detection: the annotated object of its class (by name or --class-map; any class when
      its class maps to none) that it overlaps most, at IoU >= 0.5;
    - a class (classifier, segmenter): every object of the category it maps to; for a
      classifier whose class maps to none, every annotated object of the image."""
    width, height = found.width, found.height
    category = evidence.category_of(target.label)
    if target.box is not None:
        box = [float(v) for v in result.to_original(target.box)]
        candidates = [
            o for o in found.objects if category is None or o.category.lower() == category
        ]
        scored = sorted(((_iou(box, o.box), i) for i, o in enumerate(candidates)), reverse=True)
        if not scored or scored[0][0] < 0.5:
            return None, "no annotated object at IoU >= 0.5"
        chosen = candidates[scored[0][1]]
        return evidence.mask(chosen, width, height), f"{chosen.category} (IoU {scored[0][0]:.2f})"
    chosen_objects = [o for o in found.objects if category and o.category.lower() == category]
    how = category or ""
    if not chosen_objects and category is None and target.region is None:
        chosen_objects, how = list(found.objects), "all objects"
    if not chosen_objects:
        return None, f"no annotated {category or target.label}"
    mask = np.zeros((height, width), bool)
    for item in chosen_objects:
        mask |= evidence.mask(item, width, height)
    return mask, how


def score_maps(
    maps: dict[str, np.ndarray],
    mask: np.ndarray | None,
    found: ImageEvidence | None,
    curves: dict[str, dict[str, np.ndarray]],
    tolerance: float,
    top_percent: float | None,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Each metric for each map (``maps``: name -> H x W in original pixels, NaN unseen)."""
    scores: dict[str, dict[str, Any]] = {}
    for name, heat in maps.items():
        row: dict[str, Any] = dict.fromkeys(METRICS)
        if mask is not None:
            row["pointing_game"] = agreement.pointing_game(heat, mask, tolerance)
            row["energy_pointing_game"] = agreement.energy_pointing_game(heat, mask)
            row["top_iou"] = agreement.top_iou(heat, mask, top_percent)
        if found is not None and found.density is not None:
            row["cc"] = agreement.cc(heat, found.density)
        if found is not None and found.fixations is not None:
            row["nss"] = agreement.nss(heat, found.fixations)
            row["auc_judd"] = agreement.auc_judd(heat, found.fixations, seed)
        row["deletion_auc"] = auc(curves["deletion"][name])
        row["insertion_auc"] = auc(curves["insertion"][name])
        scores[name] = {k: _round(v) for k, v in row.items()}
    return scores


def evaluation_record(
    scores: dict[str, dict[str, Any]],
    curves: dict[str, dict[str, np.ndarray]],
    evidence: str | None,
) -> dict[str, Any]:
    """What a target's record holds: the method's numbers, the baselines', the curves."""
    return {
        **scores["method"],
        "evidence": evidence,
        "baselines": {name: scores[name] for name in MAPS[1:]},
        "curves": {
            kind: {name: [round(float(v), 5) for v in curve] for name, curve in by_map.items()}
            for kind, by_map in curves.items()
        },
    }
