"""Write the export into a temporary folder, run it in its runtime beside PyTorch, and move it
into place only when it agrees (and, with ``--int8``, after measuring the quantised model)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from cvtasks.export import formats
from cvtasks.export.config import ExportConfig
from cvtasks.export.metadata import exported_files
from cvtasks.export.plan import ExportPlan
from cvtasks.export.runtime import Runtime
from cvtasks.log import info, warn

CHECKED_WITH = {"onnx": "onnxruntime", "openvino": "openvino", "exported-program": "torch",
                "torchscript": "torch"}  # fmt: skip


def largest_difference(plan: ExportPlan, runtime: Runtime) -> float:
    """The largest difference between PyTorch's outputs and the export's over the checks."""
    worst = 0.0
    for inputs in plan.checks:
        ours = plan.reference(inputs)
        theirs = runtime.run(list(inputs))
        worst = max(worst, plan.compare(ours, theirs))
    return worst


def agreement(plan: ExportPlan, runtime: Runtime) -> tuple[float, int]:
    """The share of inputs (of pixels, for a segmenter) whose top-1 class the quantised model
    keeps, and how many images that is over."""
    assert plan.int8_outputs is not None
    same, total, images = 0, 0, 0
    for inputs in plan.checks:
        ours = plan.int8_outputs(plan.reference(inputs))
        theirs = plan.int8_outputs(runtime.run(list(inputs)))
        same += int((ours == theirs).sum())
        total += ours.size
        images += int(inputs[0].shape[0])
    return same / max(total, 1), images


def check_and_save(
    plan: ExportPlan,
    cfg: ExportConfig,
    metadata: dict[str, Any],
    folder: Path,
    path: Path,
    image_count: int,
) -> dict[str, Any]:
    """Export into ``folder``, check, and move the file(s) to ``path`` if within tolerance."""
    text = json.dumps(metadata)
    model = cfg.model
    backend = CHECKED_WITH[cfg.format]
    device = torch.device("cpu")
    checked = folder / f"model{path.suffix}"
    saved: Any = None
    if cfg.format in ("onnx", "openvino"):
        onnx_file = folder / "model.onnx"
        formats.write_onnx(plan, onnx_file, cfg.opset, text, model)
        if cfg.format == "openvino":
            formats.write_openvino(onnx_file, checked, text, model)
    elif cfg.format == "exported-program":
        saved = formats.write_exported_program(plan, checked, text, model)
    else:
        saved = formats.write_torchscript(plan, checked, text, model)
    worst = largest_difference(plan, Runtime(checked, backend, device))
    ok = math.isfinite(worst) and worst <= cfg.tolerance
    images = ("given" if cfg.inputs else "synthetic") + (" images" if image_count > 1 else " image")
    metadata["check"] = {"max_abs_diff": worst if math.isfinite(worst) else None,
                         "tolerance": cfg.tolerance, "images": image_count, "on": images,
                         "runtime": backend}  # fmt: skip
    report: dict[str, Any] = {"file": str(path), "format": cfg.format, "task": metadata["task"],
                              "model": model, "ok": ok, "max_abs_diff": metadata["check"][
                                  "max_abs_diff"], "tolerance": cfg.tolerance,
                              "checked_on": image_count}  # fmt: skip
    line = (
        f"{model} as {cfg.format}: largest difference from PyTorch {worst:.3g} over "
        f"{image_count} {images} ({backend}; tolerance {cfg.tolerance:g})"
    )
    if not ok:
        warn(line + f": not written (raise --tolerance to accept it); {path} left as it was")
        return report
    info(line)
    if cfg.int8:
        metadata["int8"] = _quantise(plan, cfg, folder, checked, metadata, image_count)
        report["int8"] = metadata["int8"]
    _finish(cfg, metadata, folder, checked, saved, path)
    report["size_mb"] = round(sum(p.stat().st_size for p in exported_files(path)) / 1e6, 2)
    return report


def _quantise(plan: ExportPlan, cfg: ExportConfig, folder: Path, checked: Path,
              metadata: dict[str, Any], image_count: int) -> dict[str, Any]:  # fmt: skip
    """onnxruntime's static int8 (QDQ) quantisation of the fp32 ONNX graph, calibrated on the
    check inputs; the measured top-1 agreement with PyTorch's fp32 model."""
    from cvtasks.export.quantize import quantize_onnx

    source = folder / "model.onnx"
    target = folder / "int8.onnx"
    quantize_onnx(source, target, plan)
    if cfg.format == "openvino":
        formats.write_openvino(target, checked, json.dumps(metadata), cfg.model)
        runtime = Runtime(checked, "openvino", torch.device("cpu"))
    else:
        runtime = Runtime(target, "onnxruntime", torch.device("cpu"))
    share, images = agreement(plan, runtime)
    found = {"agreement": round(share, 6), "images": images, "calibrated_on": image_count,
             "method": "onnxruntime static QDQ: per-channel int8 weights, uint8 activations, "
                       "MinMax calibration"}  # fmt: skip
    what = "per-pixel class" if metadata["task"] == "segment" else "top-1"
    message = f"int8: {what} agreement with fp32 {share:.4f} over {images} images"
    if not cfg.inputs:
        warn(message + " (calibrated on synthetic images: pass real IMAGES to calibrate on)")
    else:
        info(message)
    if cfg.format == "onnx":
        target.replace(checked)
    return found


def _finish(cfg: ExportConfig, metadata: dict[str, Any], folder: Path, checked: Path,
            saved: Any, path: Path) -> None:  # fmt: skip
    """Store the final metadata (with the check) and move the file(s) into place."""
    text = json.dumps(metadata)
    if cfg.format == "onnx":  # checked is folder/model.onnx (the int8 graph with --int8)
        formats.set_onnx_metadata(checked, text)
        atomic_rename([checked], [path])
    elif cfg.format == "openvino":
        import openvino

        converted = openvino.Core().read_model(str(checked))
        final = folder / "final.xml"
        formats.set_openvino_metadata(converted, final, text)
        atomic_rename([final.with_suffix(".bin"), final], [path.with_suffix(".bin"), path])
    elif cfg.format == "exported-program":
        torch.export.save(saved, str(checked), extra_files={formats.EXTRA: text})
        atomic_rename([checked], [path])
    else:
        torch.jit.save(saved, str(checked), _extra_files={formats.EXTRA: text})
        atomic_rename([checked], [path])


def atomic_rename(sources: list[Path], targets: list[Path]) -> None:
    """Move the checked files into place (an IR's .xml last, so a reader never sees it alone)."""
    for source, target in zip(sources, targets, strict=True):
        os.replace(source, target)
    info(f"wrote {', '.join(str(t) for t in targets)}")
