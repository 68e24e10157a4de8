"""The task registry: names, one-line help, config schemas and where each predictor lives.

Kept free of torch so that building the CLI (and ``cvtasks --help``) stays fast; the predictor
module is imported only when a task runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from cvtasks.config import BaseConfig
from cvtasks.errors import UsageError
from cvtasks.gaze.config import GazeConfig
from cvtasks.tasks.configs import (
    ATTRIBUTION_METHODS,
    EXPLAIN_METHODS,
    MODEL_HELP,
    VISUALISATION_METHODS,
    ClassifyConfig,
    DepthConfig,
    DetectConfig,
    ExplainConfig,
    PoseConfig,
    SegmentConfig,
)
from cvtasks.track.config import TrackConfig
from cvtasks.train.config import EvalConfig, TrainConfig

__all__ = [
    "ATTRIBUTION_METHODS",
    "EXPLAIN_METHODS",
    "MODEL_HELP",
    "TASKS",
    "VISUALISATION_METHODS",
    "ClassifyConfig",
    "DepthConfig",
    "DetectConfig",
    "EvalConfig",
    "ExplainConfig",
    "GazeConfig",
    "PoseConfig",
    "SegmentConfig",
    "TaskSpec",
    "TrackConfig",
    "TrainConfig",
    "get_task",
]


@dataclass(frozen=True)
class TaskSpec:
    """One task family: its CLI name, help, config class and predictor location."""

    name: str
    help: str
    config_cls: type[BaseConfig]
    predictor: str  # "module:Class"
    models: str  # "module:function" returning the model names this task accepts
    positional: tuple[str, ...] = ()  # config keys given as arguments before the inputs
    model_source: str = "torchvision"  # or "transformers" (hub ids, aliases, local folders)
    runner: str | None = None  # "module:function" replacing the standard run (see runner.py)
    expand: str = "cvtasks.io.sources:expand_inputs"  # what the inputs mean (files or sources)
    stage: str | None = None  # "module:function" (cfg, out, items) -> a stage after the model

    def load_predictor_class(self) -> Any:
        """Import the predictor class (this is where torch gets imported)."""
        return _load(self.predictor)

    def expand_function(self) -> Any:
        """``expand(specs, stdin=..., exclude=...) -> list[InputItem]``."""
        return _load(self.expand)

    def make_stage(self, cfg: BaseConfig, out: Any, items: Any) -> Any:
        """The stage that runs after the predictor (tracking), or None."""
        return _load(self.stage)(cfg, out, items) if self.stage else None

    def run_function(self) -> Any:
        """The function that runs this task: ``run(spec, cfg, stdin=...) -> RunSummary``."""
        return _load(self.runner or "cvtasks.runner:run_task")

    def model_names(self) -> list[str]:
        """Names of the models this task accepts (imports torchvision)."""
        return list(_load(self.models)())


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            name="classify",
            help="Classify images or video frames with a torchvision classifier (top-k labels).",
            config_cls=ClassifyConfig,
            predictor="cvtasks.tasks.classify:ClassifyPredictor",
            models="cvtasks.tasks.classify:classification_models",
            stage="cvtasks.tasks.aggregate:make_aggregate_stage",
        ),
        TaskSpec(
            name="detect",
            help="Detect objects (boxes, labels, scores) with a torchvision detector.",
            config_cls=DetectConfig,
            predictor="cvtasks.tasks.detect:DetectPredictor",
            models="cvtasks.tasks.detect:detection_models",
        ),
        TaskSpec(
            name="segment",
            help="Segment images: per-pixel classes (deeplabv3/fcn/lraspp) or instance masks "
            "(maskrcnn).",
            config_cls=SegmentConfig,
            predictor="cvtasks.tasks.segment:make_segment_predictor",
            models="cvtasks.tasks.segment:segmentation_models",
        ),
        TaskSpec(
            name="pose",
            help="Estimate human pose: person boxes and 17 COCO keypoints (keypointrcnn).",
            config_cls=PoseConfig,
            predictor="cvtasks.tasks.pose:PosePredictor",
            models="cvtasks.tasks.pose:pose_models",
        ),
        TaskSpec(
            name="gaze",
            help="Where each face looks (L2CS-Net on face crops from pose keypoints or a faces "
            "file): yaw, pitch and a 3-D gaze vector per face.",
            config_cls=GazeConfig,
            predictor="cvtasks.gaze.predictor:GazePredictor",
            models="cvtasks.gaze.models:gaze_models",
            stage="cvtasks.gaze.stage:make_face_track_stage",
        ),
        TaskSpec(
            name="explain",
            help="Explain a classifier's decision: occlusion, saliency, smoothgrad, "
            "integrated-gradients, deconvnet, guided-backprop, gradcam, guided-gradcam.",
            config_cls=ExplainConfig,
            predictor="cvtasks.tasks.explain_data:make_explain_predictor",
            models="cvtasks.tasks.classify:classification_models",
            positional=("method",),
            runner="cvtasks.tasks.explain_data:run_explain",
        ),
        TaskSpec(
            name="track",
            help="Track objects through videos, image sequences and live streams; count line "
            "crossings and zone occupancy (ByteTrack, OC-SORT, BoT-SORT, SORT).",
            config_cls=TrackConfig,
            predictor="cvtasks.track.predictors:make_track_predictor",
            models="cvtasks.track.models:track_models",
            expand="cvtasks.io.sources:expand_sequences",
            stage="cvtasks.track.resume:make_track_stage",
        ),
        TaskSpec(
            name="train",
            help="Train a classifier on your own labelled folders (fine-tune a torchvision "
            "model); the run folder is a weights spec (-w runs/NAME).",
            config_cls=TrainConfig,
            predictor="cvtasks.tasks.classify:ClassifyPredictor",
            models="cvtasks.tasks.classify:classification_models",
            runner="cvtasks.train.runner:run_train",
        ),
        TaskSpec(
            name="eval",
            help="Measure a classifier on a labelled folder: top-1/top-5, per-class precision, "
            "recall, F1, confusion; for two classes ROC AUC, EER, APCER, BPCER, ACER.",
            config_cls=EvalConfig,
            predictor="cvtasks.tasks.classify:ClassifyPredictor",
            models="cvtasks.tasks.classify:classification_models",
            positional=("kind",),
            expand="cvtasks.train.evaluate:expand_eval_inputs",
            stage="cvtasks.train.evaluate:make_eval_stage",
        ),
        TaskSpec(
            name="depth",
            help="Estimate depth from one image (Depth Anything V2, DPT, ZoeDepth; transformers).",
            config_cls=DepthConfig,
            predictor="cvtasks.tasks.depth:DepthPredictor",
            models="cvtasks.tasks.depth_models:depth_model_names",
            model_source="transformers",
        ),
    ]
}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name; unknown names are usage errors with a suggestion."""
    from cvtasks.config import suggest

    try:
        return TASKS[name]
    except KeyError:
        raise UsageError(
            f"unknown task '{name}'; tasks: {', '.join(TASKS)}" + suggest(name, TASKS)
        ) from None
