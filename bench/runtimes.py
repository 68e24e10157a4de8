"""`make bench` rows for `cvtasks export` and `--backend`: images/s of resnet50 and
mobilenet_v2 in each runtime side by side — PyTorch eager fp32 (as cvtasks runs it: BatchNorm
folded, channels-last) and bf16 autocast, onnxruntime and OpenVINO on the exported fp32 graph,
and both on the int8 graph — as bare forwards on prepared batches and through `cvtasks
classify`; and each one's top-1 agreement with PyTorch fp32. MobileNetV2 is torchvision's real
IMAGENET1K_V1 file (from the PyPI wheel); resnet50 a seeded random file (its agreement figures
measure numerics only). int8 is calibrated on one half of the images and measured on the other.

Run alone: ``python -m bench.runtimes``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "runtimes"
TIMING = re.compile(r"classify: (?P<done>\d+) done.*?\((?P<rate>[\d.]+)/s after")
ROWS = ("torch fp32", "torch bf16", "onnxruntime fp32", "openvino fp32", "onnxruntime int8",
        "openvino int8")  # fmt: skip


def _weights(model: str) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"{model}.pth"
    if model == "mobilenet_v2":
        from bench.agreement import release_file

        shutil.copyfile(release_file(), path)
    elif not path.exists():
        from torchvision.models import get_model

        torch.manual_seed(0)
        torch.save(get_model(model, weights=None).state_dict(), path)
    return path


def _export(model: str, weights: Path, fmt: str, target: Path, calibration: list[Path],
            int8: bool = False) -> Path:  # fmt: skip
    cmd = [sys.executable, "-m", "cvtasks", "export", "-m", model, "-w", str(weights), "-f", fmt,
           "-o", str(target), "--overwrite", "-q", *(["--int8"] if int8 else []),
           *[str(p) for p in calibration]]  # fmt: skip
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    return target


def _forwards(model: str, weights: Path, files: dict[str, Path], tensors: torch.Tensor,
              batch: int) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Images/s of each runtime on the same prepared batches, and its top-1 per image."""
    from torchvision.models import get_model

    from cvtasks.export.runtime import Runtime
    from cvtasks.speed import fold_batchnorm

    net = get_model(model, weights=None).eval()
    net.load_state_dict(torch.load(weights, weights_only=True))
    fast = fold_batchnorm(net).to(memory_format=torch.channels_last)
    batches = [tensors[i : i + batch] for i in range(0, len(tensors), batch)]
    found: dict[str, dict[str, Any]] = {}

    def timed(name: str, forward: Any) -> None:
        forward(batches[0])  # warm-up
        start = time.perf_counter()
        logits = [forward(b) for b in batches]
        seconds = time.perf_counter() - start
        found[name] = {"img_s": len(tensors) / seconds,
                       "top1": torch.cat(logits).argmax(dim=1).numpy()}  # fmt: skip

    with torch.inference_mode():
        timed("torch fp32", lambda b: fast(b.contiguous(memory_format=torch.channels_last)))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            timed(
                "torch bf16",
                lambda b: fast(b.contiguous(memory_format=torch.channels_last)).float(),
            )
    cpu = torch.device("cpu")
    for name, (path, backend) in {
        "onnxruntime fp32": (files["onnx"], "onnxruntime"),
        "openvino fp32": (files["xml"], "openvino"),
        "onnxruntime int8": (files["int8_onnx"], "onnxruntime"),
        "openvino int8": (files["int8_xml"], "openvino"),
    }.items():
        runtime = Runtime(path, backend, cpu)
        timed(name, lambda b, runtime=runtime: runtime.run([b])[0])
    return found


def _classify_rate(folder: Path, weights: list[str]) -> float:
    """`cvtasks classify` steady images/s (its own timing line: load excluded)."""
    cmd = [sys.executable, "-m", "cvtasks", "classify", str(folder), *weights, "-f", "jsonl"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    match = TIMING.search(proc.stderr)
    return float(match["rate"]) if match else float("nan")


def bench_runtimes(paths: list[Path], models: tuple[str, ...] = ("resnet50", "mobilenet_v2"),
                   batch: int = 8) -> dict[str, Any]:  # fmt: skip
    """Per model and runtime: bare images/s, `cvtasks classify` images/s, top-1 agreement with
    torch fp32 (on the half of the images int8 was not calibrated on)."""
    half = len(paths) // 2
    calibration, held_out = paths[:half], paths[half:]
    folder = DATA / "held_out"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for p in held_out:
        shutil.copyfile(p, folder / p.name)
    results: dict[str, Any] = {"images": len(held_out), "calibration": len(calibration)}
    for model in models:
        weights = _weights(model)
        files = {
            "onnx": _export(model, weights, "onnx", DATA / f"{model}.onnx", calibration[:8]),
            "xml": _export(model, weights, "openvino", DATA / f"{model}.xml", calibration[:8]),
            "int8_onnx": _export(
                model, weights, "onnx", DATA / f"{model}_int8.onnx", calibration, int8=True
            ),
            "int8_xml": _export(
                model, weights, "openvino", DATA / f"{model}_int8.xml", calibration, int8=True
            ),
        }
        from torchvision.models import get_model_weights

        transforms = get_model_weights(model).DEFAULT.transforms()
        tensors = torch.stack([transforms(Image.open(p).convert("RGB")) for p in held_out])
        rows = _forwards(model, weights, files, tensors, batch)
        reference = rows["torch fp32"]["top1"]
        cli = {
            "torch fp32": ["-m", model, "-w", str(weights)],
            "torch bf16": ["-m", model, "-w", str(weights), "--precision", "bf16"],
            "onnxruntime fp32": ["-w", str(files["onnx"]), "--backend", "onnxruntime"],
            "openvino fp32": ["-w", str(files["xml"]), "--backend", "openvino"],
            "onnxruntime int8": ["-w", str(files["int8_onnx"]), "--backend", "onnxruntime"],
            "openvino int8": ["-w", str(files["int8_xml"]), "--backend", "openvino"],
        }
        results[model] = {
            name: {
                "bare_img_s": round(row["img_s"], 1),
                "cvtasks_img_s": round(_classify_rate(folder, cli[name]), 1),
                "top1_agreement": round(float(np.mean(row["top1"] == reference)), 4),
            }
            for name, row in rows.items()
        }
    return results


def print_runtimes(results: dict[str, Any]) -> None:
    print(f"\nruntimes: images/s on this CPU (batch 8, 224 px), top-1 agreement with torch fp32 "
          f"on {results['images']} held-out images (int8 calibrated on {results['calibration']})")  # fmt: skip
    models = [m for m in results if isinstance(results[m], dict)]
    header = " | ".join(f"{m}: bare / cvtasks / agree" for m in models)
    print(f"| runtime | {header} |")
    print("|---|" + "---|" * len(models))
    for name in ROWS:
        cells = []
        for model in models:
            row = results[model][name]
            cells.append(f"{row['bare_img_s']} / {row['cvtasks_img_s']} / "
                         f"{row['top1_agreement']:.3f}")  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    from bench.run import make_images

    images = make_images(64, HERE / "data" / "images")
    found = bench_runtimes(images)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "runtimes.json").write_text(json.dumps(found, indent=2))
    print_runtimes(found)
