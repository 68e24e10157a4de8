"""Image classification with any torchvision classifier.

Preprocessing is the weights' own ``transforms()`` and the labels are the weights'
``meta["categories"]`` (also for weight files and random init, which use the DEFAULT entry),
unless ``--labels`` names your own classes, which sets a head of that many outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.models import get_model

from cvtasks.classify.config import ClassifyConfig
from cvtasks.log import warn
from cvtasks.render.draw import draw_boxes, draw_text_panel
from cvtasks.render.palette import class_colour
from cvtasks.tasks.base import Predictor, class_names
from cvtasks.types import Frame, Result
from cvtasks.weights import (
    ResolvedWeights,
    check_model_name,
    load_into,
    load_weights,
    resolve_weights,
)


@dataclass
class ClassPrediction:
    """One ranked class: its name, index in the model's output and softmax probability."""

    label: str
    index: int
    score: float


@dataclass
class FaceVerdict:
    """``--crop faces``: one face (box, score, landmarks) and the classifier's top-k on it."""

    face: Any  # cvtasks.classify.face_crops.FoundFace
    predictions: list[ClassPrediction]
    probabilities: np.ndarray | None = None  # every class's (per-face verdicts of a video)
    track_id: int | None = None  # videos: the same face keeps its id

    @property
    def box(self) -> list[float]:
        return list(self.face.box)

    @property
    def score(self) -> float:
        return float(self.face.score)

    def to_record(self) -> dict[str, Any]:
        record = {**self.face.to_record(), "predictions": [asdict(p) for p in self.predictions]}
        if self.track_id is not None:
            record["track_id"] = self.track_id
        return record


@dataclass
class ClassifyResult:
    """Top-k classes of one image, highest probability first (``probabilities``: every
    class's, kept only for per-video verdicts; not in the record). With ``--crop faces``,
    ``faces`` holds every face's verdict and ``predictions`` the most confident face's."""

    predictions: list[ClassPrediction]
    probabilities: np.ndarray | None = None
    faces: list[FaceVerdict] | None = None
    decision: dict[str, Any] | None = None  # a calibrated run folder's two-class verdict
    log_probabilities: np.ndarray | None = None  # eval only: for calibration, not recorded

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"predictions": [asdict(p) for p in self.predictions]}
        if self.decision is not None:
            record["decision"] = self.decision
        if self.faces is not None:
            record["faces"] = [f.to_record() for f in self.faces]
        return record

    def summary(self) -> str:
        """Every one of the top-k classes, one per line of the table cell."""
        if self.faces == []:
            return "no face"
        return "\n".join(f"{p.label} {p.score:.3f}" for p in self.predictions)

    def annotate(self, image: np.ndarray) -> np.ndarray:
        if self.faces is not None:
            tags = [
                (f"#{v.track_id} " if v.track_id is not None else "")
                + f"{v.predictions[0].label} {v.predictions[0].score:.2f}"
                for v in self.faces
            ]
            colours = [class_colour(v.predictions[0].index + 1) for v in self.faces]
            return draw_boxes(image, [v.face.box for v in self.faces], tags, colours)
        lines = [f"{p.label}  {p.score:.2f}" for p in self.predictions]
        return draw_text_panel(image, lines)


def classification_models() -> list[str]:
    """Every classifier torchvision lists (``torchvision.models``, no detection/video/...)."""
    return list(torchvision.models.list_models(module=torchvision.models))


def _has_aux_heads(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("aux1.", "aux2.", "AuxLogits.")) for k in state)


def architecture_kwargs(
    name: str, resolved: ResolvedWeights, state: Mapping[str, torch.Tensor] | None
) -> dict[str, Any]:
    """Builder arguments that torchvision derives from pretrained weights.

    torchvision's builders change the architecture when given weights (it calls this
    ``_ovewrite_named_param``); we build with ``weights=None`` and load the state dict
    ourselves (``weights_only=True``), so we pass the same arguments explicitly:
    GoogLeNet/Inception normalise their input themselves and keep their auxiliary heads,
    ViT and MaxViT take their input size from ``meta["min_size"]``.
    """
    meta = resolved.member.meta
    if name in ("googlenet", "inception_v3"):
        return {
            "transform_input": True,
            "aux_logits": state is None or _has_aux_heads(state),
            "init_weights": state is None,
        }
    if name.startswith("vit_"):
        return {"image_size": meta["min_size"][0]}
    if name.startswith("maxvit_"):
        return {"input_size": meta["min_size"]}
    return {}


def build_classifier(
    name: str, resolved: ResolvedWeights, num_classes: int, warn_random: bool = True
) -> nn.Module:
    """Build ``name`` with ``num_classes`` outputs and load the resolved weights (if any)."""
    state = load_weights(resolved)
    kwargs = architecture_kwargs(name, resolved, state)
    if resolved.kind == "none" and warn_random:
        warn(f"--weights none: {name} has random weights; its predictions are meaningless")
    model = get_model(name, weights=None, num_classes=num_classes, **kwargs)
    if state is not None:
        load_into(model, state, resolved.describe())
    return model.eval()


class ClassifyPredictor(Predictor):
    """Softmax top-k over a torchvision classifier's logits."""

    task = "classify"
    supports_lanes = True

    def __init__(self, cfg: ClassifyConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        check_model_name(cfg.model, classification_models(), "classify")
        self.weights = resolve_weights(cfg.model, cfg.weights, cfg.release)
        self.labels = class_names(self.weights, cfg.labels)
        self.top_k = min(cfg.top_k, len(self.labels))
        self.transforms = self.weights.transforms()
        self.model: Any
        if self.weights.kind == "exported":  # --backend with a `cvtasks export` file
            from cvtasks.classify.runtime import runtime_classifier
            from cvtasks.export.runtime import Runtime

            runtime = Runtime(self.weights.path or "", cfg.backend, device, cfg.threads)
            self.model = runtime_classifier(runtime)
        else:
            model = build_classifier(cfg.model, self.weights, len(self.labels)).to(device)
            self.model = self.maybe_compile(
                self.use_channels_last(self.maybe_fold_batchnorm(model))
            )
        self.crop = crop_spec(cfg)
        self.calibration = self._calibration(cfg)
        self.temperature = float(self.calibration["temperature"]) if self.calibration else 1.0
        from cvtasks.classify.config import EvalConfig

        self.keeps_logs = isinstance(cfg, EvalConfig)
        self.faces_preprocess: Any = None
        if self.crop is not None:
            from cvtasks.classify.face_crops import FaceCropper, FacesPreprocess

            self.supports_lanes = False  # type: ignore[misc]
            cropper = FaceCropper(self.crop, cfg.face_weights)
            self.faces_preprocess = FacesPreprocess(cropper, self.transforms)

    def _calibration(self, cfg: ClassifyConfig) -> dict[str, Any] | None:
        """A run folder's calibration.json (``eval classify --calibrate``), unless this run is
        the one that fits it afresh."""
        from cvtasks.classify.calibration import read_calibration

        if getattr(cfg, "calibrate", False):
            return None
        found = read_calibration(str(cfg.weights))
        if found and found.get("positive") is not None and found["positive"] not in self.labels:
            found["positive"] = None  # a calibration of other classes decides nothing here
        return found

    def preprocessor(self) -> Callable[[Image.Image], Any]:
        return self.faces_preprocess or self.transforms

    def tensor_preprocessor(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        if self.crop is not None:
            return None  # faces are found and cropped on the CPU
        return self.transforms  # torchvision's preset transforms take tensors as well as images

    def decode_min_side(self) -> int | None:
        if self.crop is not None:
            return None  # the face detector sees the full image
        return int(self.transforms.resize_size[0])

    def preprocessing_note(self) -> str | None:
        note = super().preprocessing_note()
        if self.crop is not None and note is not None:
            note += f"; crop {self.crop.describe()}"
        return note

    def collate(self, inputs: Sequence[Any]) -> Any:
        return list(inputs) if self.crop is not None else super().collate(inputs)

    def to_device(self, batch: Any) -> Any:
        if self.crop is None:
            return super().to_device(batch)
        for item in batch:
            item.tensors = self.layout(item.tensors.to(self.device))
        return batch

    def infer(self, batch: Any) -> Any:
        if self.crop is not None:
            return self._infer_faces(batch)
        logits = self.model(batch).float() / self.temperature
        if self.keeps_logs:  # eval: calibration needs log-probabilities that do not underflow
            return logits.softmax(dim=1), logits.log_softmax(dim=1)
        return logits.softmax(dim=1)

    def _infer_faces(self, batch: Any) -> list[tuple[Any, torch.Tensor, torch.Tensor]]:
        """Every face of the batch in one forward pass, split back per image."""
        counts = [len(item.faces) for item in batch]
        crops = [item.tensors for item in batch if len(item.faces)]
        logits = self.model(torch.cat(crops)).float() / self.temperature if crops else None
        out, start = [], 0
        for item, count in zip(batch, counts, strict=True):
            mine = logits[start : start + count] if logits is not None else torch.empty(0, 0)
            out.append((item.faces, mine.softmax(dim=1), mine.log_softmax(dim=1)))
            start += count
        return out

    def _ranked(self, probs: torch.Tensor) -> list[ClassPrediction]:
        scores, indices = probs.topk(self.top_k)
        return [
            ClassPrediction(self.labels[i], int(i), round(float(s), 6))
            for s, i in zip(scores.tolist(), indices.tolist(), strict=True)
        ]

    def postprocess(self, outputs: Any, frames: Sequence[Frame]) -> list[Result]:
        assert isinstance(self.cfg, ClassifyConfig)
        if self.crop is not None:
            results: list[Result] = []
            for faces, probs, logs in outputs:
                verdicts = [
                    FaceVerdict(f, self._ranked(p), p.cpu().numpy())
                    for f, p in zip(faces, probs, strict=True)
                ]
                first = verdicts[0].predictions if verdicts else []
                every = probs[0].cpu().numpy() if verdicts else None
                decision = self._decision(every) if every is not None else None
                result = ClassifyResult(first, every, verdicts, decision)
                result.log_probabilities = logs[0].cpu().numpy() if verdicts else None
                results.append(result)
            return results
        logs = None
        if isinstance(outputs, tuple):
            outputs, logs = outputs
        scores, indices = outputs.topk(self.top_k, dim=1)
        keep_all = self.cfg.aggregate is not None or self.calibration
        every = outputs.float().cpu().numpy() if keep_all else None
        results = []
        for row, (row_scores, row_indices) in enumerate(
            zip(scores.tolist(), indices.tolist(), strict=True)
        ):
            preds = [
                ClassPrediction(self.labels[i], int(i), round(float(s), 6))
                for s, i in zip(row_scores, row_indices, strict=True)
            ]
            mine = every[row] if every is not None else None
            decision = self._decision(mine) if mine is not None else None
            result = ClassifyResult(preds, mine, None, decision)
            if logs is not None:
                result.log_probabilities = logs[row].cpu().numpy()
            results.append(result)
        return results

    def _decision(self, probabilities: np.ndarray) -> dict[str, Any] | None:
        """Two classes with a calibrated threshold: the verdict by that threshold."""
        cal = self.calibration
        if not cal or cal.get("positive") is None or cal.get("threshold") is None:
            return None
        positive = self.labels.index(cal["positive"])
        score = float(probabilities[positive])
        other = self.labels[1 - positive] if len(self.labels) == 2 else None
        accepted = score >= float(cal["threshold"])
        return {
            "label": cal["positive"] if accepted else other,
            "score": round(score, 6),
            "threshold": cal["threshold"],
            "rule": cal.get("rule"),
        }


def crop_spec(cfg: Any) -> Any:
    """``--crop faces`` (with ``--context``), or what the run folder given as ``-w`` was trained
    with; None for whole images."""
    from cvtasks.classify.face_crops import CropSpec
    from cvtasks.config import is_given
    from cvtasks.run_spec import is_run_folder, read_run

    if cfg.crop == "faces":
        return CropSpec(cfg.context)
    spec = str(cfg.weights).strip()
    if is_run_folder(spec) and not is_given(cfg, "crop"):
        crop = read_run(spec).crop
        if crop and crop.get("faces"):
            context = cfg.context if is_given(cfg, "context") else crop.get("context")
            return CropSpec(context)
    return None
