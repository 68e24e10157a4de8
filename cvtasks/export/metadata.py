"""What an exported file says about itself: the cvtasks metadata stored inside it, read back
without a runtime where the format allows (OpenVINO's XML, the zip archives of .pt2 and
TorchScript files) and with the ``onnx`` package for ONNX files."""

from __future__ import annotations

import copy
import functools
import json
import zipfile
from pathlib import Path
from typing import Any

from cvtasks.errors import UsageError, WeightsError

KEY = "cvtasks"  # the metadata entry's name in every format
EXPORT_SUFFIXES = {".onnx": "onnx", ".xml": "openvino", ".pt2": "exported-program",
                   ".torchscript": "torchscript"}  # fmt: skip
EXTRA = "cvtasks.json"  # the extra file of .pt2 and TorchScript archives


def is_exported(path: str | Path) -> bool:
    """Whether a weights spec names an exported model file (by its suffix)."""
    return Path(str(path)).suffix.lower() in EXPORT_SUFFIXES


def exported_files(path: Path) -> list[Path]:
    """An exported model's files: an OpenVINO IR is its .xml and the .bin of its weights."""
    return [path, path.with_suffix(".bin")] if path.suffix.lower() == ".xml" else [path]


def missing_runtime(package: str, extra: str) -> UsageError:
    return UsageError(
        f"this needs the Python package '{package}', which is not installed: pip install "
        f"'cvtasks[{extra}]'"
    )


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata cvtasks stored in an exported file; exit 3 when it has none. Read once
    per file version (a run names its model, resolves its weights, may resume: one parse of a
    100 MB ONNX file, not three)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"weights file not found: {file}")
    stat = file.stat()
    return copy.deepcopy(_read_metadata(file, stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _read_metadata(file: Path, _size: int, _mtime_ns: int) -> dict[str, Any]:
    kind = EXPORT_SUFFIXES[file.suffix.lower()]
    try:
        if kind == "onnx":
            text = _onnx_metadata(file)
        elif kind == "openvino":
            text = _openvino_metadata(file)
        else:
            text = _archive_metadata(file)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise WeightsError(f"cannot read {file} as an exported {kind} model: {exc}") from None
    if text is None:
        raise WeightsError(
            f"{file} was not exported by cvtasks (it holds no '{KEY}' metadata): export it with "
            "`cvtasks export`, which records the model's preprocessing and classes"
        )
    data = json.loads(text)
    if not isinstance(data, dict) or "task" not in data or "model" not in data:
        raise WeightsError(f"{file}: its cvtasks metadata is damaged")
    data["format"] = kind
    return data


def _onnx_metadata(file: Path) -> str | None:
    try:
        import onnx
    except ImportError:
        raise missing_runtime("onnx", "onnx") from None
    model = onnx.load(str(file), load_external_data=False)
    return next((p.value for p in model.metadata_props if p.key == KEY), None)


def _openvino_metadata(file: Path) -> str | None:
    """OpenVINO IR keeps runtime info in its XML: ``<rt_info><cvtasks value="..."/>``."""
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(file).getroot()
    for node in root.iter("rt_info"):
        for child in node:
            if child.tag == KEY:
                return child.get("value")
    return None


def _archive_metadata(file: Path) -> str | None:
    """.pt2 and TorchScript files are zip archives; the metadata is an extra file in them."""
    with zipfile.ZipFile(file) as archive:
        for name in archive.namelist():
            if name.endswith("/" + EXTRA) or name.endswith("/extra/" + EXTRA):
                return archive.read(name).decode("utf-8")
    return None


def describe(meta: dict[str, Any]) -> str:
    """One line for stderr: what the file is and how it was checked."""
    check = meta.get("check") or {}
    text = f"{meta['format']} export of {meta['model']} ({meta['task']})"
    if check.get("max_abs_diff") is not None:
        text += f", checked against PyTorch: max |diff| {check['max_abs_diff']:.3g}"
    int8 = meta.get("int8")
    if int8:
        text += (
            f"; int8: top-1 agreement with fp32 {int8['agreement']:.3f} on {int8['images']} images"
        )
    return text


def weights_metadata(resolved: Any, labels: list[str]) -> dict[str, Any]:
    """What an exported torchvision model keeps of its weights: where they came from, the
    release whose preprocessing it uses (or a run folder's own), its class names."""
    from cvtasks.releases import transforms_text

    transforms = resolved.transforms()
    numbers: dict[str, Any] = {}  # for consumers without torchvision: what the text says
    for key, name in (("resize", "resize_size"), ("crop", "crop_size"), ("mean", "mean"),
                      ("std", "std")):  # fmt: skip
        value = getattr(transforms, name, None)
        if value is not None:
            numbers[key] = [float(v) for v in value] if key in ("mean", "std") else list(value)
    interpolation = getattr(transforms, "interpolation", None)
    if interpolation is not None:
        numbers["interpolation"] = str(getattr(interpolation, "value", interpolation))
    return {
        "weights": resolved.describe(),
        "weights_kind": resolved.kind,
        "release": resolved.member.name,
        "release_from": resolved.release_from or resolved.kind,
        "run_preprocessing": dict(resolved.preprocessing) if resolved.preprocessing else None,
        "categories": list(labels),
        "preprocessing": transforms_text(transforms),
        "preprocessing_values": numbers,
    }
