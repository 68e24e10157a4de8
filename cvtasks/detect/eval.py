"""`cvtasks eval detect IMAGES --gt annotations.json`: run a detector over the images (or read
saved predictions with ``--predictions``) and score it with pycocotools' COCOeval."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

import numpy as np

from cvtasks.detect import coco_eval
from cvtasks.detect.eval_config import DetectEvalConfig
from cvtasks.errors import UsageError, listed
from cvtasks.io.atomic import atomic_write_text
from cvtasks.io.sources import InputItem
from cvtasks.log import warn
from cvtasks.stages import Stage
from cvtasks.types import Failure, Frame, Outcome

T = TypeVar("T")
HIDDEN = {"N/A", "__background__", "background", "no person"}  # torchvision's placeholders
STAT_ORDER = (*coco_eval.STAT_NAMES, "ar", "ar50", "ar75")


def make_eval_detector(cfg: DetectEvalConfig, device: Any) -> Any:
    """The model keeping everything above ``--min-score`` (``--conf`` is for the report)."""
    if cfg.iou_type == "segm":
        from cvtasks.segment.config import SegmentConfig
        from cvtasks.segment.predictor import make_segment_predictor

        return make_segment_predictor(_task_config(SegmentConfig, cfg), device)
    if cfg.iou_type == "keypoints":
        from cvtasks.pose.config import PoseConfig
        from cvtasks.pose.predictor import PosePredictor

        return PosePredictor(_task_config(PoseConfig, cfg), device)
    from cvtasks.detect.config import DetectConfig
    from cvtasks.detect.predictor import DetectPredictor

    return DetectPredictor(_task_config(DetectConfig, cfg), device)


def _task_config(cls: type[T], cfg: DetectEvalConfig) -> T:
    """The task's own config with the evaluation's shared options and ``--min-score`` as its
    score threshold (the task's other options at their defaults: RLE masks, all keypoints)."""
    from dataclasses import fields

    names = {f.name for f in fields(cls)} & {f.name for f in fields(cfg)}  # type: ignore[arg-type]
    shared = {n: getattr(cfg, n) for n in names if n not in ("format", "conf")}
    return cls(**shared, conf=cfg.min_score)  # type: ignore[call-arg]


def score_records(
    cfg: DetectEvalConfig,
    records: Sequence[Mapping[str, Any]],
    all_images: bool,
    model_labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The evaluation of cvtasks records (their labels matched to the GT by name)."""
    assert cfg.gt is not None
    if Path(cfg.gt).expanduser().is_dir():
        from cvtasks.detect.yolo_gt import yolo_ground_truth

        gt = yolo_ground_truth(Path(cfg.gt).expanduser(), cfg.gt_names, records)
    else:
        gt = coco_eval.load_ground_truth(cfg.gt)
    class_map = coco_eval.parse_class_map(cfg.class_map)
    matching = coco_eval.match(gt, records, class_map, all_images, model_labels)
    _warn_about(matching, cfg)
    if not matching.image_ids or len(matching.unmatched_images) == len(records):
        raise UsageError(
            f"no input matches an image of --gt {cfg.gt} by file name (first inputs: "
            f"{listed([Path(str(r['source'])).name for r in records[:5]])})"
        )
    if matching.unmapped_labels and not matching.category_of:
        raise UsageError(
            "no class of the predictions is a category of --gt (by name); map them with "
            "--class-map model_name=gt_name"
        )
    results = coco_eval.results_of(gt, records, matching, cfg.iou_type)
    return _score(cfg, gt, results, matching.image_ids, matching.scored, matching)


def score_coco_results(cfg: DetectEvalConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    """A COCO results list, whose ids are the ground truth's own."""
    assert cfg.gt is not None
    if Path(cfg.gt).expanduser().is_dir():
        raise UsageError("a COCO results list needs COCO ground truth (its ids): not a YOLO folder")
    gt = coco_eval.load_ground_truth(cfg.gt)
    known = set(gt.getImgIds())
    stray = sorted({int(r["image_id"]) for r in results} - known)
    if stray:
        raise UsageError(
            f"--predictions has image ids that --gt {cfg.gt} does not: {listed(stray)}"
        )
    return _score(cfg, gt, results, sorted(known), sorted(gt.getCatIds()), None)


def _score(
    cfg: DetectEvalConfig,
    gt: Any,
    results: list[dict[str, Any]],
    image_ids: list[int],
    category_ids: list[int],
    matching: coco_eval.Matching | None,
) -> dict[str, Any]:
    if not results:
        warn("there are no predictions to score: every AP is 0")
    evaluator = coco_eval.coco_evaluate(gt, results, image_ids, category_ids, cfg.iou_type)
    stat_names = (
        coco_eval.KEYPOINT_STAT_NAMES if cfg.iou_type == "keypoints" else coco_eval.STAT_NAMES
    )
    names = {int(c["id"]): c["name"] for c in gt.dataset["categories"]}
    stats = [round(float(v), 6) for v in evaluator.stats]
    operating = coco_eval.at_operating_score(evaluator, cfg.conf)
    per_class = coco_eval.per_class_ap(evaluator, names)
    for row in per_class:
        tp, fp, positives = operating["per_class"].get(row["category_id"], [0, 0, 0])
        row["precision"] = round(tp / (tp + fp), 6) if tp + fp else None
        row["recall"] = round(tp / positives, 6) if positives else None
    report: dict[str, Any] = {
        "iou_type": cfg.iou_type,
        "gt": cfg.gt,
        "model": "predictions:" + str(cfg.predictions) if cfg.predictions else cfg.model,
        "images": len(image_ids),
        "predictions": len(results),
        "coco_stats": stats,
        **dict(zip(stat_names, stats, strict=True)),
        "conf": cfg.conf,
        "precision": operating["precision"],
        "recall": operating["recall"],
        "per_class": per_class,
    }
    if matching is not None:
        report.update(
            unmatched_images=matching.unmatched_images,
            unpredicted_images=matching.unpredicted_images,
            unmapped_labels=matching.unmapped_labels,
            unscored_categories=matching.unscored_categories,
        )
    report["_figures"] = (evaluator, gt, results, image_ids, category_ids, names)
    return report


def _warn_about(matching: coco_eval.Matching, cfg: DetectEvalConfig) -> None:
    if matching.unmatched_images:
        warn(f"not in --gt (by file name), not scored: {listed(matching.unmatched_images)}")
    if matching.unpredicted_images:
        warn(
            f"in --gt but not in --predictions, counted as finding nothing: "
            f"{listed(matching.unpredicted_images)}"
        )
    if matching.unmapped_labels:
        warn(
            "predicted classes with no category of that name in --gt, not scored (map them with "
            f"--class-map): {listed(matching.unmapped_labels)}"
        )
    if matching.unscored_categories:
        warn(
            f"--gt categories no model class maps to, not scored: "
            f"{listed(matching.unscored_categories)}"
        )
    never = sorted(set(matching.scored) - set(matching.category_of.values()))
    if never and cfg.predictions:
        warn(f"--gt category ids never predicted, scored as all missed: {listed(never)}")


def read_predictions(path: str) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """(cvtasks records, None) or (None, a COCO results list) from ``--predictions``."""
    source = Path(path).expanduser()
    if source.is_dir():
        source = source / "results.jsonl"
    if not source.is_file():
        raise UsageError(f"--predictions {source}: no such file")
    text = source.read_text(encoding="utf-8")
    if source.suffix == ".jsonl":
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [r for r in records if "predictions" in r and "error" not in r], []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--predictions {source} is not JSON ({exc})") from None
    if isinstance(data, list):
        if data and not {"image_id", "category_id", "bbox", "score"} <= set(data[0]):
            raise UsageError(f"--predictions {source}: not a COCO results list")
        return None, data
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        return _records_of_export(data), []
    raise UsageError(f"--predictions {source}: not COCO results, a COCO export or records")


def _records_of_export(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A `detect -f coco` file back to records (file names, category names, masks and
    keypoints as the file has them)."""
    names = {int(c["id"]): c["name"] for c in data.get("categories", [])}
    by_image: dict[int, dict[str, Any]] = {
        int(i["id"]): {"source": i["file_name"], "width": i.get("width"),
                       "height": i.get("height"), "predictions": []}
        for i in data["images"]
    }  # fmt: skip
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        prediction: dict[str, Any] = {
            "label": names.get(int(a["category_id"]), str(a["category_id"])),
            "score": a["score"],
            "box": [x, y, x + w, y + h],
        }
        segmentation = a.get("segmentation")
        if isinstance(segmentation, dict):
            prediction["mask"] = segmentation
        elif isinstance(segmentation, list):
            prediction["polygons"] = segmentation
        if "keypoints" in a:
            prediction["keypoints"] = list(a["keypoints"])  # x, y, v in the file's order
        by_image[int(a["image_id"])]["predictions"].append(prediction)
    return list(by_image.values())


class DetectEvalStage(Stage):
    """Collects the detector's records; scores them at the end."""

    prints_records = False

    def __init__(self, cfg: DetectEvalConfig, out: Path | None, items: list[InputItem]) -> None:
        super().__init__(items)
        self.cfg, self.out = cfg, out
        self.records: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None
        gt_masks = getattr(cfg, "gt_masks", None)
        self.pixels = None
        if gt_masks:
            from cvtasks.detect.pixel_eval import PixelConfusion

            self.pixels = PixelConfusion(Path(gt_masks), getattr(cfg, "ignore_index", 255))

    def run(self, pairs: Iterator[tuple[Frame, Outcome]]) -> Iterator[tuple[Frame, Outcome]]:
        for frame, outcome in pairs:
            if self.pixels is not None and not isinstance(outcome, Failure):
                mask = getattr(outcome, "mask", None)
                if mask is None:
                    raise UsageError("--gt-masks is for semantic models (deeplabv3, fcn, lraspp)")
                problem = self.pixels.add(frame.source, np.asarray(mask))
                if problem is not None:
                    outcome = Failure(problem)
                    self.failures += 1
                yield frame, outcome
                continue
            if not isinstance(outcome, Failure):
                preds = [p.to_record() for p in getattr(outcome, "predictions", [])]
                self.records.append(
                    {
                        "source": frame.source,
                        "predictions": preds,
                        "width": frame.width,
                        "height": frame.height,
                    }
                )
            yield frame, outcome

    def finish(self) -> list[str]:
        if self.pixels is not None:
            classes = list(getattr(self.predictor, "categories", []))
            self.result = self.pixels.report(classes)
            if self.out is not None and self.result["images"]:
                from cvtasks.detect.eval_plots import pixel_confusion_figure

                self.out.mkdir(parents=True, exist_ok=True)
                atomic_write_text(self.out / "metrics.json", json.dumps(self.result, indent=2))
                pixel_confusion_figure(self.result, self.out / "confusion.png")
            return [
                f"eval segment: {self.result['images']} images, pixel accuracy "
                f"{_num(self.result['pixel_accuracy'])}, mIoU {_num(self.result['miou'])}"
            ]
        if not self.records:
            return ["eval detect: no image could be run"]
        labels = [c for c in getattr(self.predictor, "categories", []) if c not in HIDDEN]
        self.result = score_records(self.cfg, self.records, False, labels)
        finish_report(self.result, self.out)
        return [summary_line(self.result)]

    def report(self, fmt: str) -> str | None:
        return None if self.result is None else render(self.result, fmt)


def make_detect_eval_stage(
    cfg: DetectEvalConfig, out: Path | None, items: list[InputItem]
) -> DetectEvalStage:
    return DetectEvalStage(cfg, out, items)


def summary_line(result: Mapping[str, Any]) -> str:
    kind = {"bbox": "detect", "segm": "segment", "keypoints": "pose"}[result["iou_type"]]
    return (
        f"eval {kind}: {result['images']} images, AP {result['ap']:.4f}, AP50 "
        f"{result['ap50']:.4f}, AP75 {result['ap75']:.4f} ({result['iou_type']})"
    )


def finish_report(result: dict[str, Any], out: Path | None) -> None:
    """Write metrics.json and the figures under ``out``; drop the figures' inputs."""
    figures = result.pop("_figures")
    if out is None:
        return
    from cvtasks.detect.eval_plots import confusion_figure, pr_figure

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")
    evaluator, gt, results, image_ids, category_ids, names = figures
    counts = [row["instances"] for row in result["per_class"]]  # in the evaluator's order
    pr_figure(evaluator, names, counts, out / "pr_curves.png")
    matrix = coco_eval.confusion_with_background(gt, results, image_ids, category_ids,
                                                 result["conf"])  # fmt: skip
    confusion_figure(matrix, [names[c] for c in sorted(category_ids)], result["conf"],
                     out / "confusion.png")  # fmt: skip


def render(result: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False) + "\n"
    if "miou" in result:
        lines = [
            f"{result['images']} images, {result['pixels']} pixels scored: pixel accuracy "
            f"{_num(result['pixel_accuracy'])}, mean IoU {_num(result['miou'])}",
            "IoU per class (classes in neither the masks nor the predictions left out):",
        ]
        lines += [f"  {c['label']:<20} {_num(c['iou'])} {c['pixels']}" for c in result["classes"]]
        return "\n".join(lines) + "\n"
    lines = [
        f"{result['model']} on {result['gt']}: {result['images']} images, "
        f"{result['predictions']} detections",
        "  ".join(f"{n} {_num(result[n])}" for n in STAT_ORDER if n in result),
        "(n/a: no ground truth of that size)",
        f"at score >= {result['conf']}: precision {_num(result['precision'])}, recall "
        f"{_num(result['recall'])} (IoU 0.5)",
        "per class: AP, AP50, precision, recall, instances",
    ]
    for row in result["per_class"]:
        lines.append(
            f"  {row['label']:<20} {_num(row['ap'])} {_num(row['ap50'])} "
            f"{_num(row['precision'])} {_num(row['recall'])} {row['instances']}"
        )
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "   n/a" if value is None or value < 0 else f"{value:.4f}"


def run_detect_eval(spec: Any, cfg: DetectEvalConfig, *, stdin: TextIO | None = None,
                    **kwargs: Any) -> Any:  # fmt: skip
    """Run the detector through the engine (the stage scores), or score ``--predictions``."""
    semantic = getattr(cfg, "gt_masks", None) is not None
    if cfg.gt is None and not semantic:
        raise UsageError(
            "eval needs the ground truth: --gt annotations.json (COCO)"
            + (", or --gt-masks DIR for a semantic model" if cfg.iou_type == "segm" else "")
        )
    if semantic and cfg.predictions is not None:
        raise UsageError("--gt-masks scores a semantic model's run: give IMAGES, not --predictions")
    if cfg.predictions is None:
        from cvtasks.runner import run_task

        return run_task(spec, cfg, stdin=stdin, **kwargs)
    if cfg.inputs:
        raise UsageError("--predictions scores a file: give no IMAGES with it")
    import time

    from cvtasks.engine import RunStats
    from cvtasks.runner import RunSummary, default_format

    start = time.perf_counter()
    records, coco_results = read_predictions(cfg.predictions)
    if records is None:
        result = score_coco_results(cfg, coco_results)
    else:
        result = score_records(cfg, records, all_images=True)
    out = Path(cfg.out) if cfg.out else None
    finish_report(result, out)
    stream = kwargs.get("stdout") or sys.stdout
    fmt = cfg.format or ("table" if default_format(stream) == "table" else "json")
    stream.write(render(result, fmt))
    print(summary_line(result), file=sys.stderr)
    stats = RunStats()
    stats.processed = int(result["images"])
    wall = time.perf_counter() - start
    return RunSummary(stats, int(result["images"]), wall, wall)
