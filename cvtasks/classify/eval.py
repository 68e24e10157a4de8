"""`cvtasks eval classify DATA -w W`: classify a labelled folder with the classify pipeline
(its records are classify's records), then measure: top-1/top-5, per-class precision, recall,
F1, confusion; for two classes ROC AUC, EER and the ISO/IEC 30107-3 PAD metrics."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from cvtasks.classify import metrics
from cvtasks.classify.config import EvalConfig
from cvtasks.classify.train.data import eval_samples
from cvtasks.errors import UsageError, listed
from cvtasks.io.atomic import atomic_write_text
from cvtasks.io.sources import InputItem
from cvtasks.stages import Stage
from cvtasks.types import Failure, Frame, Outcome


def expand_eval_inputs(
    specs: list[str], stdin: TextIO | None = None, exclude: Path | None = None
) -> list[InputItem]:
    """The images of a labelled folder (class sub-folders, or its val/ part) or list file."""
    if len(specs) != 1:
        raise UsageError(
            f"cvtasks eval classify takes one labelled DATA folder or list, got {len(specs)}\n"
            "usage: cvtasks eval classify DATA -w WEIGHTS [OPTIONS]"
        )
    _, samples = eval_samples(specs[0])
    return [InputItem(path, str(path), path.name, "image") for path, _ in samples]


class EvalStage(Stage):
    """Collects (true class, ranked predictions) per image; measures at the end."""

    prints_records = False

    def __init__(self, cfg: EvalConfig, out: Path | None, items: list[InputItem]) -> None:
        super().__init__(items)
        self.cfg = cfg
        self.out = out
        folder_classes, samples = eval_samples(cfg.inputs[0])
        self.truth_names = {str(path): folder_classes[label] for path, label in samples}
        self.truth: list[int] = []
        self.ranked: list[metrics.Ranked] = []
        self.sources: list[str] = []
        self.no_face: list[str] = []  # --crop faces: images with no face to judge
        self.log_probabilities: list[Any] = []  # every class's, for calibration
        from cvtasks.run_spec import is_run_folder

        if cfg.calibrate and not is_run_folder(str(cfg.weights).strip()):
            raise UsageError(
                f"--calibrate writes the calibration into a run folder: pass -w runs/NAME "
                f"(a `cvtasks train` output), not {cfg.weights}"
            )
        self.result: dict[str, Any] | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.predictor.labels)

    def run(self, pairs: Iterator[tuple[Frame, Outcome]]) -> Iterator[tuple[Frame, Outcome]]:
        index = {name: i for i, name in enumerate(self.classes)}
        unknown = sorted(set(self.truth_names.values()) - set(index))
        if unknown:
            raise UsageError(
                f"{self.cfg.inputs[0]} has classes the model does not know: {listed(unknown)} "
                f"(the model's classes: {listed(self.classes)})"
            )
        for frame, outcome in pairs:
            if not isinstance(outcome, Failure) and getattr(outcome, "faces", None) == []:
                self.no_face.append(frame.source)
            elif not isinstance(outcome, Failure):
                predictions = getattr(outcome, "predictions", [])
                self.ranked.append([(p.index, p.score) for p in predictions])
                self.log_probabilities.append(getattr(outcome, "log_probabilities", None))
                self.truth.append(index[self.truth_names[frame.source]])
                self.sources.append(frame.source)
            yield frame, outcome

    def finish(self) -> list[str]:
        if not self.truth:
            return ["eval: no image could be classified"]
        classes = self.classes
        result: dict[str, Any] = {"model": self.cfg.model, "weights": self.cfg.weights}
        result.update(metrics.report(self.truth, self.ranked, classes))
        positive = self._positive(classes) if len(classes) == 2 else None
        if all(p is not None for p in self.log_probabilities):
            import numpy as np

            from cvtasks.classify import calibration

            result.update(
                calibration.evaluate(
                    self.cfg, np.stack(self.log_probabilities), np.array(self.truth), classes,
                    positive, getattr(self.predictor, "temperature", 1.0),
                )
            )  # fmt: skip
        if getattr(self.predictor, "crop", None) is not None:
            result["crop"] = self.predictor.crop.describe()
            result["no_face"] = sorted(self.no_face)  # not scored: nothing to judge
        if positive is not None:  # two classes
            result["positive"] = classes[positive]
            result.update(
                metrics.attack_metrics(self.truth, self.ranked, positive, self._threshold())
            )
        self.result = result
        if self.out is not None:
            self._write_files(result, classes)
        lines = []
        chosen = result.get("calibration")
        if chosen is not None:
            decided = (
                f"; bona fide = {chosen['positive']} when P >= {chosen['threshold']} "
                f"({chosen['rule']})"
                if chosen["threshold"] is not None
                else ""
            )
            lines.append(
                f"eval --calibrate: temperature {chosen['temperature']:.4g}, ECE "
                f"{chosen['ece_before']:.4f} -> {chosen['ece_after']:.4f}{decided}; written to "
                f"{chosen['written']}"
            )
        if self.no_face:
            lines.append(
                f"eval: {len(self.no_face)} image(s) without a face are not scored: "
                f"{listed(sorted(self.no_face))}"
            )
        return [
            *lines,
            f"eval: {result['n']} images, top-1 {result['top1']:.4f}"
            + (f", ECE {result['ece']:.4f}" if "ece" in result else "")
            + (
                f", ACER {result['acer']:.4f}, EER {result['eer']:.4f}"
                if result.get("eer") is not None
                else ""
            ),
        ]

    def _threshold(self) -> float:
        """``--threshold``, else the run folder's calibrated one (what classify applies)."""
        from cvtasks.config import is_given

        calibration = getattr(self.predictor, "calibration", None) or {}
        if calibration.get("threshold") is not None and not is_given(self.cfg, "threshold"):
            return float(calibration["threshold"])
        return self.cfg.threshold

    def _positive(self, classes: list[str]) -> int:
        if self.cfg.positive is None:
            return metrics.default_positive(classes)
        if self.cfg.positive not in classes:
            raise UsageError(f"--positive {self.cfg.positive!r} is not a class ({listed(classes)})")
        return classes.index(self.cfg.positive)

    def _write_files(self, result: dict[str, Any], classes: list[str]) -> None:
        import numpy as np

        from cvtasks.classify.train import plots

        assert self.out is not None
        self.out.mkdir(parents=True, exist_ok=True)
        title = f"{self.cfg.model}: {result['n']} images, top-1 {result['top1']:.3f}"
        listed_classes = [c["label"] for c in result["classes"]]  # past 30: those that occur
        if len(listed_classes) < result.get("classes_total", 0):
            title += f"\nthe {len(listed_classes)} classes that occur, of {result['classes_total']}"
        plots.confusion_png(
            np.array(result["confusion"]), listed_classes, self.out / "confusion.png", title
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["source", "truth", "predicted", "score", *(f"p_{c}" for c in classes)])
        for source, truth, ranked in zip(self.sources, self.truth, self.ranked, strict=True):
            scores = dict(ranked)
            writer.writerow(
                [source, classes[truth], classes[ranked[0][0]], f"{ranked[0][1]:.6f}",
                 *(f"{scores[i]:.6f}" if i in scores else "" for i in range(len(classes)))]
            )  # fmt: skip
        atomic_write_text(self.out / "predictions.csv", buffer.getvalue())
        atomic_write_text(self.out / "metrics.json", json.dumps(result, indent=2) + "\n")
        if "reliability" in result:
            after = (result.get("calibration") or {}).get("reliability_after")
            plots.reliability_png(result["reliability"], after, self.out / "reliability.png", title)
        if result.get("roc_auc") is not None:
            positive = classes.index(result["positive"])
            labels = np.array([t == positive for t in self.truth])
            fpr, tpr, _ = metrics.roc(labels, metrics.positive_scores(self.ranked, positive))
            plots.roc_png(fpr, tpr, result["roc_auc"], result["eer"], result["positive"],
                          self.out / "roc.png", title)  # fmt: skip

    def report(self, fmt: str) -> str | None:
        if self.result is None:
            return None
        if fmt == "table":
            return table_report(self.result)
        return json.dumps(self.result, ensure_ascii=False) + "\n"


def table_report(result: dict[str, Any]) -> str:
    """The readable report of ``-f table``."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=False)
    console.print(
        f"{result['model']} ({result['weights']}): {result['n']} images, top-1 "
        f"{result['top1']:.4f}"
        + (f", top-5 {result['top5']:.4f}" if result.get("top5") is not None else ""),
        highlight=False,
    )
    listed, total = len(result["classes"]), result.get("classes_total", len(result["classes"]))
    per_class_title = (
        "per class" if listed == total else f"per class: the {listed} that occur, of {total}"
    )
    console.print(per_class_title, style="italic", highlight=False, soft_wrap=True)
    per_class = Table()
    for column in ("class", "precision", "recall", "F1", "support"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for c in result["classes"]:
        per_class.add_row(
            c["label"],
            f"{c['precision']:.4f}",
            f"{c['recall']:.4f}",
            f"{c['f1']:.4f}",
            str(c["support"]),
        )
    console.print(per_class)
    from cvtasks.render.confusion import shown_confusion

    shown, names, note = shown_confusion(np.array(result["confusion"]),
                                         [c["label"] for c in result["classes"]])  # fmt: skip
    title = "confusion (rows: true, columns: predicted)"  # above the table: never wrapped
    if note:
        title += f": {note}"
    console.print(title, style="italic", highlight=False, soft_wrap=True)
    matrix = Table()
    matrix.add_column("")
    for name in names:
        matrix.add_column(name, justify="right")
    for name, row in zip(names, shown.tolist(), strict=True):
        matrix.add_row(name, *(str(v) for v in row))
    console.print(matrix)
    if "apcer" in result:
        auc = "n/a" if result["roc_auc"] is None else f"{result['roc_auc']:.4f}"
        eer = "n/a" if result["eer"] is None else f"{result['eer']:.4f}"
        console.print(
            f"bona fide = {result['positive']}, threshold {result['threshold']}: APCER "
            f"{result['apcer']:.4f}, BPCER {result['bpcer']:.4f}, ACER {result['acer']:.4f}; "
            f"ROC AUC {auc}, EER {eer}",
            highlight=False,
        )
    for key, target in (("at_target_apcer", "APCER"), ("at_target_bpcer", "BPCER")):
        found = result.get(key)
        if found:
            console.print(
                f"threshold for the target {target}: {found['threshold']} (APCER "
                f"{found['apcer']:.4f}, BPCER {found['bpcer']:.4f})",
                highlight=False,
            )
    if "ece" in result:
        console.print(
            f"expected calibration error (15 bins): {result['ece']:.4f}"
            + (f" at temperature {result['temperature']:g}" if result["temperature"] != 1 else ""),
            highlight=False,
        )
    return buffer.getvalue()


def make_eval_stage(cfg: EvalConfig, out: Path | None, items: list[InputItem]) -> EvalStage:
    return EvalStage(cfg, out, items)
