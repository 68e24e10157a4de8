"""The explain methods that look at a model without inputs: ``filters`` (the first or a named
convolution's weights as a tile grid) and ``maximize`` (an input that excites a class)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cvtasks.config import is_given
from cvtasks.errors import UsageError
from cvtasks.explain import visualize as viz
from cvtasks.explain.classifier import Classifier, load_classifier, parse_target
from cvtasks.explain.config import ExplainConfig
from cvtasks.explain.layers import get_layer
from cvtasks.io.atomic import atomic_write, atomic_write_text, safe_join, save_npy
from cvtasks.io.lock import out_lock
from cvtasks.render.figure import titled
from cvtasks.run_spec import apply_run_model


def run_model_level(cfg: ExplainConfig) -> Any:
    """filters and maximize: no inputs (a single input word names the model)."""
    from cvtasks.device import resolve_device
    from cvtasks.engine import RunStats
    from cvtasks.io.sinks import dumps
    from cvtasks.runner import RunSummary

    start = time.perf_counter()
    if cfg.inputs:
        if len(cfg.inputs) > 1 or Path(cfg.inputs[0]).exists():
            raise UsageError(
                f"{cfg.method} takes no images: `cvtasks explain {cfg.method} MODEL` or -m MODEL"
            )
        if is_given(cfg, "model") and cfg.model != cfg.inputs[0]:
            raise UsageError(
                f"two models named: {cfg.inputs[0]} (argument) and {cfg.model} (-m/--model); "
                "give one"
            )
        cfg.model = cfg.inputs[0]
    if cfg.out is None:
        raise UsageError(f"{cfg.method} writes its figures under --out: pass -o DIR")
    out = Path(cfg.out)
    apply_run_model(cfg)
    net = load_classifier(cfg, resolve_device(cfg.device))
    with out_lock(out, wait=cfg.wait_lock):
        record = (
            filters_record(cfg, net, out)
            if cfg.method == "filters"
            else maximize_record(cfg, net, out)
        )
    print(dumps({"task": "explain", "model": cfg.model, **record}), file=sys.stdout, flush=True)
    load = time.perf_counter() - start
    stats = RunStats(processed=1)
    return RunSummary(stats, 0, load, load)


def filters_record(cfg: ExplainConfig, net: Classifier, out: Path) -> dict[str, Any]:
    layer = cfg.layer or viz.first_conv(net.model)
    module = get_layer(net.model, layer)
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        raise UsageError(
            f"layer {layer} has no convolution filters (weight of shape out x in x k x k)"
        )
    grid = viz.filter_grid(weight, max_filters=cfg.max_maps)
    out_c, in_c, kh, kw = weight.shape
    if grid.mode == "rgb":
        what = str(min(out_c, cfg.max_maps))
        subtitle = (
            "RGB filters as colour tiles, each stretched from its lowest to its highest weight"
        )
    else:
        what = f"first {grid.rows}"
        subtitle = (
            f"rows: filters 0-{grid.rows - 1}; columns: input channels 0-{grid.columns - 1}; "
            "grey levels scaled per filter"
        )
    image = titled(
        grid.image,
        f"{cfg.model} · {layer}: {what} of {out_c} filters ({in_c}x{kh}x{kw})",
        subtitle,
    )
    png, raw = (
        safe_join(out, f"explain/filters.{layer}.png"),
        safe_join(out, f"explain/filters.{layer}.npy"),
    )
    atomic_write(png, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))
    atomic_write(raw, lambda tmp: save_npy(tmp, grid.weights))
    return {
        "method": "filters",
        "layer": layer,
        "shape": list(weight.shape),
        "mode": grid.mode,
        "rows": grid.rows,
        "columns": grid.columns,
        "files": {"grid": str(png.relative_to(out)), "raw": str(raw.relative_to(out))},
    }


def maximize_record(cfg: ExplainConfig, net: Classifier, out: Path) -> dict[str, Any]:
    if cfg.target is None:
        raise UsageError("maximize needs --target LABEL|INDEX (the class to visualise)")
    target = parse_target(cfg.target, net.labels)
    size = int(net.transforms.crop_size[0])
    steps = cfg.steps
    result = viz.maximize_class(
        net.model,
        target,
        size,
        net.transforms.mean,
        net.transforms.std,
        steps=steps,
        lr=cfg.lr,
        l2=cfg.l2,
        jitter=cfg.jitter,
        blur_every=cfg.blur_every,
    )
    label = net.labels[target]
    stem = f"explain/maximize.{target}"
    png, trace = safe_join(out, stem + ".png"), safe_join(out, stem + ".csv")
    enlarged = np.asarray(
        Image.fromarray(result.image).resize((size * 2, size * 2), Image.Resampling.NEAREST)
    )
    figure = titled(
        enlarged,
        f"{cfg.model}: an input that excites '{label}' (class {target})",
        f"gradient ascent on the logit for {steps} steps: {result.scores[0]:.3g} -> "
        f"{result.scores[-1]:.3g} (p = {result.probabilities[-1]:.3f}); lr {cfg.lr}, L2 {cfg.l2}, "
        f"jitter {cfg.jitter} px, blur every {cfg.blur_every} steps",
    )
    atomic_write(png, lambda tmp: Image.fromarray(figure).save(tmp, format="PNG"))
    lines = ["step,score,probability"] + [
        f"{i},{s:.6f},{p:.6f}"
        for i, (s, p) in enumerate(zip(result.scores, result.probabilities, strict=True))
    ]
    atomic_write_text(trace, "\n".join(lines) + "\n")
    return {
        "method": "maximize",
        "target": {"label": label, "index": target},
        "steps": steps,
        "initial_score": round(result.scores[0], 6),
        "final_score": round(result.scores[-1], 6),
        "final_probability": round(result.probabilities[-1], 6),
        "files": {"image": str(png.relative_to(out)), "trajectory": str(trace.relative_to(out))},
    }
