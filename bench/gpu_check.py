"""One prepared GPU check (run on a lent GPU machine; not part of `make test`).

1. `--device cuda` gives the CPU's results: classify top-k, detect boxes, segment masks.
2. fp16 / bf16 autocast agree with fp32 (top-1 agreement, max score difference).
3. Throughput of classify on the GPU: bare model forward (A) vs the engine (C), fp32 and
   fp16, batch 1 and 32, on 64 generated JPEGs.
4. The CLI itself with --device cuda --precision fp16.

Writes $OUT/gpu_check.json (or ./gpu_check.json) and prints it.
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
from cvtasks.engine import Engine  # noqa: E402
from cvtasks.io.sources import expand_inputs  # noqa: E402
from cvtasks.runner import load_predictor  # noqa: E402
from cvtasks.tasks.registry import ClassifyConfig, get_task  # noqa: E402

OUT = Path(os.environ.get("OUT", "."))
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


def throughput(weights: Path, images: list[Path]) -> dict[str, object]:
    transforms = get_model_weights("resnet50").DEFAULT.transforms()
    net = get_model("resnet50").cuda().eval().to(memory_format=torch.channels_last)
    tensors = [transforms(Image.open(p).convert("RGB")) for p in images]
    out: dict[str, object] = {}
    for precision, dtype in (("fp32", None), ("fp16", torch.float16)):
        for batch in (1, 32):
            chunks = [
                torch.stack(tensors[i : i + batch])
                .cuda()
                .contiguous(memory_format=torch.channels_last)
                for i in range(0, len(tensors), batch)
            ]
            ctx = (
                torch.autocast("cuda", dtype=dtype)
                if dtype
                else torch.autocast("cuda", enabled=False)
            )
            with torch.inference_mode(), ctx:
                for c in chunks[:3]:
                    net(c)
                torch.cuda.synchronize()
                start = time.perf_counter()
                for c in chunks:
                    net(c).float().softmax(1)
                torch.cuda.synchronize()
                bare = len(images) / (time.perf_counter() - start)
            cfg = ClassifyConfig(
                model="resnet50",
                weights=str(weights),
                device="cuda",
                batch_size=batch,
                workers=12,
                precision=precision,
            )
            predictor = load_predictor(get_task("classify"), cfg)
            items = expand_inputs([str(images[0].parent)])
            engine = Engine(
                predictor,
                items,
                batch_size=batch,
                workers=12,
                max_pixels=10**9,
                precision=precision,
                jpeg_draft=True,
            )
            list(
                Engine(
                    predictor,
                    items[:batch],
                    batch_size=batch,
                    max_pixels=10**9,
                    precision=precision,
                )
            )
            start = time.perf_counter()
            n = sum(1 for _ in engine)
            pipeline = n / (time.perf_counter() - start)
            stages = {k: round(v, 2) for k, v in engine.stats.per_frame_ms().items()}
            out[f"{precision}_b{batch}"] = {
                "A_bare_img_s": round(bare, 1),
                "C_engine_img_s": round(pipeline, 1),
                "C_over_A": round(pipeline / bare, 3),
                "ms_per_image": stages,
            }
    return out


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
    report: dict[str, object] = {
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0),
        "cpu_threads": torch.get_num_threads(),
    }
    r50 = WORK / "resnet50.pth"
    seeded_state_dict("resnet50", r50, head_scale=40.0)
    frcnn = WORK / "frcnn.pth"
    calibrated_state_dict(
        "fasterrcnn_mobilenet_v3_large_320_fpn", frcnn, EXAMPLES, head_scale=5.0, num_classes=91
    )
    lraspp = WORK / "lraspp.pth"
    calibrated_state_dict("lraspp_mobilenet_v3_large", lraspp, EXAMPLES, num_classes=21)
    images = make_images(256, WORK / "images")
    for name, step in [
        ("classify_cuda_vs_cpu", lambda: classify_agreement(r50, EXAMPLES + images[:16])),
        ("detect_cuda_vs_cpu", lambda: detect_agreement(frcnn)),
        ("segment_cuda_vs_cpu", lambda: segment_agreement(lraspp)),
        ("classify_throughput_resnet50", lambda: throughput(r50, images)),
        ("occlusion_gpu", occlusion_speed),
        ("cli_fp16_cuda", lambda: cli_check(r50)),
    ]:
        start = time.perf_counter()
        try:
            report[name] = step()
        except Exception as exc:  # keep going: one failing check must not hide the others
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    text = json.dumps(report, indent=2)
    (OUT / "gpu_check.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
