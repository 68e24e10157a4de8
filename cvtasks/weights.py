"""Weights resolution for torchvision models: enum name | DEFAULT | file | none.

Pretrained files are downloaded into torch hub's cache (``$TORCH_HOME/hub/checkpoints``) with
the SHA-256 prefix in their name checked, and every file is loaded with
``torch.load(weights_only=True)`` or safetensors, so no pickle code runs. When a file is
neither cached nor downloadable, :class:`WeightsUnavailableError` (exit 3) says how to fix it.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torchvision.models import get_model_weights
from torchvision.models._api import WeightsEnum

from cvtasks.config import suggest
from cvtasks.downloads import download, verify_cached
from cvtasks.errors import UsageError, WeightsError, WeightsUnavailableError
from cvtasks.export.metadata import is_exported
from cvtasks.log import info
from cvtasks.releases import release_member, release_of_file, transforms_text
from cvtasks.run_spec import RUN_BEST, is_run_folder, read_run

OFFLINE_ENV = "CVTASKS_OFFLINE"
_FILE_SUFFIXES = (".pth", ".pt", ".pkl", ".bin", ".safetensors", ".ckpt")
_NONE_SPECS = {"none", "null", "random"}


@dataclass(frozen=True)
class ResolvedWeights:
    """What ``--weights`` resolved to for one model.

    ``member`` provides metadata: the requested enum member; for a file, the release the file
    *is* (found by its SHA-256) or the one ``--release`` names, else DEFAULT; DEFAULT for a run
    folder or random weights. Preprocessing is the member's, except for a ``cvtasks train`` run
    folder, which brings its own (and its class names). ``release_from`` says how a file's
    member was chosen: ``hash``, ``option`` or ``default``.
    """

    model: str
    kind: str  # "pretrained" | "file" | "run" | "exported" | "none"
    member: WeightsEnum
    path: Path | None  # cache file (pretrained), the user's file, or a run's best.safetensors
    labels: tuple[str, ...] = ()  # a run folder's classes
    preprocessing: Mapping[str, Any] | None = None  # a run folder's evaluation preprocessing
    release_from: str = ""  # files: "hash" | "option" | "default"
    export: Mapping[str, Any] | None = None  # a `cvtasks export` file's metadata

    @property
    def categories(self) -> list[str]:
        return list(self.labels) if self.labels else list(self.member.meta.get("categories") or [])

    def transforms(self) -> Any:
        """The evaluation preprocessing: the weights' own ``transforms()``, or the run's."""
        if self.preprocessing is None:
            return self.member.transforms()
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms._presets import ImageClassification

        p = self.preprocessing
        return ImageClassification(
            crop_size=int(p["crop"]),
            resize_size=int(p["resize"]),
            mean=tuple(float(v) for v in p["mean"]),
            std=tuple(float(v) for v in p["std"]),
            interpolation=InterpolationMode(str(p.get("interpolation", "bilinear"))),
        )

    def describe(self) -> str:
        if self.kind == "pretrained":
            return str(self.member)
        if self.kind == "file":
            return str(self.path)
        if self.kind == "run":
            assert self.path is not None
            return f"run folder {self.path.parent}"
        if self.kind == "exported":
            assert self.export is not None
            return f"{self.path} ({self.export['format']} export)"
        return "none (random init)"

    def describe_preprocessing(self) -> str:
        """Which preprocessing runs and why, in one line (stderr summary, config.yaml)."""
        if self.kind == "run":
            assert self.path is not None
            where = f"the run folder's own ({self.path.parent})"
        elif self.kind == "exported":
            how = {
                "hash": "the release the weights were, by their SHA-256",
                "option": "--release at export",
                "default": "the DEFAULT release: the weights were no torchvision release",
            }
            reason = how.get(str((self.export or {}).get("release_from")), "")
            source = "its run folder's own" if self.preprocessing else str(self.member)
            reason = "" if self.preprocessing or not reason else f"{reason}; "
            where = f"{source} ({reason}recorded in the exported file {self.path})"
        elif self.kind == "file" and self.release_from == "hash":
            where = f"{self.member} (the file is that release, by its SHA-256)"
        elif self.kind == "file" and self.release_from == "option":
            where = f"{self.member} (--release)"
        elif self.kind == "file":
            where = (
                f"{self.member} (the DEFAULT release: the file is no torchvision release; name "
                "the one it was trained from with --release)"
            )
        else:
            where = str(self.member)
        return f"preprocessing of {where}: {transforms_text(self.transforms())}"


def check_model_name(name: str, names: Sequence[str], task: str) -> None:
    """Raise a usage error naming close matches when ``name`` is not among ``task``'s models."""
    if name not in names:
        raise UsageError(
            f"unknown {task} model '{name}'" + suggest(name, names) + "; see `cvtasks models list "
            f"--task {task}`"
        )


def weights_enum(model: str) -> type[WeightsEnum]:
    """The torchvision weights enum of a builder (e.g. ``ResNet50_Weights`` for resnet50)."""
    try:
        return get_model_weights(model)
    except (ValueError, KeyError):
        raise UsageError(f"model '{model}' has no pretrained weights in torchvision") from None


def is_file_spec(spec: str) -> bool:
    """Whether a ``--weights`` value names a file rather than an enum member."""
    return (
        os.sep in spec
        or "/" in spec
        or spec.lower().endswith(_FILE_SUFFIXES)
        or Path(spec).is_file()
    )


def resolve_weights(model: str, spec: str, release: str | None = None) -> ResolvedWeights:
    """Resolve ``--weights`` (and ``--release``, for a file) for ``model`` without downloading or
    loading anything; a file is hashed to find the torchvision release it is."""
    enum_cls = weights_enum(model)
    default = enum_cls["DEFAULT"]
    text = spec.strip()
    if release is not None and not is_file_spec(text):
        raise UsageError(
            f"--release {release} names the release a weights *file* comes from; -w {spec} "
            + (
                "is a run folder, which keeps its own preprocessing"
                if is_run_folder(text)
                else "is not a file"
            )
        )
    if text.lower() in _NONE_SPECS:
        return ResolvedWeights(model, "none", default, None)
    if is_exported(text):
        return _exported(model, enum_cls, text, release)
    if is_run_folder(text):
        run = read_run(text)
        if run.model != model:
            raise UsageError(f"--weights {run.folder} is a run folder of {run.model}, not {model}")
        return ResolvedWeights(
            model, "run", default, run.folder / RUN_BEST, run.classes, run.preprocessing
        )
    if is_file_spec(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise UsageError(f"weights file not found: {path}")
        if release is not None:
            member, source = release_member(enum_cls, model, release), "option"
        else:
            found = release_of_file(enum_cls, path)
            member, source = (found, "hash") if found is not None else (default, "default")
        return ResolvedWeights(model, "file", member, path, release_from=source)
    name = text.split(".", 1)[1] if text.startswith(enum_cls.__name__ + ".") else text
    if name.upper() == "DEFAULT":
        name = "DEFAULT"
    if name not in enum_cls.__members__:
        members = [m for m in enum_cls.__members__ if m != "DEFAULT"]
        raise UsageError(
            f"unknown weights '{spec}' for {model}"
            + suggest(name, members)
            + f"; choose DEFAULT, {', '.join(members)}, a file, or none"
        )
    return ResolvedWeights(model, "pretrained", enum_cls[name], cache_path(enum_cls[name]))


def _exported(
    model: str, enum_cls: type[WeightsEnum], spec: str, release: str | None
) -> ResolvedWeights:
    """A `cvtasks export` file: the release (or run folder preprocessing) and classes it
    recorded; the model it holds must be ``model``."""
    from cvtasks.export.metadata import read_metadata

    path = Path(spec).expanduser()
    meta = read_metadata(path)
    if meta["model"] != model:
        raise UsageError(f"-w {path} is an export of {meta['model']}, not {model}")
    if release is not None:
        raise UsageError(f"--release: {path} records the release it was exported from")
    name = str(meta.get("release") or "DEFAULT")
    member = enum_cls[name] if name in enum_cls.__members__ else enum_cls["DEFAULT"]
    return ResolvedWeights(
        model,
        "exported",
        member,
        path,
        labels=tuple(str(c) for c in meta.get("categories") or ()),
        preprocessing=meta.get("run_preprocessing"),
        release_from="export",
        export=meta,
    )


def env_flag(name: str) -> bool:
    """Whether an environment variable is set to a true value (1, true, yes)."""
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def cache_path(member: WeightsEnum) -> Path:
    """Where torch hub caches a pretrained file (respects ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(member.url).path)


def is_cached(member: WeightsEnum) -> bool:
    return cache_path(member).is_file()


def _unavailable_message(model: str, member: WeightsEnum, reason: str) -> str:
    target = cache_path(member)
    return (
        f"weights {member} for {model} are not cached and cannot be downloaded ({reason}).\n"
        "Fix it in one of these ways:\n"
        f"  - on a machine with internet access run: cvtasks models pull {model}\n"
        f"  - or place the file {member.url}\n    at {target}\n"
        "  - or pass a local file: --weights path/to/weights.pth (or .safetensors)"
    )


def fetch(resolved: ResolvedWeights) -> Path:
    """Make sure a pretrained file is in the cache, downloading it if allowed; return its path."""
    assert resolved.kind == "pretrained" and resolved.path is not None
    member, target = resolved.member, resolved.path
    if target.is_file():
        return target
    if env_flag(OFFLINE_ENV):
        raise WeightsUnavailableError(
            _unavailable_message(resolved.model, member, f"{OFFLINE_ENV} is set")
        )
    info(f"downloading {member.url} -> {target}")
    try:
        download(member.url, target)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsUnavailableError(
            _unavailable_message(resolved.model, member, f"download failed: {reason}")
        ) from None
    return target


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.safetensors`` or a torch file with ``weights_only=True``.

    Accepts checkpoints that wrap the state dict under ``state_dict``/``model`` and strips a
    ``module.`` prefix (DataParallel). Anything else is a :class:`WeightsError` (exit 3).
    """
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refusals, truncated zips, bad headers
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if re.search(r"unsupported global|unsupported class", str(exc), re.IGNORECASE):
            raise WeightsError(
                f"refused to load {path}: it contains Python objects, not only tensors, and "
                "loading it could run code. Save `model.state_dict()` instead (torch.save or "
                "safetensors)."
            ) from None
        if "Weights only load failed" in text:
            text = "not a valid torch checkpoint"
        raise WeightsError(f"cannot read weights file {path}: {text}") from None
    return _as_state_dict(obj, path)


def _as_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: entries that are not tensors: {', '.join(map(str, bad[:5]))}")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_into(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], origin: str, check_only: bool = False
) -> None:
    """Strictly load ``state`` into ``model``; mismatches become a readable WeightsError."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches, e.g. {'; '.join(shapes[:3])}")
        if missing:
            parts.append(f"{len(missing)} missing keys, e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys, e.g. {', '.join(unexpected[:3])}")
        raise WeightsError(
            f"weights {origin} do not fit this model ({'; '.join(parts)}). Check --model, and "
            "--labels for the number of classes."
        )
    if not check_only:
        model.load_state_dict(state, strict=True)


def load_weights(resolved: ResolvedWeights) -> dict[str, torch.Tensor] | None:
    """The state dict for ``resolved`` (downloading pretrained files), or None for random init."""
    if resolved.kind == "none":
        return None
    if resolved.kind == "exported":
        raise UsageError(
            f"{resolved.path} is an exported model: run it with --backend onnxruntime, openvino "
            "or torch (.pt2, .torchscript), where the command has --backend"
        )
    if resolved.kind == "pretrained":
        path = fetch(resolved)
        verify_cached(path, resolved.model)
        try:
            return load_state_dict(path)
        except WeightsError as exc:
            raise WeightsError(
                f"{exc}\nThe cached file may be corrupt: delete {path} and run "
                f"`cvtasks models pull {resolved.model}`."
            ) from None
    assert resolved.path is not None
    return load_state_dict(resolved.path)
