"""The report's summary plots and its per-record items, by task (from records, never a model)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from statistics import median
from typing import Any

from cvtasks.report import charts
from cvtasks.report.load import RunFolder

BOXES = {"detect", "pose", "track", "segment", "faces"}


def item_of(record: dict[str, Any]) -> dict[str, Any]:
    """What a card shows and what filters look at: a caption, labels, a score."""
    preds = record.get("predictions") or []
    task = record.get("task")
    if record.get("aggregate"):
        verdict = record["verdict"]
        return {"caption": f"verdict {verdict['label']} {verdict['score']:.2f} "
                           f"({record['frames']} frames)", "labels": [verdict["label"]],
                "score": verdict["score"]}  # fmt: skip
    if task == "depth":
        stats = record.get("stats", {})
        unit = " m" if record.get("units") == "m" else ""
        return {"caption": f"median {stats.get('median', 0):.3g}{unit}", "labels": [],
                "score": stats.get("median")}  # fmt: skip
    if preds and "fraction" in preds[0]:  # semantic segmentation
        shown = [p for p in preds if p.get("index") != 0] or preds
        top = shown[0]
        return {"caption": f"{top['label']} {100 * top['fraction']:.1f}%",
                "labels": [p["label"] for p in shown], "score": top["fraction"]}  # fmt: skip
    if preds and "box" in preds[0]:
        counts = Counter(p["label"] for p in preds)
        caption = ", ".join(  # "person \u00d72": no guessing at English plurals of class names
            label if n == 1 else f"{label} \u00d7{n}" for label, n in counts.most_common(3)
        )
        return {
            "caption": caption,
            "labels": sorted(counts),
            "score": max(p["score"] for p in preds),
        }
    if preds:
        top = preds[0]
        return {"caption": f"{top['label']} {top.get('score', 0):.3f}", "labels": [top["label"]],
                "score": top.get("score")}  # fmt: skip
    nothing = "no face" if task == "faces" or record.get("faces") == [] else "nothing found"
    return {"caption": nothing, "labels": [], "score": None}


def summaries(run: RunFolder) -> list[dict[str, str]]:
    """Plots for the task: label histogram, detections per class and scores, class pixel
    fractions, depth statistics, track counts and crossings, confusion and metrics."""
    records = [r for r in run.records if "error" not in r]
    task = run.task
    found: list[dict[str, str]] = []
    if "metrics.json" in run.extras:
        found += _eval(run.extras["metrics.json"])
    if task in ("classify", "eval", "explain"):
        tops = Counter(r["predictions"][0]["label"] for r in records if r.get("predictions"))
        found.append({"svg": charts.bars("top-1 labels (images)", list(tops.items()))})
        scores = [r["predictions"][0]["score"] for r in records if r.get("predictions")]
        if scores:
            found.append({"svg": charts.histogram("top-1 score", scores, 0.0, 1.0)})
    preds = [p for r in records for p in (r.get("predictions") or [])]
    if task in BOXES and preds and "box" in preds[0]:
        per_class = Counter(p["label"] for p in preds)
        found.append({"svg": charts.bars("detections per class", list(per_class.items()))})
        found.append(
            {"svg": charts.histogram("detection scores", [p["score"] for p in preds], 0, 1)}
        )
    if preds and "fraction" in preds[0]:
        share: dict[str, float] = defaultdict(float)
        for r in records:
            for p in r.get("predictions") or []:
                share[p["label"]] += p["fraction"] / max(len(records), 1)
        found.append(
            {"svg": charts.bars("mean share of pixels per class", list(share.items()), "{:.1%}")}
        )
    if task == "depth" and records:
        medians = [r["stats"]["median"] for r in records if "stats" in r]
        if medians:
            low, high = min(medians), max(medians)
            found.append(
                {
                    "svg": charts.histogram(
                        "median depth per image", medians, low, high if high > low else low + 1
                    )
                }
            )
            found.append(
                {
                    "text": f"median of the medians {median(medians):.4g}; "
                    f"range {low:.4g} to {high:.4g}"
                }
            )
    if "analytics.json" in run.extras:
        found += _tracks(run.extras["analytics.json"])
    return found


def _eval(metrics: dict[str, Any]) -> list[dict[str, str]]:
    if "coco_stats" in metrics:
        return _coco_eval(metrics)
    if "deletion_auc" in metrics:
        return _explain_eval(metrics)
    if "miou" in metrics:
        rows = [(c["label"], c["iou"]) for c in metrics.get("classes", [])]
        return [
            {"text": f"{metrics['images']} images: pixel accuracy "
                     f"{metrics['pixel_accuracy']:.4f}, mean IoU {metrics['miou']:.4f}"},
            {"svg": charts.bars("IoU per class", rows, "{:.3f}")},
        ]  # fmt: skip
    import numpy as np

    from cvtasks.render.confusion import shown_confusion

    classes = [c["label"] for c in metrics.get("classes", [])]
    matrix, shown, note = shown_confusion(np.array(metrics["confusion"]), classes)
    title = f"confusion matrix ({note})" if note else "confusion matrix"
    parts = [{"svg": charts.confusion(title, shown, matrix.tolist())}]
    top5 = f", top-5 {metrics['top5']:.4f}" if metrics.get("top5") is not None else ""
    text = f"top-1 {metrics['top1']:.4f}{top5} on {metrics['n']} images"
    if metrics.get("apcer") is not None:
        text += (
            f"; bona fide {metrics['positive']}: APCER {metrics['apcer']:.4f}, BPCER "
            f"{metrics['bpcer']:.4f}, ACER {metrics['acer']:.4f}"
        )
        if metrics.get("roc_auc") is not None:
            text += f", ROC AUC {metrics['roc_auc']:.4f}, EER {metrics['eer']:.4f}"
    if metrics.get("ece") is not None:
        text += f"; ECE {metrics['ece']:.4f}"
    parts.append({"text": text})
    rows = [(c["label"], c["f1"]) for c in metrics.get("classes", [])]
    parts.append({"svg": charts.bars("F1 per class", rows, "{:.3f}")})
    return parts


def _coco_eval(metrics: dict[str, Any]) -> list[dict[str, str]]:
    """`eval detect|segment|pose`: COCOeval's headline numbers and AP per class."""

    def value(key: str) -> str:
        v = metrics.get(key)
        return "n/a" if v is None or v < 0 else f"{v:.4f}"

    text = (
        f"{metrics['iou_type']} on {metrics['images']} images: AP {value('ap')}, AP50 "
        f"{value('ap50')}, AP75 {value('ap75')}; at score >= {metrics['conf']}: precision "
        f"{value('precision')}, recall {value('recall')}"
    )
    rows = [(c["label"], c["ap"] or 0.0) for c in metrics.get("per_class", [])]
    return [{"text": text}, {"svg": charts.bars("AP per class (IoU .5:.95)", rows, "{:.3f}")}]


def _explain_eval(metrics: dict[str, Any]) -> list[dict[str, str]]:
    """`eval explain`: the method's numbers beside the random and centre-prior maps', the mean
    deletion and insertion curves, and people's labels against the model's."""
    maps = {"method": metrics["method"], "random": "random map", "centre": "centre prior"}
    colours = {maps["method"]: (214, 39, 40), maps["random"]: (127, 127, 127),
               maps["centre"]: (31, 119, 180)}  # as in curves.png  # fmt: skip

    def value(key: str, name: str) -> float | None:
        found = metrics[key] if name == "method" else metrics["baselines"][name][key]
        return None if found is None else float(found)

    parts = [{"text": f"{metrics['method']} on {metrics['images']} images, "
                      f"{metrics['targets']} explained targets"}]  # fmt: skip
    titles = {
        "pointing_game": "pointing game (share of hits)",
        "energy_pointing_game": "energy pointing game",
        "cc": "CC with human maps",
        "nss": "NSS with human fixations",
        "auc_judd": "AUC-Judd with human fixations",
        "deletion_auc": "deletion AUC (lower is better)",
        "insertion_auc": "insertion AUC (higher is better)",
    }
    for key, title in titles.items():
        rows = [(maps[n], v) for n in maps if (v := value(key, n)) is not None]
        if rows:
            parts.append({"svg": charts.bars(title, rows, "{:.3f}", colours=colours)})
    for kind in ("deletion", "insertion"):
        series = {maps[n]: c for n, c in metrics.get("curves", {}).get(kind, {}).items()}
        if series:
            what = "deleted" if kind == "deletion" else "inserted"
            chart = charts.curves(f"mean {kind} curve (explained score)", series,
                                  f"share of pixels {what}", colours)  # fmt: skip
            parts.append({"svg": chart})
    human = metrics.get("human_labels")
    if human:
        kappa = "n/a" if human["kappa"] is None else f"{human['kappa']:.3f}"
        text = (
            f"people vs the model's top-1 on {human['images']} images: agreement "
            f"{human['agreement']:.3f}, Cohen's kappa {kappa}"
        )
        matrix = charts.confusion("people (rows) vs model", human["labels"], human["confusion"])
        parts += [{"text": text}, {"svg": matrix}]
    return parts


def _tracks(analytics: dict[str, Any]) -> list[dict[str, str]]:
    parts = []
    for source in analytics.get("sources", []):
        name = Path(str(source["source"])).name
        fps = source.get("fps") or 30.0
        text = f"{name}: {source['frames']} frames, {source['tracks']} tracks"
        if source.get("dropped"):
            text += f", {source['dropped']} frames dropped"
        parts.append({"text": text})
        series = {}
        for line_name, line in source.get("lines", {}).items():
            for direction in ("in", "out"):
                events = [
                    e["frame"] / fps for e in line.get("events", []) if e["direction"] == direction
                ]
                steps = [(0.0, 0.0)] + [(t, float(i + 1)) for i, t in enumerate(events)]
                series[f"{line_name} {direction}"] = steps
        if series:
            duration = int(source["frames"]) / fps  # the whole clip, not up to the last event
            parts.append(
                {
                    "svg": charts.lines(
                        f"{name}: line crossings over time", series, "s", x_end=duration
                    )
                }
            )
        zones = source.get("zones", {})
        if zones:
            rows = [(f"{z} (entries)", float(v["entries"])) for z, v in zones.items()]
            parts.append({"svg": charts.bars(f"{name}: zone entries", rows)})
    return parts
