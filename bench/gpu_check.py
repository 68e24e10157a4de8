"""One prepared GPU check (run on a lent GPU machine; not part of `make test`).

1. `--device cuda` gives the CPU's results: classify top-k, detect boxes, segment masks.
2. fp16 / bf16 autocast agree with fp32 (top-1 agreement, max score difference).
3. Throughput of classify resnet50: bare forward (A) vs the engine (C) with JPEGs decoded on
   the GPU (the default on CUDA) and with Pillow on the CPU, fp32 / bf16 / fp16 at batch 64, on
   256 generated JPEGs; detection (fasterrcnn_resnet50_fpn_v2) A vs C; agreement of decoding
   on the device with Pillow.
4. The CLI itself with --device cuda --precision fp16.

Writes $OUT/gpu_check.json (default bench/results/, which git ignores) and prints it. `--cpu`: a small dry run of
the throughput and agreement steps on this CPU, to check the script without a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from torchvision.models import get_model, get_model_weights

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from helpers import calibrated_state_dict, seeded_state_dict  # noqa: E402

from bench.run import make_images  # noqa: E402
from cvtasks.api import predict  # noqa: E402
from cvtasks.runner import load_predictor  # noqa: E402
from cvtasks.tasks.registry import get_task  # noqa: E402

OUT = Path(os.environ.get("OUT", str(Path(__file__).resolve().parent / "results")))
# `python -m bench.gpu_check --cpu` runs the same script on this CPU (small, to check it)
DEVICE = "cpu" if "--cpu" in sys.argv else "cuda"
WORKERS = 2 if DEVICE == "cpu" else 12
WORK = Path("/tmp/gpu_check")
WORK.mkdir(parents=True, exist_ok=True)
EXAMPLES = sorted((ROOT / "examples").glob("*.jpg"))


def records(task: str, inputs: list[Path], **options: object) -> list[dict]:
    return [r.to_record() for _, r in predict(task, [str(p) for p in inputs], **options)]


def classify_agreement(weights: Path, images: list[Path]) -> dict[str, object]:
    base = records(
        "classify", images, model="resnet50", weights=str(weights), device="cpu", top_k=5
    )
    out: dict[str, object] = {}
    for precision in ("fp32", "fp16", "bf16"):
        got = records(
            "classify",
            images,
            model="resnet50",
            weights=str(weights),
            device="cuda",
            precision=precision,
            top_k=5,
            batch_size=16,
        )
        top1 = sum(
            a["predictions"][0]["index"] == b["predictions"][0]["index"]
            for a, b in zip(base, got, strict=True)
        )
        # ranks 2-5 of a sharpened random head hold probabilities ~1e-9 that round to 0, so
        # compare the classes that carry probability (> 1e-3), as sets
        top5 = sum(
            {p["index"] for p in a["predictions"] if p["score"] > 1e-3}
            == {p["index"] for p in b["predictions"] if p["score"] > 1e-3}
            for a, b in zip(base, got, strict=True)
        )
        diff = max(
            abs(p["score"] - q["score"])
            for a, b in zip(base, got, strict=True)
            for p, q in zip(a["predictions"], b["predictions"], strict=False)
            if p["index"] == q["index"]
        )
        out[precision] = {
            "images": len(images),
            "top1_agree": top1,
            "top5_set_agree": top5,
            "max_score_diff": diff,
        }
    return out


def detect_agreement(weights: Path) -> dict[str, object]:
    opts = {"model": "fasterrcnn_mobilenet_v3_large_320_fpn", "weights": str(weights), "conf": 0.1}
    cpu = records("detect", EXAMPLES, device="cpu", **opts)
    out: dict[str, object] = {}
    for precision in ("fp32", "fp16"):
        gpu = records("detect", EXAMPLES, device="cuda", precision=precision, **opts)
        counts = [
            (len(a["predictions"]), len(b["predictions"])) for a, b in zip(cpu, gpu, strict=True)
        ]
        box_diff = max(
            (
                abs(x - y)
                for a, b in zip(cpu, gpu, strict=True)
                for p, q in zip(a["predictions"], b["predictions"], strict=False)
                for x, y in zip(p["box"], q["box"], strict=True)
            ),
            default=0.0,
        )
        out[precision] = {"counts_cpu_gpu": counts, "max_box_diff_px": box_diff}
    return out


def segment_agreement(weights: Path) -> dict[str, object]:
    import numpy as np

    opts = {"model": "lraspp_mobilenet_v3_large", "weights": str(weights)}
    cpu = [r.mask for _, r in predict("segment", [str(p) for p in EXAMPLES], device="cpu", **opts)]
    out: dict[str, object] = {}
    for precision in ("fp32", "fp16"):
        gpu = [
            r.mask
            for _, r in predict(
                "segment", [str(p) for p in EXAMPLES], device="cuda", precision=precision, **opts
            )
        ]
        out[precision] = {
            "pixel_agreement": min(float(np.mean(a == b)) for a, b in zip(cpu, gpu, strict=True))
        }
    return out


def _engine_rate(task: str, images: list[Path], options: dict[str, object]) -> dict[str, object]:
    """The engine as the CLI builds it (defaults included), timed after a one-batch warm-up."""
    from cvtasks.config_build import build_config
    from cvtasks.runner import build_engine, collect_inputs

    spec = get_task(task)
    layer = {**options, "inputs": [str(images[0].parent)], "quiet": True}
    cfg = build_config(spec.config_cls, [("gpu_check", layer)])
    predictor = load_predictor(spec, cfg)
    items = collect_inputs(cfg, spec=spec)
    batch = int(options.get("batch_size", 8))  # type: ignore[call-overload]
    list(build_engine(predictor, items[:batch], cfg, keep_images=False))  # warm-up
    engine = build_engine(predictor, items, cfg, keep_images=False)
    sync(DEVICE)
    start = time.perf_counter()
    n = sum(1 for _ in engine)
    sync(DEVICE)
    stats = getattr(engine, "stats", None)
    return {
        "img_s": round(n / (time.perf_counter() - start), 1),
        "ms_per_image": {k: round(v, 2) for k, v in stats.per_frame_ms().items()} if stats else {},
    }


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bare_classify(images: list[Path], batch: int, dtype: torch.dtype | None) -> float:
    """A: resnet50 alone, channels-last, on batches prepared and moved beforehand."""
    transforms = get_model_weights("resnet50").DEFAULT.transforms()
    net = get_model("resnet50").to(DEVICE).eval().to(memory_format=torch.channels_last)
    tensors = [transforms(Image.open(p).convert("RGB")) for p in images]
    chunks = [
        torch.stack(tensors[i : i + batch]).to(DEVICE).contiguous(memory_format=torch.channels_last)
        for i in range(0, len(tensors), batch)
    ]
    device_type = DEVICE.split(":")[0]
    ctx = torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None)
    with torch.inference_mode(), ctx:
        for c in chunks[:2]:
            net(c)
        sync(DEVICE)
        start = time.perf_counter()
        for c in chunks:
            net(c).float().softmax(1)
        sync(DEVICE)
        return len(images) / (time.perf_counter() - start)


def throughput(weights: Path, images: list[Path]) -> dict[str, object]:
    """classify resnet50: bare forward (A) against the engine with JPEGs decoded on the device
    (the default on CUDA) and on the CPU, fp32 / bf16 / fp16, at the same batch size."""
    out: dict[str, object] = {}
    batch = 64 if DEVICE.startswith("cuda") else 8
    for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        if precision == "fp16" and not DEVICE.startswith("cuda"):
            continue
        bare = bare_classify(images, batch, dtype)
        options = {"model": "resnet50", "weights": str(weights), "device": DEVICE}
        options |= {"batch_size": batch, "precision": precision, "workers": WORKERS}
        row: dict[str, object] = {"A_bare_img_s": round(bare, 1)}
        for decode in ("device", "cpu"):
            rate = _engine_rate("classify", images, {**options, "decode_on": decode})
            row[f"C_decode_{decode}"] = rate
            row[f"C_decode_{decode}_over_A"] = round(float(rate["img_s"]) / bare, 3)  # type: ignore[arg-type]
        out[f"{precision}_b{batch}"] = row
    return out


def detect_throughput(images: list[Path]) -> dict[str, object]:
    """fasterrcnn_resnet50_fpn_v2 alone (inputs on the device beforehand) against `detect`."""
    model = "fasterrcnn_resnet50_fpn_v2"
    weights = WORK / "frcnn_v2.pth"
    if not weights.exists():
        torch.manual_seed(0)
        torch.save(get_model(model, weights=None, weights_backbone=None).state_dict(), weights)
    net = get_model(model, weights=None, weights_backbone=None).eval().to(DEVICE)
    net.load_state_dict(torch.load(weights, weights_only=True))
    transforms = get_model_weights(model).DEFAULT.transforms()
    inputs = [transforms(Image.open(p).convert("RGB")).to(DEVICE) for p in images]
    with torch.inference_mode():
        net(inputs[:2])
        sync(DEVICE)
        start = time.perf_counter()
        for i in range(0, len(inputs), 4):
            net(inputs[i : i + 4])
        sync(DEVICE)
        bare = len(inputs) / (time.perf_counter() - start)
    options = {"model": model, "weights": str(weights), "device": DEVICE, "batch_size": 4}
    rate = _engine_rate("detect", images, {**options, "workers": WORKERS})
    return {
        "A_bare_img_s": round(bare, 1),
        "C": rate,
        "C_over_A": round(float(rate["img_s"]) / bare, 3),
    }  # type: ignore[arg-type]


def decode_agreement(weights: Path, images: list[Path]) -> dict[str, object]:
    """classify with JPEGs decoded on the device vs Pillow on the CPU (no draft)."""
    opts = {"model": "resnet50", "weights": str(weights), "top_k": 1, "device": DEVICE}
    device = records("classify", images, decode_on="device", **opts)
    pillow = records("classify", images, decode_on="cpu", jpeg_draft=False, **opts)
    pairs = list(zip(device, pillow, strict=True))
    return {
        "images": len(pairs),
        "top1_agreement": sum(
            a["predictions"][0]["index"] == b["predictions"][0]["index"] for a, b in pairs
        )
        / len(pairs),
        "max_top1_score_diff": max(
            abs(a["predictions"][0]["score"] - b["predictions"][0]["score"]) for a, b in pairs
        ),
    }


def occlusion_speed() -> dict[str, float]:
    """resnet50 occlusion (32 px windows, stride 8: 625 windows) one at a time vs batched."""
    from cvtasks.explain.methods import MethodOptions, attribute

    net = get_model("resnet50").cuda().eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    transforms = get_model_weights("resnet50").DEFAULT.transforms()
    x = transforms(Image.open(EXAMPLES[0]).convert("RGB")).unsqueeze(0).cuda()
    out: dict[str, float] = {}
    for batch in (1, 64, 256):
        opts = MethodOptions(window=32, stride=8, batch_size=batch)
        attribute("occlusion", net, x, 0, opts, "resnet50")  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        attr = attribute("occlusion", net, x, 0, opts, "resnet50")
        torch.cuda.synchronize()
        out[f"windows_per_s_batch{batch}"] = round(
            attr.extra["probability_map"].size / (time.perf_counter() - start), 1
        )
    out["speedup_64_vs_1"] = round(out["windows_per_s_batch64"] / out["windows_per_s_batch1"], 2)
    return out


def cli_check(weights: Path) -> dict[str, object]:
    cmd = [
        sys.executable,
        "-m",
        "cvtasks",
        "classify",
        str(ROOT / "examples"),
        "-m",
        "resnet50",
        "-w",
        str(weights),
        "--device",
        "cuda",
        "--precision",
        "fp16",
        "-f",
        "jsonl",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    return {
        "returncode": proc.returncode,
        "records": len(proc.stdout.splitlines()),
        "stderr_tail": proc.stderr[-600:],
    }


def main() -> None:
    on_gpu = DEVICE.startswith("cuda")
    report: dict[str, object] = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if on_gpu else "cpu (dry run of the script)",
        "cpu_threads": torch.get_num_threads(),
    }
    r50 = WORK / "resnet50.pth"
    seeded_state_dict("resnet50", r50, head_scale=40.0)
    mild = WORK / "resnet50_mild.pth"  # top-1 probabilities ~0.3: differences show
    seeded_state_dict("resnet50", mild, head_scale=0.05)
    frcnn = WORK / "frcnn.pth"
    calibrated_state_dict(
        "fasterrcnn_mobilenet_v3_large_320_fpn", frcnn, EXAMPLES, head_scale=5.0, num_classes=91
    )
    lraspp = WORK / "lraspp.pth"
    calibrated_state_dict("lraspp_mobilenet_v3_large", lraspp, EXAMPLES, num_classes=21)
    images = make_images(256 if on_gpu else 16, WORK / ("images" if on_gpu else "images_cpu"))
    steps = [
        ("classify_throughput_resnet50", lambda: throughput(r50, images)),
        ("detect_throughput", lambda: detect_throughput(images[:64] if on_gpu else images[:4])),
        ("decode_on_device_vs_pillow", lambda: decode_agreement(mild, images[:64])),
    ]
    if on_gpu:
        steps += [
            ("classify_cuda_vs_cpu", lambda: classify_agreement(r50, EXAMPLES + images[:16])),
            ("detect_cuda_vs_cpu", lambda: detect_agreement(frcnn)),
            ("segment_cuda_vs_cpu", lambda: segment_agreement(lraspp)),
            ("occlusion_gpu", occlusion_speed),
            ("cli_fp16_cuda", lambda: cli_check(r50)),
        ]
    for name, step in steps:
        start = time.perf_counter()
        try:
            report[name] = step()
        except Exception as exc:  # keep going: one failing check must not hide the others
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    text = json.dumps(report, indent=2)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "gpu_check.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
