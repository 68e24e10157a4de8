"""Depth models from Hugging Face transformers: aliases, licences, loading, offline errors.

``transformers`` is imported only inside the functions that need it, so other commands stay fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvtasks.errors import UsageError, WeightsUnavailableError
from cvtasks.weights import OFFLINE_ENV, env_flag

DOWNLOAD_TIMEOUT_S = "20"


@dataclass(frozen=True)
class DepthModel:
    """A known depth model: short alias, hub id, licence and what its output means."""

    alias: str
    repo_id: str
    licence: str
    kind: str  # "relative" (inverse depth, larger = nearer) or "metric" (metres)


DEPTH_MODELS: tuple[DepthModel, ...] = (
    DepthModel(
        "depth-anything-v2-small",
        "depth-anything/Depth-Anything-V2-Small-hf",
        "Apache-2.0",
        "relative",
    ),
    DepthModel(
        "depth-anything-v2-base",
        "depth-anything/Depth-Anything-V2-Base-hf",
        "CC-BY-NC-4.0 (non-commercial)",
        "relative",
    ),
    DepthModel(
        "depth-anything-v2-large",
        "depth-anything/Depth-Anything-V2-Large-hf",
        "CC-BY-NC-4.0 (non-commercial)",
        "relative",
    ),
    DepthModel(
        "depth-anything-v2-metric-indoor-small",
        "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
        "Apache-2.0",
        "metric",
    ),
    DepthModel(
        "depth-anything-v2-metric-outdoor-small",
        "depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf",
        "Apache-2.0",
        "metric",
    ),
    DepthModel(
        "depth-anything-small", "LiheYoung/depth-anything-small-hf", "Apache-2.0", "relative"
    ),
    DepthModel("dpt-large", "Intel/dpt-large", "Apache-2.0", "relative"),
    DepthModel("dpt-hybrid-midas", "Intel/dpt-hybrid-midas", "Apache-2.0", "relative"),
    DepthModel("zoedepth-nyu-kitti", "Intel/zoedepth-nyu-kitti", "MIT", "metric"),
)
_BY_ALIAS = {m.alias: m for m in DEPTH_MODELS}
_BY_REPO = {m.repo_id: m for m in DEPTH_MODELS}


def depth_model_names() -> list[str]:
    """The aliases `cvtasks models list --task depth` shows (any hub id or folder also works)."""
    return [m.alias for m in DEPTH_MODELS]


def known_model(name: str) -> DepthModel | None:
    return _BY_ALIAS.get(name) or _BY_REPO.get(name)


def source_of(name: str) -> str:
    """A local folder, or the hub id behind an alias (or the hub id itself)."""
    if Path(name).is_dir():
        return name
    model = known_model(name)
    if model is not None:
        return model.repo_id
    if name.count("/") == 1 and not name.startswith(("/", ".")):
        return name
    raise UsageError(
        f"unknown depth model '{name}': use an alias ({', '.join(depth_model_names())}), a hub id "
        "like owner/name, or a folder saved with save_pretrained"
    )


def is_offline() -> bool:
    return env_flag(OFFLINE_ENV) or env_flag("HF_HUB_OFFLINE")


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def is_cached(repo_id: str) -> bool:
    """Whether the hub cache holds the model's config (a cheap proxy for a completed pull)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _unavailable(source: str, reason: str) -> WeightsUnavailableError:
    alias = known_model(source)
    name = alias.alias if alias else source
    return WeightsUnavailableError(
        f"depth model {source} is not cached and cannot be downloaded ({reason}).\n"
        "Fix it in one of these ways:\n"
        f"  - on a machine with internet access run: cvtasks models pull {name}\n"
        f"    (it lands in the Hugging Face cache, {hub_cache_dir()}; copy that folder over)\n"
        "  - or pass a local folder saved with save_pretrained: --model path/to/folder"
    )


def _from_pretrained(loader: Any, source: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` from the cache first; download only when allowed."""
    if Path(source).is_dir():
        return loader.from_pretrained(source, **kwargs)
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError:
        if is_offline():
            raise _unavailable(source, f"{OFFLINE_ENV} or HF_HUB_OFFLINE is set") from None
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", DOWNLOAD_TIMEOUT_S)
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT_S)
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise _unavailable(source, f"download failed: {str(exc).splitlines()[0]}") from None


def load_depth_model(name: str, random_init: bool = False) -> tuple[Any, Any, str]:
    """(model, image processor, source) for an alias, hub id or folder."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # no progress bars or notices on stderr
    hf_logging.disable_progress_bar()
    source = source_of(name)
    processor = _from_pretrained(AutoImageProcessor, source)
    if random_init:
        config = _from_pretrained(AutoConfig, source)
        model = AutoModelForDepthEstimation.from_config(config)
    else:
        model = _from_pretrained(AutoModelForDepthEstimation, source)
    return model.eval(), processor, source


def depth_kind(config: Any) -> str:
    """``metric`` (metres) or ``relative`` (inverse depth), from the model's own config."""
    declared = getattr(config, "depth_estimation_type", None)
    if declared in ("metric", "relative"):
        return str(declared)
    return "metric" if getattr(config, "model_type", "") == "zoedepth" else "relative"


def pull_depth_model(name: str) -> Path:
    """Download a depth model into the Hugging Face cache; return its snapshot folder."""
    source = source_of(name)
    if Path(source).is_dir():
        return Path(source)
    if is_offline():
        raise _unavailable(source, f"{OFFLINE_ENV} or HF_HUB_OFFLINE is set")
    from huggingface_hub import snapshot_download

    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", DOWNLOAD_TIMEOUT_S)
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT_S)
    try:
        return Path(snapshot_download(source))
    except Exception as exc:  # network errors of several libraries
        raise _unavailable(source, f"download failed: {str(exc).splitlines()[0]}") from None
