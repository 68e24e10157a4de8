"""Which predictor or runner serves each explain method (the registry points here)."""

from __future__ import annotations

from typing import Any, TextIO

import torch

from cvtasks.errors import UsageError
from cvtasks.explain.config import ATTRIBUTION_METHODS, ExplainConfig
from cvtasks.explain.features import FeatureMapsPredictor, TopPatchesPredictor
from cvtasks.explain.predictor import ExplainPredictor
from cvtasks.tasks.base import Predictor
from cvtasks.tasks.spec import TaskSpec

MODEL_LEVEL = ("filters", "maximize")  # methods that look at a model without inputs


def make_explain_predictor(cfg: ExplainConfig, device: torch.device) -> Predictor:
    """The predictor serving ``cfg.method`` on ``cfg.model``."""
    from cvtasks.explain.objects import detector_models, semantic_models

    if cfg.model in detector_models() or cfg.model in semantic_models():
        if cfg.method not in ATTRIBUTION_METHODS:
            raise UsageError(
                f"{cfg.method} looks inside a classifier; {cfg.model} is explained by the "
                f"attribution methods: {', '.join(ATTRIBUTION_METHODS)}"
            )
        from cvtasks.explain.object_predictor import ObjectExplainPredictor

        return ObjectExplainPredictor(cfg, device)
    if cfg.method == "feature-maps":
        return FeatureMapsPredictor(cfg, device)
    if cfg.method == "top-patches":
        return TopPatchesPredictor(cfg, device)
    if cfg.method == "embed":
        from cvtasks.explain.embed import EmbedPredictor

        return EmbedPredictor(cfg, device)
    if cfg.method in MODEL_LEVEL:
        raise UsageError(f"{cfg.method} explains a model, not images")  # served by run_explain
    return ExplainPredictor(cfg, device)


def run_explain(
    spec: TaskSpec, cfg: ExplainConfig, *, stdin: TextIO | None = None, **kwargs: Any
) -> Any:
    """`cvtasks explain`: per-model methods run here; everything else through the engine."""
    from cvtasks.runner import run_task

    if cfg.method not in MODEL_LEVEL:
        return run_task(spec, cfg, stdin=stdin, **kwargs)
    from cvtasks.explain.model_level import run_model_level
    from cvtasks.explain.objects import detector_models, semantic_models

    if cfg.model in detector_models() or cfg.model in semantic_models():
        raise UsageError(f"{cfg.method} looks inside a classifier, not {cfg.model}")
    return run_model_level(cfg)
