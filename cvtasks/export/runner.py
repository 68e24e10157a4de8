"""`cvtasks export -m MODEL [-w W] -f FORMAT -o FILE [IMAGES]`: build the family's export plan,
write the file, run it in its runtime beside PyTorch on the check inputs, and keep it only when
the outputs agree within ``--tolerance`` (exit 1 otherwise); ``--int8`` quantises it and
measures what that costs."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import torch

from cvtasks.errors import UsageError
from cvtasks.export.check import CHECKED_WITH, check_and_save
from cvtasks.export.config import SUFFIXES, ExportConfig
from cvtasks.export.plan import ExportPlan, check_images
from cvtasks.tasks.spec import TaskSpec, load_target
from cvtasks.version import __version__

INT8_FAMILIES = ("classify", "segment")


def exportable_models() -> list[str]:
    """Every model `cvtasks export` takes (the exporting families' models)."""
    from cvtasks.tasks.registry import TASKS

    names: list[str] = []
    for spec in TASKS.values():
        if spec.exporter is not None and spec.parent is None:
            names += [n for n in spec.model_names() if n not in names]
    return names


def no_predictor(*_args: Any) -> Any:
    raise UsageError("cvtasks export writes a model file; it runs over no inputs")


def family_of(model: str) -> TaskSpec:
    """The task family that exports ``model`` (its plan builder is ``spec.exporter``)."""
    from cvtasks.catalog import find_task
    from cvtasks.tasks.registry import TASKS

    source = TASKS["depth"]
    if source.model_source == "transformers" and (Path(model).is_dir() or model.count("/") == 1):
        return source  # a transformers model folder or hub id: depth's
    spec = find_task(model)
    if spec.exporter is None:
        raise UsageError(
            f"{model} is a {spec.name} model; export covers classify, detect, segment, pose "
            "and depth models"
        )
    return spec


def output_path(cfg: ExportConfig) -> Path:
    suffix = SUFFIXES[cfg.format]
    path = Path(cfg.out).expanduser() if cfg.out else Path(f"{Path(cfg.model).name}{suffix}")
    if path.suffix.lower() != suffix:
        raise UsageError(f"-o {path}: a {cfg.format} file ends in {suffix}")
    if path.exists() and not cfg.overwrite:
        raise UsageError(f"{path} exists: pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise UsageError(f"-o {path}: the folder {path.parent} does not exist")
    return path


def run_export(spec: TaskSpec, cfg: ExportConfig, *, stdin: TextIO | None = None,
               **kwargs: Any) -> Any:  # fmt: skip
    from cvtasks.engine import RunStats
    from cvtasks.run_spec import apply_run_model
    from cvtasks.runner import RunSummary

    start = time.perf_counter()
    apply_run_model(cfg)
    family = family_of(cfg.model)
    if cfg.int8 and (cfg.format not in ("onnx", "openvino") or family.name not in INT8_FAMILIES):
        raise UsageError(
            "--int8 quantises classifiers and semantic segmenters exported as onnx or openvino"
        )
    path = output_path(cfg)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    images = check_images(cfg.inputs, cfg.max_image_pixels)
    plan: ExportPlan = load_target(str(family.exporter))(cfg, images)
    if cfg.int8 and plan.int8_outputs is None:
        raise UsageError(f"--int8 quantises classifiers and semantic segmenters, not {cfg.model}")
    metadata = {"cvtasks": __version__, **plan.metadata, "format": cfg.format,
                "checked_with": CHECKED_WITH[cfg.format]}  # fmt: skip
    if cfg.format in ("onnx", "openvino"):
        metadata["opset"] = cfg.opset
    metadata["dynamic"] = plan.dynamic
    with tempfile.TemporaryDirectory(prefix=".cvtasks-export-", dir=path.parent) as folder:
        report = check_and_save(plan, cfg, metadata, Path(folder), path, len(images))
    report["seconds"] = round(time.perf_counter() - start, 1)
    stream = kwargs.get("stdout") or sys.stdout
    stream.write(json.dumps(report) + "\n")
    stats = RunStats()
    if report["ok"]:
        stats.processed = 1
    else:
        stats.failed = 1
    wall = time.perf_counter() - start
    return RunSummary(stats, 1, wall, wall)
