"""The run folder of `cvtasks train -o runs/NAME`: weights, state to resume, labels, config
(with the model, classes and evaluation preprocessing: a weights spec), metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from cvtasks.classify.train.config import TrainConfig
from cvtasks.classify.train.data import LabelledSet
from cvtasks.config_build import dump_config
from cvtasks.errors import WeightsError
from cvtasks.io.atomic import atomic_write, atomic_write_text
from cvtasks.run_spec import RUN_BEST, RUN_CONFIG
from cvtasks.version import __version__

LAST = "last.safetensors"
STATE = "last_state.pt"
METRICS = "metrics.jsonl"
LABELS = "labels.txt"
SPLIT = "split.json"


@dataclass
class RunState:
    """Where training stands after an epoch (everything --resume needs beside the weights)."""

    epoch: int  # epochs completed
    step: int
    best_top1: float
    best_loss: float
    best_epoch: int
    stale: int  # epochs since the best one (early stopping)


def weights_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict safetensors can store: CPU, contiguous (channels-last undone)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_weights(model: nn.Module, path: Path) -> None:
    state = weights_of(model)
    atomic_write(path, lambda tmp: save_file(state, str(tmp)))


def load_weights_into(model: nn.Module, path: Path) -> None:
    state = load_file(str(path), device="cpu")
    model.load_state_dict(state, strict=True)


def save_state(
    folder: Path, state: RunState, optimizer: torch.optim.Optimizer, scheduler: Any
) -> None:
    payload = {
        "run": state.__dict__,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
    }
    atomic_write(folder / STATE, lambda tmp: torch.save(payload, tmp))


def load_state(folder: Path, optimizer: torch.optim.Optimizer, scheduler: Any) -> RunState:
    try:
        payload = torch.load(folder / STATE, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        return RunState(**payload["run"])
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"cannot resume from {folder / STATE}: {exc}") from None


def write_labels(folder: Path, classes: list[str]) -> None:
    atomic_write_text(folder / LABELS, "".join(f"{name}\n" for name in classes))


def write_split(folder: Path, data: LabelledSet, cfg: TrainConfig) -> None:
    payload = {
        "layout": data.layout,
        "seed": cfg.seed,
        "val_split": cfg.val_split,
        "classes": data.classes,
        "train": [[str(p), label] for p, label in data.train],
        "val": [[str(p), label] for p, label in data.val],
    }
    atomic_write_text(folder / SPLIT, json.dumps(payload, indent=1, ensure_ascii=False) + "\n")


def write_run_config(
    folder: Path,
    cfg: TrainConfig,
    classes: list[str],
    preprocessing: dict[str, Any],
    best: dict[str, Any] | None,
    crop: dict[str, Any] | None = None,
) -> None:
    """config.yaml: the resolved options (commented) and a ``run:`` section that makes the
    folder a weights spec (model, classes, evaluation preprocessing, best epoch)."""
    header = (
        f"cvtasks {__version__} training run. The folder is a weights spec: "
        f"`cvtasks classify IMAGES -w {folder}`."
    )
    run = {
        "model": cfg.model,
        "classes": classes,
        "preprocessing": preprocessing,
        "weights": RUN_BEST,
        "best": best,
    }
    if crop is not None:  # what the classifier was shown: -w RUN crops the same way
        run["crop"] = crop
    text = dump_config(cfg, "train", header=header)
    text += "\n# --- the run (read by -w RUN_FOLDER) ---\n"
    text += yaml.safe_dump({"run": run}, sort_keys=False, allow_unicode=True)
    atomic_write_text(folder / RUN_CONFIG, text)


def append_metrics(folder: Path, line: dict[str, Any]) -> None:
    with (folder / METRICS).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, ensure_ascii=False) + "\n")


def read_metrics(folder: Path, epochs: int | None = None) -> list[dict[str, Any]]:
    """The metrics of the completed epochs (a torn or extra line is dropped and the file cut)."""
    path = folder / METRICS
    if not path.is_file():
        return []
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            break
        if epochs is not None and entry.get("epoch", 0) > epochs:
            break
        kept.append(entry)
    atomic_write_text(path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in kept))
    return kept


def is_resumable(folder: Path) -> bool:
    return (folder / LAST).is_file() and (folder / STATE).is_file()
