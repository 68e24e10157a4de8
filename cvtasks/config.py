"""Config schemas as dataclasses: safe YAML loading, validation, layering and commented dumps.

A config class is a dataclass whose fields are declared with :func:`option`. The same field
drives the YAML key, the CLI option (``top_k`` -> ``--top-k``), validation and the commented
defaults printed by ``cvtasks config show``. This module must not import torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# PIL raises DecompressionBombError at twice its MAX_IMAGE_PIXELS (89,478,485); we use that bound.
DEFAULT_MAX_IMAGE_PIXELS = 178_956_970
MODEL_HELP = "Model name: a torchvision builder name (see `cvtasks models list`)."


@dataclass(frozen=True)
class OptionMeta:
    """How one config key is documented, validated and exposed on the command line."""

    help: str
    flag: str | None = None  # short flag, e.g. "-m"
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    affects_results: bool = True  # a change makes earlier results incompatible (--resume check)
    panel: str = "Run"
    cli: bool = True
    negatable: bool = False  # booleans: also offer --no-NAME on the command line
    repeatable: bool = False  # lists: one item per option (--line A --line B), not comma-split


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    choices: Iterable[str] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    affects_results: bool = True,
    panel: str = "Run",
    cli: bool = True,
    negatable: bool = False,
    repeatable: bool = False,
) -> Any:
    """Declare a config field with its documentation and validation rules."""
    meta = OptionMeta(
        help=help,
        flag=flag,
        choices=tuple(choices) if choices is not None else None,
        minimum=minimum,
        maximum=maximum,
        affects_results=affects_results,
        panel=panel,
        cli=cli,
        negatable=negatable,
        repeatable=repeatable,
    )
    if isinstance(default, list):
        frozen = list(default)
        return field(default_factory=lambda: list(frozen), metadata={"cvtasks": meta})
    return field(default=default, metadata={"cvtasks": meta})


def meta_of(f: dataclasses.Field[Any]) -> OptionMeta:
    """The :class:`OptionMeta` attached to a config field."""
    return typing.cast(OptionMeta, f.metadata["cvtasks"])


@dataclass
class BaseConfig:
    """Keys shared by every task (the CONVENTIONS.md option table)."""

    inputs: list[str] = option(
        [],
        "Images, folders, globs, @list.txt files, '-' (paths on stdin) or videos.",
        cli=False,
        panel="Input",
    )
    model: str = option("", "Model name (torchvision builder name).", flag="-m", panel="Model")
    weights: str = option(
        "DEFAULT",
        "DEFAULT, a weights enum member (e.g. IMAGENET1K_V1), a .pth/.pt/.safetensors file, "
        "or none (random init).",
        flag="-w",
        panel="Model",
    )
    release: str | None = option(
        None,
        "The torchvision release a weights file was made from (e.g. IMAGENET1K_V1): its "
        "preprocessing and class names are used. Default: the release the file is (found by "
        "its SHA-256), else DEFAULT's.",
        panel="Model",
    )
    labels: str | None = option(
        None,
        "Class names file, one per line, for weights trained on your own classes.",
        panel="Model",
    )
    out: str | None = option(
        None,
        "Output folder: results.jsonl, errors.jsonl, config.yaml and annotated images.",
        flag="-o",
        affects_results=False,
        panel="Output",
    )
    resume: bool = option(
        False,
        "Skip inputs already present in --out's results.jsonl.",
        affects_results=False,
        panel="Output",
    )
    wait_lock: bool = option(
        False,
        "When another run is writing to the same --out, wait for it to finish instead of "
        "exiting 2 (with --resume, then skip what it wrote).",
        affects_results=False,
        panel="Output",
    )
    batch_size: int = option(
        8, "Images per forward pass.", flag="-b", minimum=1, maximum=4096, affects_results=False
    )
    workers: int = option(
        0,
        "DataLoader worker processes that decode and preprocess (0: in the main process).",
        minimum=0,
        maximum=64,
        affects_results=False,
    )
    device: str = option(
        "auto",
        "auto, cpu, cuda, cuda:N or mps (auto picks the best present).",
        affects_results=False,
    )
    precision: str = option(
        "fp32",
        "Inference precision: fp32, bf16 (autocast on CPU or GPU) or fp16 (autocast, CUDA only).",
        choices=("fp32", "bf16", "fp16"),
    )
    channels_last: bool = option(
        True,
        "Channels-last memory layout for convolutional models (measured 1.4-1.6x faster on CPU).",
        negatable=True,
        affects_results=False,
    )
    threads: int = option(
        0,
        "Torch threads for inference (0: the cores left after the DataLoader workers, or the "
        "cores divided among --lanes).",
        minimum=0,
        maximum=1024,
        affects_results=False,
    )
    max_image_pixels: int = option(
        DEFAULT_MAX_IMAGE_PIXELS,
        "Images with more pixels are rejected before decoding (decompression-bomb guard).",
        minimum=1,
        affects_results=False,
    )
    on_corrupt: str = option(
        "warn",
        "A JPEG whose decoder reports corrupt data (libjpeg's 'Corrupt JPEG data: ...'): warn "
        "and use the decoded pixels, fail that input, or ignore it.",
        choices=("warn", "fail", "ignore"),
    )
    quiet: bool = option(
        False, "No progress bar or timing summary.", flag="-q", affects_results=False
    )


@dataclass
class InferenceConfig(BaseConfig):
    """Keys of the commands that run a model over inputs (every task command): output
    formats, annotated images, video stride and the inference speed options."""

    save_images: bool = option(
        False,
        "Write annotated images (annotated videos for video inputs) under --out.",
        affects_results=False,
        panel="Output",
        negatable=True,
    )
    format: str | None = option(
        None,
        "What goes to stdout: table, jsonl, json or csv (default: table on a terminal, "
        "else jsonl).",
        flag="-f",
        choices=("table", "jsonl", "json", "csv"),
        affects_results=False,
        panel="Output",
    )
    report: bool = option(
        False,
        "At the end, also write the results page OUT/report/index.html (as `cvtasks report`).",
        affects_results=False,
        panel="Output",
    )
    overwrite: bool = option(
        False,
        "Replace the results an earlier run left in --out (results.jsonl, errors.jsonl); "
        "without it such a folder is refused, and --resume keeps them and adds what is missing.",
        affects_results=False,
        panel="Output",
    )
    lanes: int = option(
        0,
        "Batches processed side by side on threads, each decoding its images and running the "
        "model on its share of the cores (classify, semantic segment; not with --workers). "
        "0: two on a CPU with 2+ cores (decoding overlaps the forward: measured 1.0-1.2x), "
        "else one.",
        minimum=0,
        maximum=64,
        affects_results=False,
    )
    fold_bn: bool = option(
        True,
        "Fold BatchNorm into the convolution before it (classify, semantic segment, occlusion): "
        "up to 1.4x faster on CPU; outputs change by float rounding only.",
        negatable=True,
        affects_results=False,
    )
    compile: bool = option(
        False,
        "torch.compile the model (classify, semantic segment): ~10 % faster on this CPU after "
        "8-18 s of compiling, so worth it for long runs only.",
        affects_results=False,
    )
    vid_stride: int = option(1, "Process every N-th video frame.", minimum=1, maximum=100_000)
    jpeg_draft: bool = option(
        False,
        "Decode large JPEGs at 1/2, 1/4 or 1/8 scale (never below the side the model resizes "
        "to): faster on big photos, but scores move (on real MobileNetV2 weights up to 0.07 in "
        "p and some top-1 changes; see docs/performance.md). Off: what Pillow decodes.",
        negatable=True,
    )
    decode_on: str = option(
        "cpu",
        "Where JPEGs are decoded and resized for the model: cpu (Pillow, the reference), device "
        "(in batches on --device as torch tensors: nvJPEG on a GPU; scores differ slightly from "
        "Pillow's, see docs/performance.md; other formats take the Pillow path) or auto (device "
        "on CUDA, else cpu). classify, segment, detect, pose and per-image explain.",
        choices=("auto", "cpu", "device"),
    )
    engine: str = option(
        "local",
        "Where inference runs: local (this process) or ray (Ray Data actors on a local Ray "
        "instance or a cluster; same records and files).",
        choices=("local", "ray"),
        affects_results=False,
        panel="Engine",
    )
    ray_address: str | None = option(
        None,
        "--engine ray: the cluster to join, HOST:PORT of its head (ray start --head), auto, or "
        "ray://HOST:PORT; default $RAY_ADDRESS, else a local Ray instance for the run.",
        affects_results=False,
        panel="Engine",
    )
    ray_actors: int = option(
        0,
        "--engine ray: actors (model replicas) in the pool; 0: as many as the cluster's CPUs "
        "(or GPUs, with --ray-gpus) allow.",
        minimum=0,
        maximum=100_000,
        affects_results=False,
        panel="Engine",
    )
    ray_cpus: float = option(
        1.0,
        "--engine ray: CPUs per actor (its torch threads).",
        minimum=0.01,
        maximum=1024,
        affects_results=False,
        panel="Engine",
    )
    ray_gpus: float = option(
        0.0,
        "--engine ray: GPUs per actor (0.5: two actors share a GPU).",
        minimum=0,
        maximum=64,
        affects_results=False,
        panel="Engine",
    )


def config_fields(cls: type[BaseConfig]) -> list[dataclasses.Field[Any]]:
    """The fields of a config class, in declaration order."""
    return list(dataclasses.fields(cls))


def panel_order(fields: list[dataclasses.Field[Any]]) -> list[dataclasses.Field[Any]]:
    """Fields grouped by panel (panels in order of first appearance), for dumps and docs."""
    panels: dict[str, list[dataclasses.Field[Any]]] = {}
    for f in fields:
        panels.setdefault(meta_of(f).panel, []).append(f)
    return [f for group in panels.values() for f in group]


def field_types(cls: type[BaseConfig]) -> dict[str, Any]:
    """Resolved type hints of a config class (annotations are strings under __future__)."""
    return typing.get_type_hints(cls)


def suggest(name: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def is_given(cfg: BaseConfig, key: str) -> bool:
    """Whether ``key`` was set by a config file, ``--set`` or an option (not a default)."""
    return key in cfg.__dict__.get("_given", frozenset())


def result_affecting(cfg: BaseConfig) -> dict[str, Any]:
    """The keys whose change would make earlier results in --out incompatible."""
    return {
        f.name: getattr(cfg, f.name)
        for f in config_fields(type(cfg))
        if meta_of(f).affects_results and f.name != "inputs"
    }


# --------------------------------------------------------------------------- dumping
