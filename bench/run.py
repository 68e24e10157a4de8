"""`make bench`: throughput of `cvtasks classify` against the bare model and a naive loop.

A: bare model forward on pre-decoded, pre-processed batches (the ceiling);
B: a hand-written loop (PIL open -> weights.transforms() -> model per image -> softmax);
C: `cvtasks classify DIR --format jsonl` in a subprocess, as a user runs it (its own timing
   line gives the steady-state rate without process start and model load).
Weights are seeded random files (no download needed); speed does not depend on their values.
Prints a table and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.models import get_model, get_model_weights

from bench.agreement import bench_agreement, print_agreement
from bench.proc import run_sampling_rss
from bench.ray_engine import bench_ray, print_ray
from bench.runtimes import bench_runtimes, print_runtimes
from bench.track import bench_tracking, print_tracking
from bench.train import bench_training, print_training

HERE = Path(__file__).resolve().parent
CLASSIFIERS = {
    "resnet50",
    "resnet18",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "vit_b_16",
    "convnext_tiny",
}
TASK_MODELS = [
    ("detect", "fasterrcnn_resnet50_fpn_v2"),
    ("detect", "fasterrcnn_mobilenet_v3_large_320_fpn"),
    ("segment", "deeplabv3_resnet50"),
    ("segment", "lraspp_mobilenet_v3_large"),
    ("segment", "maskrcnn_resnet50_fpn"),
    ("pose", "keypointrcnn_resnet50_fpn"),
    ("depth", "depth-anything-v2-small (random)"),
]
DATA = HERE / "data"


def make_images(count: int, folder: Path) -> list[Path]:
    """Mixed-size JPEGs (640-2450 px on the long side: 0.3-4 MP) from scikit-image's photos."""
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.jpg"))
    marker = folder / ".long-sides-640-2450"  # images of an older size range are remade
    if len(existing) == count and marker.exists():
        return existing
    for old in existing:
        old.unlink()
    rng = np.random.default_rng(0)
    sources = [
        skimage.data.astronaut(),
        skimage.data.chelsea(),
        skimage.data.coffee(),
        skimage.data.rocket(),
    ]
    paths = []
    for i in range(count):
        base = Image.fromarray(sources[i % len(sources)])
        long_side = int(rng.integers(640, 2451))
        scale = long_side / max(base.size)
        image = base.resize((round(base.width * scale), round(base.height * scale)), Image.BICUBIC)
        path = folder / f"img_{i:03d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    marker.touch()
    return paths


def _build(model: str) -> torch.nn.Module:
    """A seeded random model (detectors and segmenters without a backbone download)."""
    torch.manual_seed(0)
    kwargs = {} if model in CLASSIFIERS else {"weights_backbone": None}
    return get_model(model, weights=None, **kwargs).eval()


def weights_file(model: str) -> Path:
    path = DATA / f"{model}_seed0.pth"
    if not path.exists():
        torch.save(_build(model).state_dict(), path)
    return path


def bare_forward(
    model: str,
    paths: list[Path],
    batch: int,
    bf16: bool = False,
    folded: bool = False,
    channels_last: bool = True,
) -> float:
    """A: images/s of the model alone on batches prepared beforehand, channels-last (its
    fastest layout) or contiguous, optionally under bf16 autocast or with BatchNorm folded."""
    from cvtasks.speed import fold_batchnorm

    layout = torch.channels_last if channels_last else torch.contiguous_format
    transforms = get_model_weights(model).DEFAULT.transforms()
    net = get_model(model, weights=None).eval()
    net = (fold_batchnorm(net) if folded else net).to(memory_format=layout)
    tensors = [transforms(Image.open(p).convert("RGB")) for p in paths]
    batches = [
        torch.stack(tensors[i : i + batch]).contiguous(memory_format=layout)
        for i in range(0, len(tensors), batch)
    ]
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    with torch.inference_mode(), autocast:
        net(batches[0])  # warm-up
        start = time.perf_counter()
        for b in batches:
            net(b).softmax(dim=1)
        return len(paths) / (time.perf_counter() - start)


def naive_loop(model: str, paths: list[Path]) -> float:
    """B: images/s of the obvious hand-written loop, one image at a time."""
    transforms = get_model_weights(model).DEFAULT.transforms()
    net = get_model(model, weights=None).eval()
    with torch.no_grad():
        net(transforms(Image.open(paths[0]).convert("RGB")).unsqueeze(0))  # warm-up
        start = time.perf_counter()
        for p in paths:
            x = transforms(Image.open(p).convert("RGB")).unsqueeze(0)
            net(x).softmax(dim=1).topk(5)
        return len(paths) / (time.perf_counter() - start)


TIMING = re.compile(
    r"(?P<done>\d+) done.* in (?P<wall>[\d.]+) s "
    r"\((?P<rate>[\d.]+)/s after (?P<setup>[\d.]+) s setup\)"
    r" \| per image: decode (?P<decode>[\d.]+) ms, preprocess (?P<pre>[\d.]+) ms, "
    r"inference (?P<inf>[\d.]+) ms, postprocess (?P<post>[\d.]+) ms"
)


def depth_anything_small_folder() -> Path:
    """Depth Anything V2 Small's architecture with random weights, saved locally (no download)."""
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    folder = DATA / "depth-anything-v2-small-random"
    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    backbone = Dinov2Config(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        patch_size=14,
        image_size=518,
        out_indices=[3, 6, 9, 12],
        reshape_hidden_states=False,
        apply_layernorm=True,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=384,
        neck_hidden_sizes=[48, 96, 192, 384],
        fusion_hidden_size=64,
        head_hidden_size=32,
    )
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(
        size={"height": 518, "width": 518},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,
        do_pad=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return folder


def depth_bare_forward(folder: Path, paths: list[Path]) -> float:
    """A for depth: the model alone on processor outputs prepared beforehand."""
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    processor = AutoImageProcessor.from_pretrained(folder)
    net = AutoModelForDepthEstimation.from_pretrained(folder).eval()
    inputs = [
        processor(images=Image.open(p).convert("RGB"), return_tensors="pt")["pixel_values"]
        for p in paths
    ]
    with torch.inference_mode():
        start = time.perf_counter()
        for x in inputs:
            net(pixel_values=x)
        return len(paths) / (time.perf_counter() - start)


def task_bare_forward(model: str, paths: list[Path]) -> float:
    """A for detection/segmentation/pose: one image per forward, inputs prepared beforehand."""
    transforms = get_model_weights(model).DEFAULT.transforms()
    net = _build(model)
    inputs = [transforms(Image.open(p).convert("RGB")) for p in paths]
    detector = hasattr(net, "transform")
    with torch.inference_mode():
        start = time.perf_counter()
        for x in inputs:
            net([x]) if detector else net(x.unsqueeze(0))
        return len(paths) / (time.perf_counter() - start)


def cvtasks_run(
    model: str,
    folder: Path,
    extra: list[str],
    task: str = "classify",
    weights_from_file: bool = True,
) -> dict[str, float]:
    """C: the CLI end to end in a subprocess; parses its timing line on stderr."""
    weights_args = ["-w", str(weights_file(model))] if weights_from_file else []
    cmd = [
        sys.executable,
        "-m",
        "cvtasks",
        task,
        str(folder),
        "-m",
        model,
        *weights_args,
        "--format",
        "jsonl",
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    match = TIMING.search(proc.stderr)
    if match is None:
        raise RuntimeError(f"no timing line in: {proc.stderr}")
    n = int(match["done"])
    return {
        "images": n,
        "end_to_end_img_s": n / wall,
        "steady_img_s": float(match["rate"]),
        "setup_s": float(match["setup"]),
        "ms_decode": float(match["decode"]),
        "ms_preprocess": float(match["pre"]),
        "ms_inference": float(match["inf"]),
        "ms_postprocess": float(match["post"]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def startup_times() -> dict[str, float]:
    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    return {
        "python_pass_s": best([sys.executable, "-c", "pass"]),
        "cvtasks_help_s": best([sys.executable, "-m", "cvtasks", "--help"]),
    }


def best_of(repeats: int, measure, key=None):
    """Run ``measure`` several times and keep the fastest (this machine is noisy)."""
    runs = [measure() for _ in range(repeats)]
    return max(runs, key=key) if key else max(runs)


def bench_explain(model: str, image: Path) -> dict[str, object]:
    """Seconds per image of each method at 224 px, and occlusion windows/s, batched or not."""
    from cvtasks.explain.methods import METHODS, MethodOptions, attribute, window_positions
    from cvtasks.speed import forward_copy

    transforms = get_model_weights(model).DEFAULT.transforms()
    net = _build(model)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    x = transforms(Image.open(image).convert("RGB")).unsqueeze(0)
    out: dict[str, object] = {}
    for method in METHODS:
        start = time.perf_counter()
        attribute(method, net, x, 0, MethodOptions(batch_size=8), model)
        out[method] = round(time.perf_counter() - start, 3)
    windows = len(window_positions(224, 32, 16)) ** 2
    start = time.perf_counter()
    naive_occlusion(net, x, 0, window=32, stride=16)
    out["occlusion_windows_per_s_naive"] = round(windows / (time.perf_counter() - start), 1)
    # As `cvtasks explain --method occlusion` runs it: channels-last, BatchNorm folded.
    product_net = forward_copy(net.to(memory_format=torch.channels_last))
    for batch in (1, 8, 16, 64):
        opts = MethodOptions(window=32, stride=16, batch_size=batch)
        start = time.perf_counter()
        attr = attribute("occlusion", product_net, x, 0, opts, model)
        out[f"occlusion_windows_per_s_batch{batch}"] = round(
            attr.extra["probability_map"].size / (time.perf_counter() - start), 1
        )
    return out


def naive_occlusion(
    net: torch.nn.Module, x: torch.Tensor, target: int, window: int, stride: int
) -> list[float]:
    """The baseline: one forward per occluder position, the model as torchvision builds it."""
    from cvtasks.explain.methods import window_positions

    probabilities = []
    with torch.no_grad():
        for y in window_positions(x.shape[-2], window, stride):
            for x0 in window_positions(x.shape[-1], window, stride):
                occluded = x.clone()
                occluded[..., y : y + window, x0 : x0 + window] = 0
                probabilities.append(float(net(occluded).softmax(dim=1)[0, target]))
    return probabilities


def bench_video(seconds: int = 20) -> dict[str, float]:
    """detect on a generated 720p clip (30 fps): frames/s and the process's memory over time."""

    import cv2

    clip = DATA / f"clip720p_{seconds}s.avi"
    if not clip.exists():
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (1280, 720))
        rng = np.random.default_rng(0)
        background = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
        for i in range(30 * seconds):
            frame = background.copy()
            cv2.rectangle(
                frame, (100 + 3 * i % 1000, 200), (300 + 3 * i % 1000, 500), (20, 200, 240), -1
            )
            writer.write(frame)
        writer.release()
    model = "fasterrcnn_mobilenet_v3_large_320_fpn"
    cmd = [
        sys.executable,
        "-m",
        "cvtasks",
        "detect",
        str(clip),
        "-m",
        model,
        "-w",
        str(weights_file(model)),
        "-b",
        "8",
        "-f",
        "jsonl",
    ]
    stderr, samples = run_sampling_rss(cmd)
    match = TIMING.search(stderr)
    assert match is not None, stderr
    return {
        "frames": int(match["done"]),
        "frames_per_s": float(match["rate"]),
        "ms_decode": float(match["decode"]),
        "ms_inference": float(match["inf"]),
        "rss_mb_at_20pct": samples[len(samples) // 5] if samples else 0.0,
        "rss_mb_at_end": samples[-1] if samples else 0.0,
        "rss_mb_peak": max(samples) if samples else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--models", default="resnet50,resnet18")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per measurement")
    parser.add_argument("--task-images", type=int, default=8, help="images for the other tasks")
    parser.add_argument("--skip-tasks", action="store_true", help="classify rows only")
    parser.add_argument("--only-explain", action="store_true", help="the explain rows only")
    parser.add_argument("--only-track", action="store_true", help="the tracking rows only")
    parser.add_argument("--only-train", action="store_true", help="the training row only")
    parser.add_argument("--only-ray", action="store_true", help="the Ray engine rows only")
    parser.add_argument("--only-cpu", action="store_true", help="classify vs bare forward only")
    parser.add_argument(
        "--only-runtimes", action="store_true", help="export runtimes (onnxruntime, OpenVINO)"
    )
    parser.add_argument(
        "--only-agreement", action="store_true", help="speed options vs reference, real weights"
    )
    args = parser.parse_args()
    if args.only_agreement:
        print_agreement(bench_agreement())
        return
    if args.only_track:
        print_tracking(run_tracking())
        return
    if args.only_train:
        print_training(bench_training())
        return

    paths = make_images(args.images, DATA / "images")
    if args.only_runtimes:
        print_runtimes(bench_runtimes(paths))
        return
    if args.only_cpu:
        models = {
            m: bench_model(m, paths, args.batch, args.repeats) for m in args.models.split(",")
        }
        print_cpu_vs_bare(models)
        return
    if args.only_ray:
        print_ray(run_ray(args.batch))
        return
    if args.only_explain:
        explain = {m: bench_explain(m, paths[1]) for m in ("resnet18", "resnet50")}
        print_explain(explain)
        return
    results: dict[str, object] = {
        "machine": {
            "cpu_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "processor": platform.processor(),
        },
        "startup": startup_times(),
        "models": {},
    }
    for model in args.models.split(","):
        results["models"][model] = bench_model(model, paths, args.batch, args.repeats)  # type: ignore[index]
    results["explain"] = {m: bench_explain(m, paths[1]) for m in ("resnet18", "resnet50")}
    results["video"] = bench_video()
    results["tracking"] = run_tracking()
    results["training"] = bench_training()
    results["ray"] = run_ray(args.batch)
    results["agreement"] = bench_agreement()
    results["runtimes"] = bench_runtimes(paths)
    results["tasks"] = {}
    if not args.skip_tasks:
        task_folder = DATA / "task_images"
        task_folder.mkdir(exist_ok=True)
        for old in task_folder.glob("*.jpg"):
            old.unlink()
        for p in paths[: args.task_images]:
            (task_folder / p.name).write_bytes(p.read_bytes())
        task_paths = sorted(task_folder.glob("*.jpg"))
        for task, model in TASK_MODELS:
            if task == "depth":
                folder = depth_anything_small_folder()
                a = depth_bare_forward(folder, task_paths)
                c = cvtasks_run(
                    str(folder), task_folder, ["-b", "4"], task=task, weights_from_file=False
                )
            else:
                a = task_bare_forward(model, task_paths)
                c = cvtasks_run(model, task_folder, ["-b", "4"], task=task)
            results["tasks"][f"{task} {model}"] = {
                "A_bare_img_s": a,
                "C": c,
                "C_over_A": c["steady_img_s"] / a,
            }  # type: ignore[index]
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results)
    print_cpu_vs_bare(results["models"])  # type: ignore[arg-type]
    print_tracking(results["tracking"])  # type: ignore[arg-type]
    print_training(results["training"])  # type: ignore[arg-type]
    print_ray(results["ray"])  # type: ignore[arg-type]
    print_agreement(results["agreement"])  # type: ignore[arg-type]
    print_runtimes(results["runtimes"])  # type: ignore[arg-type]


VARIANTS = {
    "C_workers1": ["--workers", "1"],
    "C_workers2": ["--workers", "2"],
    "C_lanes2": ["--lanes", "2"],
    "C_bf16": ["--precision", "bf16"],
    "C_bf16_lanes2": ["--precision", "bf16", "--lanes", "2"],
    "C_draft": ["--jpeg-draft"],
    "C_no_fold": ["--no-fold-bn"],
    "C_contiguous": ["--no-channels-last"],
    "C_compile": ["--compile"],
    "C_decode_device": ["--decode-on", "device"],  # the GPU path's tensors, on this CPU
}


def run_ray(batch: int, model: str = "resnet50", images: int = 256) -> dict[str, object]:
    """Enough images (256) that the actors' start-up is a small part of the run."""
    folder = DATA / "ray_images"
    make_images(images, folder)
    return bench_ray(
        lambda extra: cvtasks_run(model, folder, extra), model, weights_file(model), folder, batch
    )


def run_tracking() -> dict[str, object]:
    model = "fasterrcnn_mobilenet_v3_large_320_fpn"
    return bench_tracking(weights_file(model), model, DATA / "track_out")


def bench_model(model: str, paths: list[Path], batch: int, repeats: int) -> dict[str, object]:
    """A, B and C (and C's variants) for one model, best of ``repeats`` each."""
    folder = DATA / "images"

    def steady(run: dict[str, float]) -> float:
        return run["steady_img_s"]

    a = best_of(repeats, lambda: bare_forward(model, paths, batch))
    a_bf16 = best_of(repeats, lambda: bare_forward(model, paths, batch, bf16=True))
    a_folded = best_of(repeats, lambda: bare_forward(model, paths, batch, folded=True))
    a_contig = best_of(repeats, lambda: bare_forward(model, paths, batch, channels_last=False))
    a_bf16_contig = best_of(
        repeats, lambda: bare_forward(model, paths, batch, bf16=True, channels_last=False)
    )
    b = best_of(repeats, lambda: naive_loop(model, paths))
    c = best_of(repeats, lambda: cvtasks_run(model, folder, ["-b", str(batch)]), steady)
    result: dict[str, object] = {
        "A_bare_img_s": a,
        "A_bf16_img_s": a_bf16,
        "A_folded_img_s": a_folded,
        "A_contiguous_img_s": a_contig,
        "A_bf16_contiguous_img_s": a_bf16_contig,
        "B_naive_img_s": b,
        "C": c,
        "C_over_A": c["steady_img_s"] / a,
        "C_over_A_folded": c["steady_img_s"] / a_folded,
        "C_over_B": c["steady_img_s"] / b,
    }
    for name, extra in VARIANTS.items():
        run = best_of(
            repeats,
            lambda extra=extra: cvtasks_run(model, folder, ["-b", str(batch), *extra]),
            steady,
        )
        result[name] = run
        result[f"{name}_over_B"] = run["steady_img_s"] / b
    result["agreement"] = agreement(model, paths)
    return result


def agreement(model: str, paths: list[Path]) -> dict[str, float]:
    """Top-1 agreement and largest top-1 probability difference of bf16, JPEG draft decoding,
    BatchNorm folding, decoding as tensors (--decode-on device: the GPU path, run on this CPU)
    and the defaults against exact fp32 (Pillow, no draft, no folding), with a seeded model
    whose BatchNorms have non-trivial statistics and whose head is scaled so that top-1
    probabilities sit around 0.25-0.4 (saturated or uniform scores would hide differences)."""
    from cvtasks.api import predict

    sharp = DATA / f"{model}_mild_bn.pth"
    if not sharp.exists():
        torch.manual_seed(0)
        net = get_model(model, weights=None)
        generator = torch.Generator().manual_seed(0)
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
        state = net.state_dict()
        head = [k for k in state if k.endswith("weight") and state[k].dim() == 2][-1]
        state[head] = state[head] * 0.05
        torch.save(state, sharp)

    def run(**options: object) -> list[tuple[int, float]]:
        out = []
        for _, result in predict(
            "classify", DATA / "images", model=model, weights=str(sharp), top_k=1, **options
        ):
            top = result.to_record()["predictions"][0]
            out.append((top["index"], top["score"]))
        return out

    exact = run(jpeg_draft=False, fold_bn=False, decode_on="cpu")
    report = {}
    for name, options in (
        ("bf16", {"precision": "bf16", "jpeg_draft": False, "fold_bn": False}),
        ("draft", {"jpeg_draft": True, "fold_bn": False}),
        ("fold", {"jpeg_draft": False, "fold_bn": True}),
        ("device_decode", {"decode_on": "device", "fold_bn": False}),
        ("defaults", {}),
    ):
        other = run(**options)
        report[f"{name}_top1_agreement"] = sum(
            a[0] == b[0] for a, b in zip(exact, other, strict=True)
        ) / len(exact)
        report[f"{name}_max_top1_score_diff"] = max(
            abs(a[1] - b[1]) for a, b in zip(exact, other, strict=True)
        )
    return report


def print_variants(models: dict) -> None:
    """C's variants (workers, bf16, exact decoding, contiguous layout) and the agreements."""
    print()
    print(f"{'C variants: img/s (C/B)':<24}" + "".join(f"{n[2:]:>16}" for n in VARIANTS))
    for model, r in models.items():
        cells = "".join(f"{r[n]['steady_img_s']:>9.1f} ({r[n + '_over_B']:.2f})" for n in VARIANTS)
        print(f"{model:<24}{cells}")
    for model, r in models.items():
        agree = r["agreement"]
        print(
            f"{model}: bare bf16 {r['A_bf16_img_s']:.1f} img/s, BatchNorm folded "
            f"{r['A_folded_img_s']:.1f}, as built {r['A_bare_img_s']:.1f}; against fp32 with exact "
            "decoding, unfolded: "
            + "; ".join(
                f"{name} top-1 agreement {agree[f'{name}_top1_agreement']:.3f} "
                f"(max diff {agree[f'{name}_max_top1_score_diff']:.1e})"
                for name in ("bf16", "draft", "fold", "device_decode", "defaults")
            )
        )


def print_cpu_vs_bare(models: dict) -> None:
    """The CPU pipeline against its best bare forward, fp32 and bf16, per stage (issue 17)."""
    print(
        f"\n{'CPU: img/s':<22}{'A contig':>9}{'A ch-last':>10}{'B naive':>8}{'C default':>10}"
        f"{'C/A':>6}  per image: decode, prep, infer, post (ms)"
    )
    for model, r in models.items():
        for precision, a_contig, a_cl, c in (
            ("fp32", r["A_contiguous_img_s"], r["A_bare_img_s"], r["C"]),
            ("bf16", r["A_bf16_contiguous_img_s"], r["A_bf16_img_s"], r["C_bf16"]),
        ):
            stages = ", ".join(
                f"{c[k]:.1f}"
                for k in ("ms_decode", "ms_preprocess", "ms_inference", "ms_postprocess")
            )
            print(
                f"{model + ' ' + precision:<22}{a_contig:>9.1f}{a_cl:>10.1f}"
                f"{r['B_naive_img_s']:>8.1f}{c['steady_img_s']:>10.1f}"
                f"{c['steady_img_s'] / a_cl:>6.2f}  {stages}"
            )


def print_explain(explain: dict) -> None:
    """Seconds per image for each explain method, and occlusion's batching speed-up."""
    methods = [k for k in next(iter(explain.values())) if not k.startswith("occlusion_windows")]
    print(f"{'explain (s/image, 224 px)':<26}" + "".join(f"{m[:12]:>13}" for m in methods))
    for model, r in explain.items():
        print(f"{model:<26}" + "".join(f"{r[m]:>13.2f}" for m in methods))
    for model, r in explain.items():
        naive = r["occlusion_windows_per_s_naive"]
        rates = ", ".join(
            f"batch {b}: {r[f'occlusion_windows_per_s_batch{b}']:.1f} "
            f"({r[f'occlusion_windows_per_s_batch{b}'] / naive:.2f}x)"
            for b in (1, 8, 16, 64)
        )
        print(f"{model}: occlusion windows/s: naive loop {naive:.1f}; cvtasks {rates}")


def print_table(results: dict) -> None:
    s = results["startup"]
    print(
        f"startup: python -c pass {s['python_pass_s']:.3f} s, "
        f"cvtasks --help {s['cvtasks_help_s']:.3f} s"
    )
    print(f"threads: {results['machine']['cpu_threads']}  torch {results['machine']['torch']}")
    columns = [
        ("model", 10),
        ("A bare", 8),
        ("B naive", 8),
        ("C", 8),
        ("C w1", 8),
        ("C/A", 6),
        ("C/Af", 6),
        ("C/B", 6),
        ("C e2e", 7),
        ("decode", 7),
        ("prep", 6),
        ("infer", 7),
        ("post", 5),
        ("RSS MB", 7),
    ]
    header = " ".join(
        f"{name:<{w}}" if i == 0 else f"{name:>{w}}" for i, (name, w) in enumerate(columns)
    )
    print(header)
    print("-" * len(header))
    for model, r in results["models"].items():
        c = r["C"]
        values = [
            r["A_bare_img_s"],
            r["B_naive_img_s"],
            c["steady_img_s"],
            r["C_workers1"]["steady_img_s"],
            r["C_over_A"],
            r["C_over_A_folded"],
            r["C_over_B"],
            c["end_to_end_img_s"],
            c["ms_decode"],
            c["ms_preprocess"],
            c["ms_inference"],
            c["ms_postprocess"],
            c["peak_rss_mb"],
        ]
        cells = [
            f"{v:>{w}.2f}" if name.startswith("C/") else f"{v:>{w}.1f}"
            for v, (name, w) in zip(values, columns[1:], strict=True)
        ]
        print(f"{model:<10} " + " ".join(cells))
    print_variants(results["models"])
    if results.get("explain"):
        print()
        print_explain(results["explain"])
    if results.get("video"):
        v = results["video"]
        print(
            f"\nvideo: detect (fasterrcnn_mobilenet_v3_large_320_fpn) on {v['frames']} frames of 720p: "
            f"{v['frames_per_s']:.1f} frames/s (decode {v['ms_decode']:.1f} ms, inference {v['ms_inference']:.1f} ms "
            f"per frame); RSS {v['rss_mb_at_20pct']:.0f} MB at 20 %, {v['rss_mb_at_end']:.0f} MB at the end, "
            f"{v['rss_mb_peak']:.0f} MB peak"
        )
    if results.get("tasks"):
        print()
        print(
            f"{'task / model':<48} {'A bare':>7} {'C':>7} {'C/A':>5} {'decode':>7} {'prep':>6} "
            f"{'infer':>7} {'post':>6}"
        )
        for name, r in results["tasks"].items():
            c = r["C"]
            print(
                f"{name:<48} {r['A_bare_img_s']:7.2f} {c['steady_img_s']:7.2f} "
                f"{r['C_over_A']:5.2f} {c['ms_decode']:7.1f} {c['ms_preprocess']:6.1f} "
                f"{c['ms_inference']:7.1f} {c['ms_postprocess']:6.1f}"
            )
    print(
        "img/s; C = cvtasks steady state (after start-up and model load), C e2e = whole process;"
        " Af = A with BatchNorm folded (the model C runs);"
        " stage columns: ms per image in C (w0); best of N runs each"
    )


if __name__ == "__main__":
    main()
