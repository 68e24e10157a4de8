"""Options of `cvtasks export` (no torch here: the CLI is built from this)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cvtasks.config import BaseConfig, option

FORMATS = ("onnx", "openvino", "exported-program", "torchscript")
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "exported-program": ".pt2",
            "torchscript": ".torchscript"}  # fmt: skip
BACKENDS = ("torch", "onnxruntime", "openvino")
_UNUSED = "Not used by export."


def backend_option() -> Any:
    """``--backend`` of the inference commands that run exported files."""
    return option(
        "torch",
        "Runtime: torch (PyTorch, the reference; also runs exported-program .pt2 and "
        "torchscript files), onnxruntime (an .onnx file) or openvino (an .onnx or .xml file), "
        "with the file from `cvtasks export` as -w. Records equal torch's within the tolerance "
        "the export was checked at.",
        choices=BACKENDS,
        panel="Model",
    )


@dataclass
class ExportConfig(BaseConfig):
    """Export a model for another runtime: `cvtasks export -m MODEL [-w W] -f FORMAT -o FILE`."""

    inputs: list[str] = option(
        [],
        "Images to check the exported model on (and, with --int8, to calibrate it); default: "
        "three synthetic images through the model's own preprocessing.",
        cli=False,
        panel="Input",
    )
    model: str = option(
        "resnet50",
        "Model: a torchvision classifier, detector (box, mask or keypoint) or semantic "
        "segmenter, or a depth model (see `cvtasks models list`); -w RUN_FOLDER names its own.",
        flag="-m",
        panel="Model",
    )
    format: str = option(
        "onnx",
        "onnx (onnxruntime, OpenVINO, TensorRT, ...), openvino (IR: FILE.xml and FILE.bin), "
        "exported-program (torch.export, .pt2) or torchscript.",
        flag="-f",
        choices=FORMATS,
        panel="Export",
    )
    out: str | None = option(
        None,
        "The exported file (.onnx, .xml, .pt2 or .torchscript; default: MODEL.<suffix> in the "
        "current folder). Its metadata (task, model, classes, preprocessing, release or run, "
        "the check) is stored inside it.",
        flag="-o",
        affects_results=False,
        panel="Export",
    )
    opset: int = option(
        18,
        "ONNX opset (onnx and openvino formats).",
        minimum=7,
        maximum=23,
        panel="Export",
    )
    tolerance: float = option(
        1e-3,
        "The check: the largest difference allowed between the exported model's outputs and "
        "PyTorch's (logits, boxes in pixels, scores, depth); above it the export fails (exit 1).",
        minimum=0.0,
        maximum=1e6,
        panel="Export",
    )
    min_size: int | None = option(
        None,
        "Detectors: the shorter side the model resizes images to inside the graph (as `detect "
        "--min-size`; default its own, 800 for R-CNNs). Fixed in the file.",
        minimum=32,
        maximum=4096,
        panel="Export",
    )
    int8: bool = option(
        False,
        "Classifiers and semantic segmenters, onnx and openvino: post-training int8 "
        "quantisation (onnxruntime's static QDQ, per channel) calibrated on the IMAGES; the "
        "top-1 (per-pixel class) agreement with fp32 is measured, printed and stored, not "
        "checked against --tolerance.",
        panel="Export",
    )
    overwrite: bool = option(
        False, "Replace an existing file at -o.", affects_results=False, panel="Export"
    )
    # Keys every command shares that an export does not use: kept for YAML, off the CLI.
    resume: bool = option(False, _UNUSED, affects_results=False, cli=False)
    wait_lock: bool = option(False, _UNUSED, affects_results=False, cli=False)
    batch_size: int = option(8, _UNUSED, affects_results=False, cli=False)
    workers: int = option(0, _UNUSED, affects_results=False, cli=False)
    device: str = option("auto", _UNUSED + " (the check runs on the CPU)", cli=False)
    precision: str = option("fp32", _UNUSED + " (exports are float32)", cli=False)
    channels_last: bool = option(True, _UNUSED, affects_results=False, cli=False)
    on_corrupt: str = option("warn", _UNUSED, cli=False)
