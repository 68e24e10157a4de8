"""The task registry: names, one-line help, config schemas and where each predictor lives.

Kept free of torch so that building the CLI (and ``cvtasks --help``) stays fast; the predictor
module is imported only when a task runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from cvtasks.config import BaseConfig, option
from cvtasks.errors import UsageError

MODEL_HELP = "Model name: a torchvision builder name (see `cvtasks models list`)."


@dataclass
class ClassifyConfig(BaseConfig):
    """Options of `cvtasks classify`."""

    model: str = option("resnet50", MODEL_HELP, flag="-m", panel="Model")
    top_k: int = option(5, "Predictions per image, highest first.", minimum=1, panel="Task")


@dataclass(frozen=True)
class TaskSpec:
    """One task family: its CLI name, help, config class and predictor location."""

    name: str
    help: str
    config_cls: type[BaseConfig]
    predictor: str  # "module:Class"
    models: str  # "module:function" returning the model names this task accepts

    def load_predictor_class(self) -> Any:
        """Import the predictor class (this is where torch gets imported)."""
        return _load(self.predictor)

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
