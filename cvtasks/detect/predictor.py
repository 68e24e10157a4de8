"""Object detection with torchvision detectors, and what pose/instance segmentation share.

Preprocessing is the weights' ``transforms()`` (a float tensor of the whole image); the
models resize internally and return boxes in the input's pixel coordinates, which are the
original (upright) image's. Category names come from ``meta["categories"]``; ``N/A`` and
``__background__`` entries are never reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.models import get_model
from torchvision.ops import batched_nms

from cvtasks.config import suggest
from cvtasks.detect.config import DetectConfig
from cvtasks.errors import UsageError
from cvtasks.io.atomic import atomic_write_text
from cvtasks.log import warn
from cvtasks.render.draw import draw_boxes
from cvtasks.render.palette import class_colour
from cvtasks.tasks.base import Predictor, class_names
from cvtasks.types import Artifact, Frame, Result
from cvtasks.weights import (
    ResolvedWeights,
    check_model_name,
    load_into,
    load_weights,
    resolve_weights,
)

_NOT_A_CLASS = {"N/A", "__background__", "no person", "background"}
_ONLY_IN_OTHER_TASKS = ("keypointrcnn_", "maskrcnn_")


def detection_models() -> list[str]:
    """Box detectors (keypoint and mask models are served by pose and segment)."""
    names = torchvision.models.list_models(module=torchvision.models.detection)
    return [n for n in names if not n.startswith(_ONLY_IN_OTHER_TASKS)]


@dataclass
class Detection:
    """One object: class name, class index, score and ``[x1, y1, x2, y2]`` in pixels."""

    label: str
    index: int
    score: float
    box: list[float]

    def to_record(self) -> dict[str, Any]:
        return {"label": self.label, "index": self.index, "score": self.score, "box": self.box}


@dataclass
class DetectResult:
    """Detections of one image, highest score first.

    ``yolo_ids`` maps model class indices to contiguous YOLO class ids; with it, the result
    writes a YOLO label file (``--save-txt``).
    """

    predictions: list[Detection]
    width: int
    height: int
    yolo_ids: Mapping[int, int] | None = None

    def to_record(self) -> dict[str, Any]:
        return {"predictions": [p.to_record() for p in self.predictions]}

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for p in self.predictions:
            counts[p.label] = counts.get(p.label, 0) + 1
        return ", ".join(f"{n} {label}" for label, n in counts.items()) or "nothing"

    def annotate(self, image: np.ndarray) -> np.ndarray:
        return draw_detections(image, self.predictions)

    def artifacts(self) -> list[Artifact]:
        if self.yolo_ids is None:
            return []
        return [Artifact("labels", "labels", ".txt", self._write_yolo)]

    def _write_yolo(self, path: Path) -> None:
        assert self.yolo_ids is not None
        text = yolo_lines(self.predictions, self.width, self.height, self.yolo_ids)
        path.write_text(text, encoding="utf-8")


def draw_detections(
    image: np.ndarray,
    predictions: Sequence[Detection],
    colours: Sequence[tuple[int, int, int]] | None = None,
    tags: Sequence[str] | None = None,
) -> np.ndarray:
    """Boxes with ``label score`` tags (or ``tags``), lowest score drawn first, in the stable
    colour of their class (``colours`` overrides: tracking colours by track id)."""
    colours = list(colours) if colours is not None else detection_colours(predictions)
    tags = list(tags) if tags is not None else [f"{p.label} {p.score:.2f}" for p in predictions]
    order = sorted(range(len(predictions)), key=lambda i: predictions[i].score)
    return draw_boxes(
        image,
        [predictions[i].box for i in order],
        [tags[i] for i in order],
        [colours[i] for i in order],
    )


def detection_colours(predictions: Sequence[Detection]) -> list[tuple[int, int, int]]:
    """The colour of each object's class: the same class has the same colour in every image
    and every command (the legend of semantic masks uses the same palette)."""
    return [class_colour(p.index) for p in predictions]


def yolo_lines(
    predictions: Sequence[Detection], width: int, height: int, class_ids: Mapping[int, int]
) -> str:
    """YOLO label text: ``class cx cy w h score`` per line, coordinates normalised to 0-1;
    ``class`` is the contiguous YOLO id of the model's class index (``class_ids``)."""
    lines = []
    for p in predictions:
        x1, y1, x2, y2 = p.box
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        w, h = (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{class_ids[p.index]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f} {p.score:.6f}")
    return "".join(line + "\n" for line in lines)


def yolo_classes(categories: Sequence[str]) -> tuple[list[str], dict[int, int]]:
    """YOLO's contiguous class list: the model's categories without placeholders (``N/A``,
    background), in the model's order, and the map from model index to YOLO id.
    torchvision's 91-slot COCO list becomes the usual 80 classes (person 0 ... toothbrush 79)."""
    names: list[str] = []
    ids: dict[int, int] = {}
    for index, name in enumerate(categories):
        if name not in _NOT_A_CLASS:
            ids[index] = len(names)
            names.append(name)
    return names, ids


def write_yolo_names(out: Path, names: Sequence[str]) -> list[str]:
    """``labels/classes.txt`` (one name a line, line N = class N) and ``labels/data.yaml``
    (``nc`` and ``names``, as YOLO training tools read them)."""
    import yaml

    folder = out / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "classes.txt", "".join(f"{n}\n" for n in names))
    data = yaml.safe_dump(
        {"nc": len(names), "names": dict(enumerate(names))}, sort_keys=False, allow_unicode=True
    )
    header = "# Class ids of the YOLO label files in this folder (written by cvtasks --save-txt)\n"
    atomic_write_text(folder / "data.yaml", header + data)
    return [f"YOLO labels: {len(names)} classes named in {folder / 'classes.txt'} and data.yaml"]


# --------------------------------------------------------------------------- model building


def architecture_kwargs(name: str, resolved: ResolvedWeights, num_classes: int) -> dict[str, Any]:
    """Builder arguments: no backbone download, the class count, and keypoints for pose."""
    kwargs: dict[str, Any] = {"weights_backbone": None, "num_classes": num_classes}
    if name.startswith("keypointrcnn_"):
        kwargs["num_keypoints"] = len(resolved.member.meta["keypoint_names"])
    return kwargs


def build_detector(name: str, resolved: ResolvedWeights, num_classes: int) -> nn.Module:
    """Build a torchvision detector with ``weights=None`` and load the resolved weights."""
    state = load_weights(resolved)
    if resolved.kind == "none":
        warn(f"--weights none: {name} has random weights; its detections are meaningless")
    model = get_model(name, weights=None, **architecture_kwargs(name, resolved, num_classes))
    if state is not None:
        load_into(model, state, resolved.describe())
    return model.eval()


def configure_detector(model: nn.Module, cfg: DetectConfig, filters_after_model: bool) -> None:
    """Push the score threshold (and, when nothing filters afterwards, the detection count)
    into the model so it pastes fewer masks and keypoints; results are unchanged by this."""
    transform = getattr(model, "transform", None)
    if cfg.min_size is not None:
        if transform is None or getattr(transform, "fixed_size", None) is not None:
            raise UsageError(
                f"--min-size does not apply to {cfg.model} (it has a fixed input size)"
            )
        scale = cfg.min_size / transform.min_size[0]
        transform.min_size = (cfg.min_size,)
        transform.max_size = round(transform.max_size * scale)
    heads = getattr(model, "roi_heads", None)
    owner = heads if heads is not None else model
    if hasattr(owner, "score_thresh"):
        owner.score_thresh = cfg.conf
    count_attr = "detections_per_img"
    if not filters_after_model and hasattr(owner, count_attr):
        setattr(owner, count_attr, min(getattr(owner, count_attr), cfg.max_det))


# --------------------------------------------------------------------------- filtering


def parse_classes(requested: Sequence[str], categories: Sequence[str]) -> set[int] | None:
    """Turn ``--classes`` names/indices into category indices (None: keep all)."""
    if not requested:
        return None
    valid = {name.lower(): i for i, name in enumerate(categories) if name not in _NOT_A_CLASS}
    chosen: set[int] = set()
    for item in requested:
        text = item.strip()
        if text.isdigit():
            index = int(text)
            if index >= len(categories) or categories[index] in _NOT_A_CLASS:
                raise UsageError(f"--classes: {index} is not a class index of this model")
            chosen.add(index)
        elif text.lower() in valid:
            chosen.add(valid[text.lower()])
        else:
            raise UsageError(f"--classes: unknown class '{text}'" + suggest(text.lower(), valid))
    return chosen


@dataclass
class DetectionFilter:
    """Score threshold, class filter, optional extra NMS and max-det, in that order."""

    conf: float
    classes: set[int] | None = None
    iou: float | None = None
    agnostic: bool = False
    max_det: int = 100
    hidden: set[int] = field(default_factory=set)  # N/A and background indices

    @property
    def changes_model_top_k(self) -> bool:
        """Whether filters after the model can drop detections the model ranked first."""
        return self.classes is not None or self.iou is not None or self.agnostic

    def keep(self, boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Indices of the detections to report, highest score first."""
        mask = scores >= self.conf
        if self.hidden:
            mask &= ~torch.isin(labels, torch.tensor(sorted(self.hidden), device=labels.device))
        if self.classes is not None:
            mask &= torch.isin(labels, torch.tensor(sorted(self.classes), device=labels.device))
        idx = torch.nonzero(mask).flatten()
        if self.iou is not None or self.agnostic:
            groups = torch.zeros_like(labels[idx]) if self.agnostic else labels[idx]
            kept = batched_nms(boxes[idx].float(), scores[idx].float(), groups, self.iou or 0.5)
            idx = idx[kept]
        order = torch.argsort(scores[idx], descending=True, stable=True)
        return idx[order][: self.max_det]


def to_detections(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    keep: torch.Tensor,
    categories: Sequence[str],
) -> list[Detection]:
    """Detections for the kept indices, coordinates rounded to 1/100 pixel."""
    out = []
    for i in keep.tolist():
        index = int(labels[i])
        label = categories[index] if index < len(categories) else str(index)
        box = [round(float(v), 2) for v in boxes[i].tolist()]
        out.append(Detection(label, index, round(float(scores[i]), 6), box))
    return out


# --------------------------------------------------------------------------- predictor


class DetectPredictor(Predictor):
    """A torchvision detector plus the filters of :class:`DetectionFilter`."""

    task = "detect"
    models: Callable[[], list[str]] = staticmethod(detection_models)

    def __init__(self, cfg: DetectConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        check_model_name(cfg.model, type(self).models(), self.task)
        self.weights = resolve_weights(cfg.model, cfg.weights, cfg.release)
        self.categories = class_names(self.weights, cfg.labels)
        self.filter = DetectionFilter(
            conf=cfg.conf,
            classes=parse_classes(cfg.classes, self.categories),
            iou=cfg.iou,
            agnostic=cfg.agnostic_nms,
            max_det=cfg.max_det,
            hidden={i for i, n in enumerate(self.categories) if n in _NOT_A_CLASS},
        )
        self.yolo_names, yolo_ids = yolo_classes(self.categories)
        self.yolo_ids = yolo_ids if cfg.save_txt else None
        self.transforms = self.weights.member.transforms()
        self.model: Any
        if self.weights.kind == "exported":  # --backend with a `cvtasks export` file
            self.model = exported_detector(self.weights, cfg, device)
        else:
            self.model = build_detector(cfg.model, self.weights, len(self.categories))
            configure_detector(self.model, cfg, self.filter.changes_model_top_k)
            self.model.to(device)

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.transforms

    def tensor_preprocessor(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return self.transforms  # torchvision's preset transforms take tensors as well as images

    def collate(self, inputs: Sequence[Any]) -> Any:
        return list(inputs)

    def decode_min_side(self) -> int | None:
        """The detector resizes every image so that its shorter side is ``min_size`` (or less,
        under ``max_size``): a JPEG decoded at a reduced scale that keeps the shorter side at
        least that gives it nearly the same input; outputs are mapped back to full size."""
        transform = getattr(self.model, "transform", None)
        if transform is None or getattr(transform, "fixed_size", None) is not None:
            return None
        return int(transform.min_size[-1])

    def infer(self, batch: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        outputs: list[dict[str, torch.Tensor]] = run_grouped(lambda g: self.model(g), batch)
        for out, tensor in zip(outputs, batch, strict=True):
            out["decoded_size"] = torch.tensor(tensor.shape[-2:])  # (height, width)
        return outputs

    def postprocess(
        self, outputs: Sequence[Mapping[str, torch.Tensor]], frames: Sequence[Frame]
    ) -> list[Result]:
        results: list[Result] = []
        for decoded, frame in zip(outputs, frames, strict=True):
            out = to_full_size(decoded, frame)
            keep = self.filter.keep(out["boxes"], out["scores"], out["labels"])
            detections = to_detections(
                out["boxes"], out["scores"], out["labels"], keep, self.categories
            )
            results.append(self.make_result(detections, out, keep, frame))
        return results

    def make_result(
        self,
        detections: list[Detection],
        out: Mapping[str, torch.Tensor],
        keep: torch.Tensor,
        frame: Frame,
    ) -> Result:
        return DetectResult(detections, frame.width, frame.height, self.yolo_ids)

    def finalize(self, out: Path | None) -> list[str]:
        """With ``--save-txt``: the YOLO names files beside the label files."""
        if out is None or self.yolo_ids is None:
            return []
        return write_yolo_names(out, self.yolo_names)


def exported_detector(resolved: ResolvedWeights, cfg: DetectConfig, device: torch.device) -> Any:
    """The runtime model of an exported detector; its thresholds and size were fixed at
    export, so --min-size cannot change them and a --conf below its score threshold warns."""
    from cvtasks.detect.runtime import runtime_detector
    from cvtasks.export.runtime import Runtime

    meta = resolved.export or {}
    if cfg.min_size is not None and cfg.min_size != meta.get("min_size"):
        raise UsageError(
            f"--min-size is fixed in an exported detector (this one: {meta.get('min_size')}): "
            "export it again with `cvtasks export --min-size`"
        )
    floor = float(meta.get("score_thresh", 0.0))
    if cfg.conf < floor:
        warn(f"--conf {cfg.conf}: the exported model keeps only detections scoring >= {floor}")
    runtime = Runtime(resolved.path or "", cfg.backend, device, cfg.threads)
    return runtime_detector(runtime, list(meta.get("outputs") or ["boxes", "labels", "scores"]))


def to_full_size(out: Mapping[str, torch.Tensor], frame: Frame) -> Mapping[str, torch.Tensor]:
    """Boxes and keypoints of an image decoded at a reduced scale (``--jpeg-draft``), in the
    full image's pixels: scaled per axis by full size / decoded size (exact sizes, not the
    nominal 1/2, 1/4, 1/8, which libjpeg rounds up)."""
    height, width = (int(v) for v in out["decoded_size"])
    if (width, height) == (frame.width, frame.height) or not width or not height:
        return out
    sx, sy = frame.width / width, frame.height / height
    scaled = dict(out)
    scaled["boxes"] = out["boxes"] * torch.tensor([sx, sy, sx, sy], device=out["boxes"].device)
    if "keypoints" in out:
        factor = torch.tensor([sx, sy, 1.0], device=out["keypoints"].device)
        scaled["keypoints"] = out["keypoints"] * factor
    return scaled


def run_grouped(
    forward: Callable[[list[torch.Tensor]], list[Any]], batch: list[torch.Tensor]
) -> list[Any]:
    """Call ``forward`` once per group of same-shaped inputs and return outputs in order.

    Detectors pad a batch to its largest image, which changes what smaller images see at
    their borders; grouping by shape keeps every result equal to a one-image forward.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, tensor in enumerate(batch):
        groups.setdefault(tuple(tensor.shape), []).append(i)
    outputs: list[Any] = [None] * len(batch)
    for indices in groups.values():
        for i, out in zip(indices, forward([batch[i] for i in indices]), strict=True):
            outputs[i] = out
    return outputs
