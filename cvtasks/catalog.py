"""What ``cvtasks models`` shows: models per task, their weights' metadata and cache state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cvtasks.config import suggest
from cvtasks.errors import UsageError
from cvtasks.tasks.registry import TASKS
from cvtasks.tasks.spec import TaskSpec

SHARED_MODELS = (
    "explain",
    "track",
    "train",
    "eval",
    "eval-detect",
    "eval-segment",
    "eval-pose",
    "eval-explain",
    "export",
)  # commands using other tasks' models


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
    licence: str = ""


def _headline_metric(meta: dict[str, Any]) -> tuple[str, float | None]:
    """The first metric the weights report, e.g. ``ImageNet-1K acc@1``."""
    metrics: dict[str, Any] = meta.get("_metrics") or {}
    for dataset, values in metrics.items():
        for name, value in values.items():
            return f"{dataset} {name}", float(value)
    return "", None


def _torchvision_row(name: str, task: str) -> ModelRow:
    from cvtasks.weights import is_cached, weights_enum

    member = weights_enum(name)["DEFAULT"]
    metric, value = _headline_metric(member.meta)
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
        licence="see torchvision's model docs",
    )


def list_models(task: str | None = None) -> list[ModelRow]:
    """Rows for every model of ``task`` (all tasks when None)."""
    specs = [TASKS[task]] if task else list(TASKS.values())
    rows = []
    for spec in specs:
        if spec.name in SHARED_MODELS and task is None:  # others' models: listed once
            continue
        catalog = spec.model_catalog()
        rows += [catalog.row(name, spec.name) for name in spec.model_names()]
    return rows


def find_task(model: str) -> TaskSpec:
    """The task a model name belongs to; unknown names are usage errors with suggestions."""
    every: list[str] = []
    for spec in TASKS.values():
        if spec.name in SHARED_MODELS:
            continue
        names = spec.model_names()
        if model in names or spec.model_catalog().knows(model):
            return spec
        every += names
    raise UsageError(
        f"unknown model '{model}'" + suggest(model, every) + "; see `cvtasks models list`"
    )


def model_info(model: str) -> dict[str, Any]:
    """All weights of a model: URL, cache file, metrics and preprocessing of each."""
    spec = find_task(model)
    return spec.model_catalog().info(model, spec.name)


def _torchvision_info(model: str, task: str) -> dict[str, Any]:
    import cvtasks.weights as weights

    enum_cls = weights.weights_enum(model)
    cache_path, cached = weights.cache_path, weights.is_cached
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
                "cached": cached(member),
                "params": meta.get("num_params"),
                "gflops": meta.get("_ops"),
                "file_size_mb": meta.get("_file_size"),
                "metrics": meta.get("_metrics"),
                "min_size": meta.get("min_size"),
                "categories": len(meta.get("categories") or []),
                "transforms": " ".join(repr(member.transforms()).split()),
                "recipe": meta.get("recipe"),
                "licence": meta.get("license", "see torchvision's model docs"),
            }
        )
    return {"name": model, "task": task, "weights": entries}


def weights_info(model: str, spec: str, release: str | None = None) -> dict[str, Any]:
    """What ``-w spec`` is for ``model``: the release found or named, and its preprocessing."""
    from cvtasks.releases import transforms_text
    from cvtasks.weights import resolve_weights

    find_task(model)
    resolved = resolve_weights(model, spec, release)
    exported = dict(resolved.export) if resolved.export else None
    found: dict[str, Any] = {
        "name": model,
        "weights": resolved.describe(),
        "kind": resolved.kind,
        "release": str(resolved.member) if resolved.kind != "run" else None,
        "release_from": {"hash": "sha256", "option": "--release", "default": "DEFAULT"}.get(
            str((exported or {}).get("release_from", resolved.release_from)), resolved.kind
        ),
        "preprocessing": transforms_text(resolved.transforms()),
        "summary": resolved.describe_preprocessing(),
        "categories": len(resolved.categories),
    }
    if exported is not None:  # what `cvtasks export` recorded: the format, the check, int8
        found["export"] = {k: exported.get(k) for k in ("format", "task", "opset", "check", "int8")}
    return found


def split_pull_name(text: str) -> tuple[str, str]:
    """``resnet50`` -> (resnet50, DEFAULT); ``resnet50:IMAGENET1K_V1`` -> both parts."""
    model, _, weights = text.partition(":")
    return model, weights or "DEFAULT"


def pull(text: str) -> Path:
    """Download (or confirm cached) the weights named by ``model[:WEIGHTS]``; return the file."""
    model, spec_text = split_pull_name(text)
    spec = find_task(model)
    catalog = spec.model_catalog()
    if not isinstance(catalog, TorchvisionCatalog):
        return catalog.pull(model)
    from cvtasks.weights import fetch, resolve_weights

    resolved = resolve_weights(model, spec_text)
    if resolved.kind != "pretrained":
        raise UsageError(f"`models pull` takes model[:WEIGHTS], got {text!r}")
    return fetch(resolved)


class ModelCatalog(Protocol):
    """What `cvtasks models` asks of a family whose models are not torchvision builders."""

    def row(self, name: str, task: str) -> ModelRow: ...
    def knows(self, name: str) -> bool: ...
    def info(self, name: str, task: str) -> dict[str, Any]: ...
    def pull(self, name: str) -> Path: ...


class TorchvisionCatalog:
    """torchvision's builders: weights enums carry metadata, cache files and URLs."""

    def row(self, name: str, task: str) -> ModelRow:
        return _torchvision_row(name, task)

    def knows(self, name: str) -> bool:
        return False  # torchvision names are found by model_names()

    def info(self, name: str, task: str) -> dict[str, Any]:
        return _torchvision_info(name, task)

    def pull(self, name: str) -> Path:
        return pull(name)


TORCHVISION = TorchvisionCatalog()
