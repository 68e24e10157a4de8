"""A ``cvtasks train`` run folder read as a weights spec: ``-w runs/NAME`` brings its model
name, best weights, classes and evaluation preprocessing (written by
:mod:`cvtasks.classify.train.run_folder`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvtasks.errors import UsageError, WeightsError

RUN_CONFIG = "config.yaml"
RUN_BEST = "best.safetensors"


@dataclass(frozen=True)
class RunInfo:
    """What a ``cvtasks train`` run folder says about its model."""

    folder: Path
    model: str
    classes: tuple[str, ...]
    preprocessing: Mapping[str, Any]
    crop: Mapping[str, Any] | None = None  # {"faces": True, "context": S or None}


def is_run_folder(spec: str | Path) -> bool:
    """A folder written by ``cvtasks train`` (config.yaml and best.safetensors inside)."""
    folder = Path(spec).expanduser()
    return folder.is_dir() and (folder / RUN_CONFIG).is_file() and (folder / RUN_BEST).is_file()


def read_run(folder: str | Path) -> RunInfo:
    """The model, classes and preprocessing of a run folder (exit 3 if it is damaged)."""
    from cvtasks.errors import ConfigError
    from cvtasks.safe_yaml import load_yaml_file

    path = Path(folder).expanduser()
    try:
        run = load_yaml_file(path / RUN_CONFIG).get("run")
        if not isinstance(run, dict):
            raise KeyError("run")
        classes = tuple(str(c) for c in run["classes"])
        preprocessing = dict(run["preprocessing"])
        missing = [k for k in ("resize", "crop", "mean", "std") if k not in preprocessing]
        if missing:
            raise KeyError(f"preprocessing lacks {', '.join(missing)}")
        crop = run.get("crop")
        return RunInfo(
            path, str(run["model"]), classes, preprocessing, dict(crop) if crop else None
        )
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise WeightsError(
            f"{path} is not a usable cvtasks train run folder ({RUN_CONFIG}: {exc})"
        ) from None


def apply_run_model(cfg: Any) -> None:
    """``-w runs/NAME`` names its model: ``-m`` may be omitted; a different ``-m`` is an error."""
    from cvtasks.config import is_given

    if not is_run_folder(str(cfg.weights).strip()):
        return
    run = read_run(str(cfg.weights).strip())
    if is_given(cfg, "model") and cfg.model != run.model:
        raise UsageError(
            f"-m {cfg.model} contradicts --weights {run.folder}, a run folder of {run.model}: "
            "leave -m out (the run knows its model)"
        )
    cfg.model = run.model
