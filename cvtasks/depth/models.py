"""Depth models from Hugging Face transformers: aliases, licences, loading, offline errors.

``transformers`` is imported only inside the functions that need it, so other commands stay fast.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cvtasks.errors import UsageError, WeightsUnavailableError
from cvtasks.weights import OFFLINE_ENV, env_flag

DOWNLOAD_TIMEOUT_S = "20"
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class DepthModel:
    """A known depth model: short alias, hub id, licence and what its output means."""

    alias: str
    repo_id: str
    licence: str
    kind: str  # "relative" (inverse depth, larger = nearer) or "metric" (metres)
    # Depth Anything only: (DINOv2 size, version, metric max depth) to build the architecture
    # without the hub (``--weights none``), as transformers' conversion script configures it.
    arch: tuple[str, int, int | None] | None = None


DEPTH_MODELS: tuple[DepthModel, ...] = (
    DepthModel(
        "depth-anything-v2-small",
        "depth-anything/Depth-Anything-V2-Small-hf",
        "Apache-2.0",
        "relative",
        ("small", 2, None),
    ),
    DepthModel(
        "depth-anything-v2-base",
        "depth-anything/Depth-Anything-V2-Base-hf",
        "CC-BY-NC-4.0 (non-commercial)",
        "relative",
        ("base", 2, None),
    ),
    DepthModel(
        "depth-anything-v2-large",
        "depth-anything/Depth-Anything-V2-Large-hf",
        "CC-BY-NC-4.0 (non-commercial)",
        "relative",
        ("large", 2, None),
    ),
    DepthModel(
        "depth-anything-v2-metric-indoor-small",
        "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
        "Apache-2.0",
        "metric",
        ("small", 2, 20),
    ),
    DepthModel(
        "depth-anything-v2-metric-outdoor-small",
        "depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf",
        "Apache-2.0",
        "metric",
        ("small", 2, 80),
    ),
    DepthModel(
        "depth-anything-small",
        "LiheYoung/depth-anything-small-hf",
        "Apache-2.0",
        "relative",
        ("small", 1, None),
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


def hub_unreachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the Hugging Face hub cannot be reached (one TCP connection, a few seconds at most),
    or None when it can. Without this probe, huggingface_hub retries for minutes offline."""
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"cannot reach {host}:{port}: {exc.strerror or exc}"
    return None


def _download_allowed(source: str) -> None:
    """Raise the exit-3 error at once when downloading cannot work (offline flag, no route)."""
    if is_offline():
        raise _unavailable(source, f"{OFFLINE_ENV} or HF_HUB_OFFLINE is set")
    problem = hub_unreachable()
    if problem is not None:
        raise _unavailable(source, problem)
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", DOWNLOAD_TIMEOUT_S)
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT_S)


def _from_pretrained(loader: Any, source: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` from the cache first; download only when allowed."""
    if Path(source).is_dir():
        return loader.from_pretrained(source, **kwargs)
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError:
        _download_allowed(source)
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise _unavailable(source, f"download failed: {str(exc).splitlines()[0]}") from None


# DINOv2 sizes as in facebook/dinov2-{small,base,large}: hidden size, layers, heads.
_DINOV2 = {"small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}
# Per size: (fusion hidden size, neck hidden sizes, backbone outputs for V1 and for V2).
_DEPTH_ANYTHING_HEADS = {
    "small": (64, [48, 96, 192, 384], [9, 10, 11, 12], [3, 6, 9, 12]),
    "base": (128, [96, 192, 384, 768], [9, 10, 11, 12], [3, 6, 9, 12]),
    "large": (256, [256, 512, 1024, 1024], [21, 22, 23, 24], [5, 12, 18, 24]),
}


def shipped_architecture(model: DepthModel) -> tuple[Any, Any]:
    """(config, image processor) of a Depth Anything alias built without the hub: the values of
    transformers' ``convert_depth_anything_to_hf.py`` and the published processor settings."""
    from transformers import DepthAnythingConfig, Dinov2Config, DPTImageProcessor

    assert model.arch is not None
    size, version, max_depth = model.arch
    hidden, layers, heads = _DINOV2[size]
    fusion, neck, v1_out, v2_out = _DEPTH_ANYTHING_HEADS[size]
    # out_indices is a keyword Dinov2Config accepts but does not declare (mypy would refuse it).
    backbone_outputs: dict[str, Any] = {"out_indices": v2_out if version == 2 else v1_out}
    backbone = Dinov2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        mlp_ratio=4,
        image_size=518,
        patch_size=14,
        apply_layernorm=True,
        reshape_hidden_states=False,
        **backbone_outputs,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=hidden,
        patch_size=14,
        fusion_hidden_size=fusion,
        neck_hidden_sizes=neck,
        depth_estimation_type="metric" if max_depth else "relative",
        max_depth=max_depth or 1,
    )
    processor = DPTImageProcessor(
        do_resize=True,
        size={"height": 518, "width": 518},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,  # bicubic
        do_rescale=True,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_pad=False,
    )
    return config, processor


def load_depth_model(name: str, random_init: bool = False) -> tuple[Any, Any, str]:
    """(model, image processor, source) for an alias, hub id or folder.

    ``random_init`` for a Depth Anything alias builds the architecture shipped here (no hub,
    no cache); for other models it needs their config from a folder, the cache or the hub.
    """
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # no progress bars or notices on stderr
    hf_logging.disable_progress_bar()
    source = source_of(name)
    known = None if Path(source).is_dir() else known_model(name)
    if random_init and known is not None and known.arch is not None:
        config, processor = shipped_architecture(known)
        return AutoModelForDepthEstimation.from_config(config).eval(), processor, source
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
    _download_allowed(source)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source))
    except Exception as exc:  # network errors of several libraries
        raise _unavailable(source, f"download failed: {str(exc).splitlines()[0]}") from None
