"""What ``cvtasks models`` shows: models per task, their weights' metadata and cache state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchvision.models._api import WeightsEnum

from cvtasks.config import suggest
from cvtasks.errors import UsageError
from cvtasks.tasks.registry import TASKS, TaskSpec
from cvtasks.weights import cache_path, fetch, is_cached, resolve_weights, weights_enum


@dataclass
class ModelRow:
    """One line of ``cvtasks models list``."""

    name: str
    task: str
    default_weights: str
    params_m: float | None
    gflops: float | None
    metric: str
    value: float | None
    cached: bool


def _headline_metric(member: WeightsEnum) -> tuple[str, float | None]:
    """The first metric the weights report, e.g. ``ImageNet-1K acc@1``."""
    metrics: dict[str, Any] = member.meta.get("_metrics") or {}
    for dataset, values in metrics.items():
        for name, value in values.items():
            return f"{dataset} {name}", float(value)
    return "", None


def _row(name: str, task: str) -> ModelRow:
    member = weights_enum(name)["DEFAULT"]
    metric, value = _headline_metric(member)
    params = member.meta.get("num_params")
    ops = member.meta.get("_ops")
    return ModelRow(
        name=name,
        task=task,
        default_weights=str(member),
        params_m=round(params / 1e6, 2) if params else None,
        gflops=round(float(ops), 3) if ops is not None else None,
        metric=metric,
        value=value,
        cached=is_cached(member),
    )


def list_models(task: str | None = None) -> list[ModelRow]:
    """Rows for every model of ``task`` (all tasks when None)."""
    specs = [TASKS[task]] if task else list(TASKS.values())
    return [_row(name, spec.name) for spec in specs for name in spec.model_names()]


def find_task(model: str) -> TaskSpec:
    """The task a model name belongs to; unknown names are usage errors with suggestions."""
    every: list[str] = []
    for spec in TASKS.values():
        names = spec.model_names()
        if model in names:
            return spec
        every += names
    raise UsageError(
        f"unknown model '{model}'" + suggest(model, every) + "; see `cvtasks models list`"
    )


def model_info(model: str) -> dict[str, Any]:
    """All weights of a model: URL, cache file, metrics and preprocessing of each."""
    spec = find_task(model)
    enum_cls = weights_enum(model)
    default = enum_cls["DEFAULT"]
    entries = []
    for member in enum_cls:
        meta = member.meta
        entries.append(
            {
                "weights": str(member),
                "default": member is default,
                "url": member.url,
                "cache_file": str(cache_path(member)),
                "cached": is_cached(member),
                "params": meta.get("num_params"),
                "gflops": meta.get("_ops"),
                "file_size_mb": meta.get("_file_size"),
                "metrics": meta.get("_metrics"),
                "min_size": meta.get("min_size"),
                "categories": len(meta.get("categories") or []),
                "transforms": repr(member.transforms()).replace("\n", " "),
                "recipe": meta.get("recipe"),
                "license": meta.get("license", "see torchvision's model docs"),
            }
        )
    return {"name": model, "task": spec.name, "weights": entries}


def split_pull_name(text: str) -> tuple[str, str]:
    """``resnet50`` -> (resnet50, DEFAULT); ``resnet50:IMAGENET1K_V1`` -> both parts."""
    model, _, weights = text.partition(":")
    return model, weights or "DEFAULT"


def pull(text: str) -> Path:
    """Download (or confirm cached) the weights named by ``model[:WEIGHTS]``; return the file."""
    model, spec = split_pull_name(text)
    find_task(model)
    resolved = resolve_weights(model, spec)
    if resolved.kind != "pretrained":
        raise UsageError(f"`models pull` takes model[:WEIGHTS], got {text!r}")
    return fetch(resolved)
