"""Batch jobs: one YAML file naming the task, its inputs and options."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cvtasks.config import BaseConfig, build_config, load_yaml_file, parse_set_overrides
from cvtasks.errors import ConfigError
from cvtasks.tasks.registry import TaskSpec, get_task


def load_job(path: str | Path, sets: Iterable[str] = ()) -> tuple[TaskSpec, BaseConfig]:
    """Read a job file; ``--set`` overrides win. Inputs are relative to the current directory."""
    data = load_yaml_file(path)
    overrides = parse_set_overrides(sets)
    task = overrides.pop("task", None) or data.pop("task", None)
    data.pop("task", None)
    if not task:
        raise ConfigError(f"{path}: a job needs a 'task:' key (e.g. task: classify)")
    spec = get_task(str(task))
    cfg = build_config(spec.config_cls, [(str(path), data), ("--set", overrides)])
    if not cfg.inputs:
        raise ConfigError(f"{path}: a job needs 'inputs:' (a path or a list of paths)")
    return spec, cfg
