"""`cvtasks eval explain`: the explain predictor of the model (classifier, detector or
segmenter) and, per explained target, the numbers of :mod:`cvtasks.explain.eval_scores`.

What a classifier explains on an image with annotated objects follows the pointing game's
protocol (Zhang et al. 2016): each annotated category the model has a class for (by name or
``--class-map``; of several classes, the most probable), its evidence that category's objects.
Otherwise the top class (or ``--target``) is explained, its evidence every annotated object.
Detectors and segmenters explain what `explain` explains: each detection, each class region.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from cvtasks.errors import UsageError
from cvtasks.explain.config import ATTRIBUTION_METHODS
from cvtasks.explain.eval_config import ExplainEvalConfig
from cvtasks.explain.eval_scores import evaluation_record, evidence_mask, score_maps
from cvtasks.explain.evidence import Evidence, ImageEvidence
from cvtasks.explain.faithfulness import centre_map, curves, random_map
from cvtasks.explain.methods import baseline_like
from cvtasks.explain.result import ExplainResult, TargetExplanation
from cvtasks.render.heatmap import place_in_image
from cvtasks.tasks.base import Predictor
from cvtasks.types import Frame, Result


def make_explain_eval_predictor(cfg: ExplainEvalConfig, device: torch.device) -> Predictor:
    return ExplainEvalPredictor(cfg, device)


class ExplainEvalPredictor(Predictor):
    """Explains with the model's explain predictor, then measures every map."""

    task = "explain"
    needs_images = True

    def __init__(self, cfg: ExplainEvalConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        from cvtasks.explain.dispatch import make_explain_predictor
        from cvtasks.explain.object_predictor import ObjectExplainPredictor

        if cfg.method not in ATTRIBUTION_METHODS:
            raise UsageError(
                f"eval explain measures attribution maps: {', '.join(ATTRIBUTION_METHODS)}"
            )
        if cfg.channel is not None:
            raise UsageError("eval explain measures maps of classes and objects, not --channel")
        inner: Any = make_explain_predictor(cfg, device)
        self.inner = inner
        self.objects = isinstance(inner, ObjectExplainPredictor)
        self.evidence = (
            Evidence(cfg.gt, cfg.class_map, cfg.fixation_sigma) if cfg.gt is not None else None
        )
        self.labels: list[str] = list(inner.labels)
        self.weights = inner.weights
        if self.evidence is not None and self.evidence.kind == "objects":
            self._check_mapping()

    def _check_mapping(self) -> None:
        assert self.evidence is not None
        mapped = {self.evidence.category_of(label) for label in self.labels} - {None}
        if not mapped and self.objects:
            from cvtasks.errors import listed

            raise UsageError(
                f"no class of {self.cfg.model} is a category of --gt (categories: "
                f"{listed(self.evidence.categories)}); map them with --class-map label=category"
            )

    # The engine's contract, delegated to the model's own explain predictor.
    def preprocessor(self) -> Callable[[Image.Image], Any]:
        return self.inner.preprocessor()

    def tensor_preprocessor(self) -> Callable[[torch.Tensor], Any] | None:
        return self.inner.tensor_preprocessor()

    def decode_min_side(self) -> int | None:
        return self.inner.decode_min_side()

    def collate(self, inputs: Sequence[Any]) -> Any:
        return self.inner.collate(inputs)

    def to_device(self, batch: Any) -> Any:
        return self.inner.to_device(batch)

    def inference_context(self) -> contextlib.AbstractContextManager[object]:
        return torch.enable_grad()

    def preprocessing_note(self) -> str | None:
        return self.inner.preprocessing_note()

    def infer(self, batch: Any) -> Any:
        return self.infer_frames(batch, [None] * len(batch))

    def infer_frames(self, batch: Any, frames: Sequence[Frame | None]) -> list[dict[str, Any]]:
        return [self._one(x.unsqueeze(0), frame) for x, frame in zip(batch, frames, strict=True)]

    def _one(self, x: torch.Tensor, frame: Frame | None) -> dict[str, Any]:
        assert isinstance(self.cfg, ExplainEvalConfig)
        found = None
        if self.evidence is not None and frame is not None:
            found = self.evidence.for_image(frame.source, frame.width, frame.height)
        extra: dict[str, Any] = {}
        score_of: Callable[[int], Callable[[torch.Tensor], torch.Tensor]]
        if self.objects:
            targets, scores = self.inner.explain(x)
            inner_output: Any = (targets, tuple(x.shape[-2:]))

            def score_of(i: int) -> Callable[[torch.Tensor], torch.Tensor]:
                return lambda batch: scores(batch)[:, i]

        else:
            with torch.no_grad():
                probs = self.inner.model(x).float().softmax(dim=1)[0]
            top = int(probs.argmax())
            extra["top1"] = {"label": self.labels[top], "index": top,
                             "score": round(float(probs[top]), 6)}  # fmt: skip
            targets = self.inner.explain(x, self._classes(found, probs))
            inner_output = targets
            model = self.inner.model

            def score_of(i: int) -> Callable[[torch.Tensor], torch.Tensor]:
                target = targets[i].index
                return lambda batch: model(batch).float().softmax(dim=1)[:, target]

        grey = baseline_like(x, "zero", self.inner.options.neutral)
        size = (int(x.shape[-2]), int(x.shape[-1]))
        seed = zlib.crc32(frame.source.encode()) ^ self.cfg.seed if frame is not None else 0
        measured = []
        for i, target in enumerate(targets):
            maps = {
                "method": target.attribution.heat,
                "random": random_map(size, (seed + i) & 0x7FFFFFFF),
                "centre": centre_map(size),
            }
            steps, batch = self.cfg.curve_steps, self.cfg.batch_size
            measured.append((maps, curves(score_of(i), x, maps, grey, steps, batch)))
        return {"inner": inner_output, "measured": measured, "evidence": found, "extra": extra}

    def _classes(self, found: ImageEvidence | None, probs: torch.Tensor) -> list[int] | None:
        """The pointing game's targets: each annotated category's most probable class."""
        if self.evidence is None or found is None or not found.objects:
            return None
        chosen = []
        for category in dict.fromkeys(o.category.lower() for o in found.objects):
            classes = [
                i for i, label in enumerate(self.labels)
                if self.evidence.category_of(label) == category
            ]  # fmt: skip
            if classes:
                chosen.append(max(classes, key=lambda i: float(probs[i])))
        return chosen or None

    def postprocess(
        self, outputs: Sequence[dict[str, Any]], frames: Sequence[Frame]
    ) -> list[Result]:
        assert isinstance(self.cfg, ExplainEvalConfig)
        results = self.inner.postprocess([o["inner"] for o in outputs], frames)
        for result, output, frame in zip(results, outputs, frames, strict=True):
            assert isinstance(result, ExplainResult)
            result.fields.update(output["extra"])
            found = output["evidence"]
            if self.evidence is not None:
                result.fields["gt"] = "found" if found is not None else "not in --gt"
            for target, (maps, traced) in zip(result.targets, output["measured"], strict=True):
                self._measure(result, target, maps, traced, found, frame)
        return results

    def _measure(
        self,
        result: ExplainResult,
        target: TargetExplanation,
        maps: dict[str, np.ndarray],
        traced: dict[str, dict[str, np.ndarray]],
        found: ImageEvidence | None,
        frame: Frame,
    ) -> None:
        assert isinstance(self.cfg, ExplainEvalConfig)
        placed = {name: place_in_image(m, result.box, frame.width, frame.height)
                  for name, m in maps.items()}  # fmt: skip
        mask, how = None, ""
        if found is not None and self.evidence is not None and found.objects:
            mask, how = evidence_mask(self.evidence, found, result, target)
        elif found is not None:
            how = "human map"
        if mask is not None:
            target.human, target.human_kind = mask, "objects"
        elif found is not None and found.fixations is not None:
            target.human, target.human_kind = found.fixations, "fixations"
        elif found is not None and found.density is not None:
            target.human, target.human_kind = found.density, "density"
        scores = score_maps(placed, mask, found, traced, self.cfg.tolerance,
                            self.cfg.top_percent, self.cfg.seed)  # fmt: skip
        target.fields["evaluation"] = evaluation_record(scores, traced, how or None)
