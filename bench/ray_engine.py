"""Ray rows of `make bench`: `--engine ray` against the local engine on this machine (same
images, model and batch), the rate of each actor, and the driver's ceiling (records/s that
this process can unpickle, turn into records and write, whatever the cluster's size)."""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def per_actor(model: str, weights: Path, folder: Path, batch: int) -> dict[str, Any]:
    """An in-process Ray run: frames and busy seconds of each actor."""
    from cvtasks.config_build import build_config
    from cvtasks.runner import build_engine, collect_inputs, load_predictor
    from cvtasks.tasks.registry import get_task

    spec = get_task("classify")
    options = {"model": model, "weights": str(weights), "batch_size": batch, "engine": "ray"}
    cfg = build_config(spec.config_cls, [("bench", {**options, "inputs": [str(folder)]})])
    items = collect_inputs(cfg, spec=spec)
    engine: Any = build_engine(
        load_predictor(spec, cfg), items, cfg, keep_images=False, task=spec.name
    )
    start = time.perf_counter()
    first = None
    frames = 0
    for _ in engine:
        frames += 1
        if first is None:  # the actors are up (imports, model built) and the first batch done
            first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return {
        "frames": frames,
        "wall_s": end - start,
        "first_result_s": first - start,
        "after_first_img_s": (frames - batch) / (end - first),
        "actors": {
            name: {
                "frames": n,
                "img_s": n / max(engine.actor_seconds.get(name, 0.0), 1e-9),
            }
            for name, n in engine.actor_frames.items()
        },
    }


def driver_ceiling(records: int = 20_000, batch: int = 8, top_k: int = 5) -> dict[str, float]:
    """Records/s of the driver alone: unpickling actor chunks of classify results, counting,
    making records and writing results.jsonl and stdout JSONL (no model, no cluster)."""
    import tempfile

    from cvtasks.classify.predictor import ClassifyResult, ClassPrediction
    from cvtasks.engine import RunStats, StageTimes
    from cvtasks.engines.ray_data import RayEngine, _Chunk, _dumps
    from cvtasks.io.sinks import OutDirSink, StdoutSink
    from cvtasks.types import Frame, make_record

    rng = np.random.default_rng(0)
    payloads = []
    for start in range(0, records, batch):
        pairs = []
        for i in range(start, min(start + batch, records)):
            predictions = [
                ClassPrediction(f"class {j}", int(j), float(rng.random()))
                for j in rng.choice(1000, top_k, replace=False)
            ]
            frame = Frame(f"/data/images/img_{i:07d}.jpg", None, 640, 480, f"img_{i:07d}.jpg")
            pairs.append((frame, ClassifyResult(predictions)))
        payloads.append(_dumps(_Chunk(pairs, StageTimes(), 0, 0, "actor", [])))
    engine = RayEngine.__new__(RayEngine)  # only its bookkeeping, no cluster
    engine.stats = RunStats()
    engine.actor_frames, engine.actor_seconds, engine.printed = {}, {}, set()
    with tempfile.TemporaryDirectory() as out:
        sink = OutDirSink(Path(out), save_images=False, append=False)
        stdout = StdoutSink("jsonl", "classify", "resnet50", io.StringIO())
        start = time.perf_counter()
        for payload in payloads:
            for frame, result in engine._take(pickle.loads(payload)):
                record = make_record(frame, "classify", "resnet50", result, {})
                sink.write(frame, result, record)
                stdout.write(frame, result, record)
        sink.close()
        elapsed = time.perf_counter() - start
    return {"records": records, "records_per_s": records / elapsed}


def bench_ray(
    run: Callable[[list[str]], dict[str, float]],
    model: str,
    weights: Path,
    folder: Path,
    batch: int,
) -> dict[str, Any]:
    """Local and Ray runs of the CLI (``run(extra_args)``), per-actor rates, driver ceiling."""
    base = ["-b", str(batch)]
    return {
        "model": model,
        "local": run(base),
        "ray_2x1cpu": run([*base, "--engine", "ray"]),
        "ray_1x2cpu": run([*base, "--engine", "ray", "--ray-actors", "1", "--ray-cpus", "2"]),
        "per_actor": per_actor(model, weights, folder, batch),
        "driver": driver_ceiling(),
    }


def print_ray(r: dict[str, Any]) -> None:
    """Steady rates (after setup) and end to end, side by side; actors; the driver ceiling."""
    local = r["local"]
    print(
        f"\n{'engine (' + r['model'] + ')':<34}{'steady img/s':>14}{'end to end':>12}{'setup s':>9}"
    )
    for name, label in (
        ("local", "local (2 threads)"),
        ("ray_2x1cpu", "ray, 2 actors x 1 CPU (auto)"),
        ("ray_1x2cpu", "ray, 1 actor x 2 CPUs"),
    ):
        c = r[name]
        ratio = c["steady_img_s"] / local["steady_img_s"]
        print(
            f"{label:<34}{c['steady_img_s']:>8.2f} ({ratio:.2f}x){c['end_to_end_img_s']:>9.2f}"
            f"{c['setup_s']:>9.2f}"
        )
    actors = ", ".join(
        f"{a['img_s']:.2f} img/s ({a['frames']} images)" for a in r["per_actor"]["actors"].values()
    )
    p = r["per_actor"]
    ratio = p["after_first_img_s"] / local["steady_img_s"]
    print(
        f"ray, 2 actors x 1 CPU, once the actors are up: {p['after_first_img_s']:.2f} img/s "
        f"({ratio:.2f}x local); first result after {p['first_result_s']:.1f} s "
        "(actors import torch and build the model)"
    )
    print(f"per actor (busy time): {actors}")
    print(
        f"driver ceiling: {r['driver']['records_per_s']:.0f} records/s "
        "(unpickle + record + results.jsonl + stdout JSONL, classify top-5)"
    )
