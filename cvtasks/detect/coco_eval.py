"""Scoring detections against COCO ground truth with pycocotools' ``COCOeval`` (the reference
arithmetic): its 12 ``stats``, AP per class, precision and recall at an operating score, and
a detection confusion matrix with a background row and column.

Predictions arrive as cvtasks records (``source``, ``predictions`` with ``label``, ``score``,
``box`` [x1, y1, x2, y2]); images are matched to the ground truth by file name, the model's
classes to its categories by name (or ``--class-map``)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from cvtasks.errors import UsageError

STAT_NAMES = (
    "ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
    "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large",
)  # fmt: skip
KEYPOINT_STAT_NAMES = (
    "ap", "ap50", "ap75", "ap_medium", "ap_large", "ar", "ar50", "ar75", "ar_medium", "ar_large",
)  # fmt: skip


@dataclass
class Matching:
    """How predictions met the ground truth: what was scored and what was left out."""

    image_ids: list[int]
    category_of: dict[str, int]  # model label -> GT category id
    unmatched_images: list[str] = field(default_factory=list)  # predicted, not in the GT
    unpredicted_images: list[str] = field(default_factory=list)  # in the GT, no record
    unmapped_labels: list[str] = field(default_factory=list)  # model classes not in the GT
    unscored_categories: list[str] = field(default_factory=list)  # GT classes no model class has
    scored: list[int] = field(default_factory=list)  # the GT category ids scored


def load_ground_truth(path: str | Path) -> Any:
    """pycocotools' COCO object of a COCO instances JSON (its prints silenced)."""
    from pycocotools.coco import COCO

    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"--gt {file}: no such file (a COCO instances JSON)")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(file))
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--gt {file} is not a COCO instances JSON ({exc})") from None


def parse_class_map(pairs: Sequence[str]) -> dict[str, str]:
    """``--class-map model=gt,...`` (names, case as written)."""
    mapping = {}
    for pair in pairs:
        model, sep, gt = pair.partition("=")
        if not sep or not model.strip() or not gt.strip():
            raise UsageError(f"--class-map takes model_name=gt_name pairs, got {pair!r}")
        mapping[model.strip()] = gt.strip()
    return mapping


def match(
    gt: Any,
    records: Sequence[Mapping[str, Any]],
    class_map: Mapping[str, str],
    all_images: bool,
    model_labels: Sequence[str] | None = None,
) -> Matching:
    """Images by file name, labels by name (case-insensitive) or ``class_map``. With the
    model's classes known, a GT category none of them maps to is not scored; without (saved
    predictions), every GT category is, one never predicted as all missed."""
    by_name: dict[str, int] = {}
    for image in gt.dataset.get("images", []):
        by_name.setdefault(PurePath(str(image["file_name"])).name, int(image["id"]))
    seen: dict[int, str] = {}
    unmatched = []
    for record in records:
        name = PurePath(str(record["source"])).name
        if name in by_name:
            seen[by_name[name]] = name
        else:
            unmatched.append(name)
    categories = {c["name"].lower(): int(c["id"]) for c in gt.dataset.get("categories", [])}
    names = {int(c["id"]): c["name"] for c in gt.dataset.get("categories", [])}
    predicted = {p["label"] for r in records for p in r.get("predictions") or []}
    labels = sorted(predicted | set(model_labels or []))
    category_of, unmapped = {}, []
    for label in labels:
        target = class_map.get(label, label).lower()
        if target in categories:
            category_of[label] = categories[target]
        else:
            unmapped.append(label)
    for model, target in class_map.items():
        if target.lower() not in categories:
            raise UsageError(f"--class-map {model}={target}: the ground truth has no '{target}'")
        category_of.setdefault(model, categories[target.lower()])
    image_ids = sorted(by_name.values()) if all_images else sorted(seen)
    unpredicted = sorted(n for n, i in by_name.items() if i not in seen) if all_images else []
    scored = set(category_of.values()) if model_labels is not None else set(names)
    unscored = sorted(names[i] for i in names if i not in scored)
    unmapped = [label for label in unmapped if label in predicted]  # what was dropped
    result = Matching(image_ids, category_of, sorted(unmatched), unpredicted, unmapped, unscored)
    result.scored = sorted(scored)
    return result


def results_of(
    gt: Any, records: Iterable[Mapping[str, Any]], matching: Matching, iou_type: str = "bbox"
) -> list[dict[str, Any]]:
    """COCO results (``image_id``, ``category_id``, ``bbox`` x y w h, ``score``; with
    ``segmentation`` (RLE) for segm, ``keypoints`` (x, y, v per point) for keypoints)."""
    by_name = {PurePath(str(i["file_name"])).name: int(i["id"]) for i in gt.dataset["images"]}
    sizes = {int(i["id"]): (int(i["height"]), int(i["width"])) for i in gt.dataset["images"]}
    out = []
    for record in records:
        image_id = by_name.get(PurePath(str(record["source"])).name)
        if image_id is None:
            continue
        for p in record.get("predictions") or []:
            category = matching.category_of.get(p["label"])
            if category is None:
                continue
            x1, y1, x2, y2 = p["box"]
            result: dict[str, Any] = {
                "image_id": image_id,
                "category_id": category,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(p["score"]),
            }
            if iou_type == "segm":
                result["segmentation"] = _rle(p, sizes[image_id])
            elif iou_type == "keypoints":
                result["keypoints"] = _keypoints(gt, category, p)
            out.append(result)
    return out


def _rle(prediction: Mapping[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """A record's mask as COCO RLE (its ``mask``, or its ``polygons`` rasterised)."""
    from pycocotools import mask as mask_utils

    if "mask" in prediction:
        return dict(prediction["mask"])
    if "polygons" in prediction:
        rle = mask_utils.merge(mask_utils.frPyObjects(prediction["polygons"], *size))
        return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}
    raise UsageError("eval segment needs masks: these predictions have none (a box detector?)")


def _keypoints(gt: Any, category: int, prediction: Mapping[str, Any]) -> list[float]:
    """A record's named keypoints in the order of the GT category's ``keypoints`` list."""
    named = prediction.get("keypoints")
    if isinstance(named, list) and len(named) % 3 == 0:  # already flat (a COCO export)
        return [float(v) if k % 3 != 2 else 1.0 for k, v in enumerate(named)]
    if not isinstance(named, Mapping):
        raise UsageError("eval pose needs keypoints: these predictions have none")
    order = gt.loadCats([category])[0].get("keypoints") or list(named)
    flat: list[float] = []
    for name in order:
        x, y, _score = named.get(name, [0.0, 0.0, 0.0])
        flat += [float(x), float(y), 1.0]
    return flat


def coco_evaluate(
    gt: Any,
    results: list[dict[str, Any]],
    image_ids: Sequence[int],
    category_ids: Sequence[int],
    iou_type: str = "bbox",
) -> Any:
    """COCOeval(iouType=...) run to its summary over these images and categories."""
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        detections = gt.loadRes(results) if results else _empty_results(gt)
        evaluator = COCOeval(gt, detections, iou_type)
        evaluator.params.imgIds = list(image_ids)
        evaluator.params.catIds = sorted(category_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _empty_results(gt: Any) -> Any:
    """A results object with no detection (loadRes refuses an empty list)."""
    from pycocotools.coco import COCO

    empty = COCO()
    empty.dataset = {"images": list(gt.dataset["images"]), "annotations": [],
                     "categories": list(gt.dataset["categories"])}  # fmt: skip
    empty.createIndex()
    return empty


def per_class_ap(evaluator: Any, names: Mapping[int, str]) -> list[dict[str, Any]]:
    """AP@[.5:.95] and AP@.5 per category (all areas, 100 detections), -1 cells left out."""
    precision = evaluator.eval["precision"]  # [iou, recall, class, area, max dets]
    rows = []
    for k, category in enumerate(evaluator.params.catIds):
        cells = precision[:, :, k, 0, -1]
        at50 = precision[0, :, k, 0, -1]
        rows.append(
            {
                "label": names[category],
                "category_id": int(category),
                "ap": _mean(cells),
                "ap50": _mean(at50),
                "instances": len(
                    evaluator.cocoGt.getAnnIds(
                        imgIds=evaluator.params.imgIds, catIds=[category], iscrowd=False
                    )
                ),
            }
        )
    return rows


def _mean(values: np.ndarray) -> float | None:
    kept = values[values > -1]
    return round(float(kept.mean()), 6) if kept.size else None


def at_operating_score(evaluator: Any, conf: float) -> dict[str, Any]:
    """Precision and recall of the detections scoring at least ``conf``, at IoU 0.5 (COCO's
    own matching: crowd and ignored ground truth neither count nor are missed)."""
    tp = fp = positives = 0
    per: dict[int, list[int]] = {}
    for entry in evaluator.evalImgs:
        if entry is None or entry["aRng"] != evaluator.params.areaRng[0]:
            continue
        if entry["maxDet"] != evaluator.params.maxDets[-1]:
            continue
        scores = np.asarray(entry["dtScores"], dtype=float)
        t = f = 0
        if len(scores):  # row 0 of the matches: IoU 0.5
            keep = scores >= conf
            matched = np.asarray(entry["dtMatches"], dtype=float)[0][keep] > 0
            counted = ~np.asarray(entry["dtIgnore"], dtype=bool)[0][keep]
            t, f = int((matched & counted).sum()), int((~matched & counted).sum())
        p = int((~np.array(entry["gtIgnore"]).astype(bool)).sum())
        tp, fp, positives = tp + t, fp + f, positives + p
        cell = per.setdefault(int(entry["category_id"]), [0, 0, 0])
        cell[0] += t
        cell[1] += f
        cell[2] += p
    return {
        "conf": conf,
        "precision": round(tp / (tp + fp), 6) if tp + fp else None,
        "recall": round(tp / positives, 6) if positives else None,
        "per_class": {c: v for c, v in per.items()},
    }


def confusion_with_background(
    gt: Any,
    results: list[dict[str, Any]],
    image_ids: Sequence[int],
    category_ids: Sequence[int],
    conf: float,
    iou: float = 0.5,
) -> np.ndarray:
    """Rows: true class (last: background = a detection matching nothing); columns: predicted
    class (last: background = a ground-truth object no detection found). Detections scoring at
    least ``conf`` are matched to non-crowd objects greedily by score, class-agnostic, IoU at
    least ``iou``; one on a crowd region of its class is ignored, as COCOeval does."""
    from pycocotools import mask as mask_utils

    order = {c: i for i, c in enumerate(sorted(category_ids))}
    size = len(order) + 1
    matrix = np.zeros((size, size), dtype=int)
    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        if r["score"] >= conf and r["category_id"] in order:
            by_image.setdefault(r["image_id"], []).append(r)
    for image_id in image_ids:
        truths = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=[image_id], iscrowd=False))
                  if a["category_id"] in order]  # fmt: skip
        dets = sorted(by_image.get(image_id, []), key=lambda r: -r["score"])
        used = set()
        if truths and dets:
            overlaps = mask_utils.iou([d["bbox"] for d in dets], [t["bbox"] for t in truths],
                                      [0] * len(truths))  # fmt: skip
        for d, det in enumerate(dets):
            best, best_iou = None, iou
            for t in range(len(truths)):
                if t not in used and truths and overlaps[d][t] >= best_iou:
                    best, best_iou = t, overlaps[d][t]
            if best is None and not _in_crowd(gt, image_id, det, iou):
                matrix[-1, order[det["category_id"]]] += 1
            elif best is None:
                continue  # on a crowd region: COCO ignores it, so does this count
            else:
                used.add(best)
                matrix[order[truths[best]["category_id"]], order[det["category_id"]]] += 1
        for t, truth in enumerate(truths):
            if t not in used:
                matrix[order[truth["category_id"]], -1] += 1
    return matrix


def _in_crowd(gt: Any, image_id: int, det: Mapping[str, Any], iou: float) -> bool:
    """Whether a detection lies on a crowd region of its class (COCO's crowd overlap: the
    intersection over the detection's area)."""
    from pycocotools import mask as mask_utils

    crowds = gt.loadAnns(gt.getAnnIds(imgIds=[image_id], catIds=[det["category_id"]],
                                      iscrowd=True))  # fmt: skip
    crowds = [c for c in crowds if c.get("iscrowd")]
    if not crowds:
        return False
    overlaps = mask_utils.iou([det["bbox"]], [c["bbox"] for c in crowds], [1] * len(crowds))
    return bool((np.asarray(overlaps) >= iou).any())
