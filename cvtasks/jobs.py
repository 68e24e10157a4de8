"""Batch jobs: one YAML file naming the task, its inputs and options."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cvtasks.config import BaseConfig, config_fields, field_types, meta_of, suggest
from cvtasks.config_build import build_config, parse_set_overrides
from cvtasks.errors import ConfigError
from cvtasks.safe_yaml import load_yaml_file
from cvtasks.tasks.registry import get_task
from cvtasks.tasks.spec import TaskSpec


def load_job(
    path: str | Path, sets: Iterable[str] = (), options: Sequence[str] = ()
) -> tuple[TaskSpec, BaseConfig]:
    """Read a job file; ``--set`` overrides win over it, and the task's own options given on
    the command line (``--weights w.pth``, ``-b 4``) win over both. Inputs are relative to the
    current directory."""
    data = load_yaml_file(path)
    overrides = parse_set_overrides(sets)
    task = overrides.pop("task", None) or data.pop("task", None)
    data.pop("task", None)
    if not task:
        raise ConfigError(f"{path}: a job needs a 'task:' key (e.g. task: classify)")
    spec = get_task(str(task))
    layers = [(str(path), data), ("--set", overrides)]
    layers.append(("command line", parse_task_options(spec, options)))
    cfg = build_config(spec.config_cls, layers)
    if not cfg.inputs:
        raise ConfigError(f"{path}: a job needs 'inputs:' (a path or a list of paths)")
    return spec, cfg


def parse_task_options(spec: TaskSpec, tokens: Sequence[str]) -> dict[str, Any]:
    """The task's command-line options (``--top-k 3``, ``--top-k=3``, ``-m resnet18``,
    ``--save-images``, ``--no-fold-bn``) as config values; values are typed by the config."""
    cls = spec.config_cls
    hints = field_types(cls)
    names: dict[str, tuple[str, bool]] = {}
    repeatable = {f.name for f in config_fields(cls) if meta_of(f).repeatable}
    for f in config_fields(cls):
        meta = meta_of(f)
        if not meta.cli:
            continue
        flag = "--" + f.name.replace("_", "-")
        names[flag] = (f.name, True)
        if meta.negatable:
            names["--no-" + flag[2:]] = (f.name, False)
        if meta.flag:
            names[meta.flag] = (f.name, True)
    values: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        name, equals, given = tokens[i].partition("=")
        if name not in names:
            raise ConfigError(
                f"cvtasks run: {tokens[i]!r} is not an option of {spec.name}"
                + suggest(name, names)
                + f" (options are those of `cvtasks {spec.name} --help`)"
            )
        key, positive = names[name]
        if typing.get_origin(hints[key]) is None and hints[key] is bool:
            value: Any = given if equals else positive
        elif equals:
            value = given
        elif i + 1 < len(tokens):
            value = tokens[i + 1]
            i += 1
        else:
            raise ConfigError(f"cvtasks run: {name} needs a value")
        if key in repeatable:  # --line A --line B: every occurrence is one item
            values.setdefault(key, []).append(value)
        else:
            values[key] = value
        i += 1
    return values
