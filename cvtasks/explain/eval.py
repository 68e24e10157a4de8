"""`cvtasks eval explain METHOD IMAGES [--gt human.json|maps/] [--human-labels labels.csv]`:
explain every image with the method (records as `explain` writes them, each target with its
``evaluation``), then summarise: the method's mean numbers beside the random and centre-prior
maps', mean deletion and insertion curves, and people's labels against the model's."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any, TextIO

import numpy as np

from cvtasks.errors import UsageError, listed
from cvtasks.explain.eval_config import ExplainEvalConfig
from cvtasks.explain.eval_scores import MAPS, METRICS
from cvtasks.explain.evidence import read_human_labels
from cvtasks.io.atomic import atomic_write_text
from cvtasks.io.sources import InputItem
from cvtasks.log import warn
from cvtasks.stages import Stage
from cvtasks.types import Failure, Frame, Outcome

NAMES = {
    "pointing_game": "pointing game (hits)",
    "energy_pointing_game": "energy pointing game",
    "top_iou": "top-k IoU",
    "cc": "CC",
    "nss": "NSS",
    "auc_judd": "AUC-Judd",
    "deletion_auc": "deletion AUC (lower: better)",
    "insertion_auc": "insertion AUC (higher: better)",
}


def _mean(values: list[Any]) -> float | None:
    found = [float(v) for v in values if v is not None]
    return round(float(np.mean(found)), 6) if found else None


class ExplainEvalStage(Stage):
    """Collects each explained target's evaluation (also those of a resumed run's records)."""

    prints_records = False
    resumed_itself = True  # the finished images' records are read back into the report

    def __init__(self, cfg: ExplainEvalConfig, out: Path | None, items: list[InputItem]) -> None:
        self.cfg, self.out = cfg, out
        self.rows: list[dict[str, Any]] = []
        self.images: list[dict[str, Any]] = []
        self.human = read_human_labels(cfg.human_labels) if cfg.human_labels else None
        self.result: dict[str, Any] | None = None
        if out is not None and cfg.resume:
            items = self._resume(out, items)
        super().__init__(items)

    def _resume(self, out: Path, items: list[InputItem]) -> list[InputItem]:
        """Keep the finished images' records (unless the image changed since) and run the rest."""
        from cvtasks.io.outdir import drop_changed, read_done
        from cvtasks.report.load import read_jsonl

        done, _changed = drop_changed(out, read_done(out))
        sources = {source for source, _ in done}
        for record in read_jsonl(out / "results.jsonl"):
            if record.get("source") in sources and "error" not in record:
                self._add(str(record["source"]), record)
        return [item for item in items if item.source not in sources]

    def run(self, pairs: Iterator[tuple[Frame, Outcome]]) -> Iterator[tuple[Frame, Outcome]]:
        for frame, outcome in pairs:
            if not isinstance(outcome, Failure):
                self._add(frame.source, outcome.to_record())
            yield frame, outcome

    def _add(self, source: str, record: dict[str, Any]) -> None:
        self.images.append({"source": source, "top1": record.get("top1"), "gt": record.get("gt")})
        for number, target in enumerate(record.get("predictions") or [], start=1):
            evaluation = target.get("evaluation")
            if evaluation is None:
                continue
            row = {"source": source, "target": number, "label": target["label"],
                   "index": target["index"], "score": target.get("score")}  # fmt: skip
            if "detection" in target:
                row["detection"] = target["detection"]
            row["evidence"] = evaluation.get("evidence")
            row.update({k: evaluation.get(k) for k in METRICS})
            for name, scores in evaluation.get("baselines", {}).items():
                row.update({f"{name}_{k}": scores.get(k) for k in METRICS})
            row["curves"] = evaluation.get("curves")
            self.rows.append(row)

    def finish(self) -> list[str]:
        if not self.images:
            return ["eval explain: no image could be explained"]
        self.result = summarise(self.cfg, self.rows, self.images, self.human)
        if self.out is not None:
            write_files(self.result, self.rows, self.out)
        return [summary_line(self.result)]

    def report(self, fmt: str) -> str | None:
        return None if self.result is None else render(self.result, fmt)


def make_explain_eval_stage(
    cfg: ExplainEvalConfig, out: Path | None, items: list[InputItem]
) -> ExplainEvalStage:
    return ExplainEvalStage(cfg, out, items)


def summarise(
    cfg: ExplainEvalConfig,
    rows: list[dict[str, Any]],
    images: list[dict[str, Any]],
    human: dict[str, dict[str, str]] | None,
) -> dict[str, Any]:
    """The report: each metric's mean over the targets where it is defined, for the method
    and the baselines, how many targets each mean is over, and the mean curves."""
    result: dict[str, Any] = {
        "method": cfg.method,
        "model": cfg.model,
        "weights": cfg.weights,
        "gt": cfg.gt,
        "images": len(images),
        "targets": len(rows),
    }
    result.update({k: _mean([r[k] for r in rows]) for k in METRICS})
    result["baselines"] = {
        name: {k: _mean([r.get(f"{name}_{k}") for r in rows]) for k in METRICS} for name in MAPS[1:]
    }
    result["counts"] = {k: sum(r[k] is not None for r in rows) for k in METRICS}
    result["settings"] = {"tolerance": cfg.tolerance, "top_percent": cfg.top_percent,
                          "curve_steps": cfg.curve_steps, "seed": cfg.seed}  # fmt: skip
    result["curves"] = _mean_curves(rows)
    missing = sorted(i["source"] for i in images if i.get("gt") == "not in --gt")
    if missing:
        warn(f"not in --gt (by file name), only faithfulness measured: {listed(missing)}")
        result["not_in_gt"] = missing
    if human is not None:
        result["human_labels"] = compare_labels(human, images, cfg.class_map)
    return result


def _mean_curves(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    found: dict[str, dict[str, list[float]]] = {}
    for kind in ("deletion", "insertion"):
        found[kind] = {}
        for name in MAPS:
            curves = [r["curves"][kind][name] for r in rows if r.get("curves")]
            lengths = {len(c) for c in curves}
            if curves and len(lengths) == 1:
                found[kind][name] = [round(float(v), 5) for v in np.mean(curves, axis=0)]
    return found


def compare_labels(
    human: dict[str, dict[str, str]], images: list[dict[str, Any]], class_map: list[str]
) -> dict[str, Any]:
    """People's labels against the model's top-1 (through --class-map, case-insensitive):
    agreement, Cohen's kappa, their confusion (rows: people) and, with true labels, where one
    errs and the other does not."""
    from cvtasks.detect.coco_eval import parse_class_map
    from cvtasks.explain.agreement import cohen_kappa

    mapping = {k.lower(): v.lower() for k, v in parse_class_map(class_map).items()}
    pairs = []
    for image in images:
        name = PurePath(image["source"]).name
        if name in human and image.get("top1"):
            model = str(image["top1"]["label"]).lower()
            pairs.append((name, human[name]["human"].lower(), mapping.get(model, model),
                          human[name].get("truth", "").lower() or None))  # fmt: skip
    if not pairs:
        raise UsageError(
            "--human-labels: no input's file name is in the CSV, or the model is not a classifier"
        )
    labels = sorted({p[1] for p in pairs} | {p[2] for p in pairs})
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), int)
    for _, people, model, _ in pairs:
        confusion[index[people], index[model]] += 1
    found: dict[str, Any] = {
        "images": len(pairs),
        "agreement": round(float(np.mean([p[1] == p[2] for p in pairs])), 6),
        "kappa": cohen_kappa([p[1] for p in pairs], [p[2] for p in pairs]),
        "labels": labels,
        "confusion": confusion.tolist(),
        "disagreements": [{"image": n, "human": h, "model": m} for n, h, m, _ in pairs if h != m],
        "unlabelled": sorted({PurePath(i["source"]).name for i in images} - set(human)),
    }
    if found["kappa"] is not None:
        found["kappa"] = round(found["kappa"], 6)
    truthful = [p for p in pairs if p[3] is not None]
    if truthful:
        found["truth"] = {
            "images": len(truthful),
            "human_accuracy": round(float(np.mean([p[1] == p[3] for p in truthful])), 6),
            "model_accuracy": round(float(np.mean([p[2] == p[3] for p in truthful])), 6),
            "model_wrong_human_right": [p[0] for p in truthful if p[2] != p[3] and p[1] == p[3]],
            "human_wrong_model_right": [p[0] for p in truthful if p[1] != p[3] and p[2] == p[3]],
            "both_wrong": [p[0] for p in truthful if p[1] != p[3] and p[2] != p[3]],
        }
    return found


def write_files(result: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> None:
    """metrics.json, rows.csv (one row per explained target) and curves.png."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "rows.csv", rows_csv(rows))
    if result["curves"].get("deletion"):
        from cvtasks.explain.eval_plots import curves_figure

        curves_figure(result, out / "curves.png")


def rows_csv(rows: list[dict[str, Any]]) -> str:
    columns = ["source", "target", "label", "index", "score", "detection", "evidence", *METRICS]
    columns += [f"{name}_{k}" for name in MAPS[1:] for k in METRICS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    """CSV cells: empty for undefined, 1/0 for the pointing game's hits."""
    if value is None:
        return ""
    return int(value) if isinstance(value, bool) else value


def summary_line(result: dict[str, Any]) -> str:
    def value(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    base = result["baselines"]
    return (
        f"eval explain: {result['method']} on {result['images']} images, {result['targets']} "
        f"targets: pointing game {value(result['pointing_game'])} (random "
        f"{value(base['random']['pointing_game'])}, centre {value(base['centre']['pointing_game'])}"
        f"), deletion AUC {value(result['deletion_auc'])} (random "
        f"{value(base['random']['deletion_auc'])}, centre {value(base['centre']['deletion_auc'])})"
    )


def render(result: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False) + "\n"

    def value(v: float | None) -> str:
        return "   n/a" if v is None else f"{v:6.3f}"

    lines = [
        f"{result['method']} on {result['model']}: {result['images']} images, "
        f"{result['targets']} explained targets",
        f"{'metric':<32} {'method':>6} {'random':>6} {'centre':>6}  targets",
    ]
    base = result["baselines"]
    for key in METRICS:
        if result["counts"][key]:
            lines.append(
                f"{NAMES[key]:<32} {value(result[key])} {value(base['random'][key])} "
                f"{value(base['centre'][key])}  {result['counts'][key]}"
            )
    human = result.get("human_labels")
    if human:
        kappa = "n/a" if human["kappa"] is None else f"{human['kappa']:.3f}"
        lines.append(
            f"people vs model top-1 on {human['images']} images: agreement "
            f"{human['agreement']:.3f}, Cohen's kappa {kappa}"
        )
        truth = human.get("truth")
        if truth:
            lines.append(
                f"  accuracy: people {truth['human_accuracy']:.3f}, model "
                f"{truth['model_accuracy']:.3f}; model wrong where people were right: "
                f"{listed(truth['model_wrong_human_right']) or 'none'}; people wrong where the "
                f"model was right: {listed(truth['human_wrong_model_right']) or 'none'}"
            )
    return "\n".join(lines) + "\n"


def run_explain_eval(spec: Any, cfg: ExplainEvalConfig, *, stdin: TextIO | None = None,
                     **kwargs: Any) -> Any:  # fmt: skip
    """Check the ground truth's paths (absolute: Ray workers read them too), then run."""
    from cvtasks.runner import run_task

    for key in ("gt", "human_labels"):
        value = getattr(cfg, key)
        if value is not None:
            path = Path(value).expanduser()
            if not path.exists():
                raise UsageError(f"--{key.replace('_', '-')} {path}: no such file or folder")
            setattr(cfg, key, os.path.abspath(path))
    if cfg.human_labels is not None:
        from cvtasks.explain.objects import detector_models, semantic_models

        if cfg.model in detector_models() or cfg.model in semantic_models():
            raise UsageError("--human-labels compares people's labels with a classifier's top-1")
    return run_task(spec, cfg, stdin=stdin, **kwargs)
