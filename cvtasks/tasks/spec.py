"""What the shared machinery knows of a task family: a :class:`TaskSpec` of "module:attr" targets.

Every target is imported only when used, so building the CLI imports the (torch-free) config
modules and nothing else, and no shared module imports a family's code at import time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from cvtasks.config import BaseConfig


def load_target(target: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass(frozen=True)
class TaskSpec:
    """One task family: its CLI name, help, config class and predictor location."""

    name: str
    help: str
    config: str  # "module:Class", a BaseConfig subclass (its module imports no torch)
    predictor: str  # "module:Class" or a factory (cfg, device) -> Predictor
    models: str  # "module:function" returning the model names this task accepts
    positional: tuple[str, ...] = ()  # config keys given as arguments before the inputs
    model_source: str = "torchvision"  # or "transformers" (hub ids, aliases, local folders)
    runner: str | None = None  # "module:function" replacing the standard run (see runner.py)
    expand: str = "cvtasks.io.sources:expand_inputs"  # what the inputs mean (files or sources)
    stage: str | None = None  # "module:function" (cfg, out, items) -> a stage after the model
    catalog: str = "cvtasks.catalog:TORCHVISION"  # what `cvtasks models` shows of its models
    parent: str | None = None  # a sub-command: `cvtasks PARENT KIND` (eval detect)
    kind: str | None = None  # its name under the parent
    exporter: str | None = None  # "module:function" (ExportConfig, images) -> ExportPlan

    @property
    def config_cls(self) -> type[BaseConfig]:
        """The config dataclass (imports the family's config module only)."""
        cls = load_target(self.config)
        if not (isinstance(cls, type) and issubclass(cls, BaseConfig)):
            raise TypeError(f"{self.config} is not a BaseConfig subclass")
        return cls

    def load_predictor_class(self) -> Any:
        """Import the predictor class (this is where torch gets imported)."""
        return load_target(self.predictor)

    def expand_function(self) -> Any:
        """``expand(specs, stdin=..., exclude=...) -> list[InputItem]``."""
        return load_target(self.expand)

    def make_stage(self, cfg: BaseConfig, out: Any, items: Any) -> Any:
        """The stage that runs after the predictor (tracking), or None."""
        return load_target(self.stage)(cfg, out, items) if self.stage else None

    def run_function(self) -> Any:
        """The function that runs this task: ``run(spec, cfg, stdin=...) -> RunSummary``."""
        return load_target(self.runner or "cvtasks.runner:run_task")

    def model_catalog(self) -> Any:
        """The :class:`cvtasks.catalog.ModelCatalog` that describes this task's models."""
        return load_target(self.catalog)

    def model_names(self) -> list[str]:
        """Names of the models this task accepts (imports torchvision)."""
        return list(load_target(self.models)())
