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
    elif grid.mode == "kernels":
        shown = min(out_c, cfg.max_maps)
        what = f"{shown}" if shown == out_c else f"first {shown}"
        kind = "depthwise (groups = channels)" if getattr(module, "groups", 1) > 1 else "1-input"
        subtitle = (
            f"a {kind} convolution: one {kh}x{kw} kernel per channel, numbered; grey levels "
            "scaled per kernel"
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
    size = int(net.transforms.crop_size[0])
    unit = cfg.channel is not None
    if unit and cfg.layer is None:
        raise UsageError("maximize --channel K needs --layer NAME (the layer whose unit to excite)")
    if not unit and cfg.target is None:
        raise UsageError(
            "maximize needs --target LABEL|INDEX (the class to visualise), or --layer NAME "
            "--channel K (a unit)"
        )
    target = 0 if unit else parse_target(str(cfg.target), net.labels)
    objective = None
    if unit:
        assert cfg.layer is not None and cfg.channel is not None
        layer = get_layer(net.model, cfg.layer)
        objective = viz.unit_objective(net.model, layer, cfg.channel)
        _check_channel(net, layer, cfg.layer, cfg.channel, size)
    result = viz.maximize_class(
        net.model,
        target,
        size,
        net.transforms.mean,
        net.transforms.std,
        steps=cfg.ascent_steps,
        lr=cfg.lr,
        l2=cfg.l2,
        jitter=cfg.jitter,
        blur_every=cfg.blur_every,
        objective=objective,
    )
    if unit:
        what = f"unit {cfg.channel} of {cfg.layer}"
        stem = f"explain/maximize.{cfg.layer}.{cfg.channel}"
        achieved = f"mean activation {result.scores[0]:.3g} -> {result.saved_score:.3g}"
    else:
        what = f"'{net.labels[target]}' (class {target})"
        stem = f"explain/maximize.{target}"
        achieved = (
            f"logit {result.scores[0]:.3g} -> {result.saved_score:.3g}, "
            f"p = {result.saved_probability:.3f}"
        )
    png, trace = safe_join(out, stem + ".png"), safe_join(out, stem + ".csv")
    alone = safe_join(out, stem + ".input.png")
    atomic_write(alone, lambda tmp: Image.fromarray(result.image).save(tmp, format="PNG"))
    enlarged = np.asarray(
        Image.fromarray(result.image).resize((size * 2, size * 2), Image.Resampling.NEAREST)
    )
    figure = titled(
        enlarged,
        f"{cfg.model}: an input that excites {what}",
        f"gradient ascent, best of {cfg.ascent_steps} steps (step {result.best_step}): "
        f"{achieved}; lr {cfg.lr}, L2 {cfg.l2}, jitter {cfg.jitter} px, blur every "
        f"{cfg.blur_every} steps",
    )
    atomic_write(png, lambda tmp: Image.fromarray(figure).save(tmp, format="PNG"))
    header = "step,score,probability" if not unit else "step,score"
    rows = [
        f"{i},{s:.6f}" + (f",{result.probabilities[i]:.6f}" if not unit else "")
        for i, s in enumerate(result.scores)
    ]
    atomic_write_text(trace, "\n".join([header, *rows]) + "\n")
    record: dict[str, Any] = {"method": "maximize"}
    if unit:
        record["unit"] = {"layer": cfg.layer, "channel": cfg.channel}
    else:
        record["target"] = {"label": net.labels[target], "index": target}
    record.update(
        {
            "steps": cfg.ascent_steps,
            "best_step": result.best_step,
            "initial_score": round(result.scores[0], 6),
            "final_score": round(result.saved_score, 6),  # of the saved image itself
            "files": {
                "image": str(png.relative_to(out)),
                "input": str(alone.relative_to(out)),
                "trajectory": str(trace.relative_to(out)),
            },
        }
    )
    if result.saved_probability is not None:
        record["final_probability"] = round(result.saved_probability, 6)
    return record


def _check_channel(
    net: Classifier, layer: torch.nn.Module, name: str, channel: int, size: int
) -> None:
    """A usage error (before any ascent) when ``channel`` is not a channel of ``layer``."""
    store: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _a, out: store.append(out))
    try:
        with torch.no_grad():
            net.model(torch.zeros(1, 3, size, size, device=next(net.model.parameters()).device))
    finally:
        handle.remove()
    if not store or not isinstance(store[0], torch.Tensor) or store[0].dim() not in (3, 4):
        raise UsageError(f"--layer {name}: its output is not a feature map or a token sequence")
    channels = store[0].shape[1] if store[0].dim() == 4 else store[0].shape[2]
    if channel >= channels:
        raise UsageError(f"--channel {channel}: {name} has {channels} channels (0-{channels - 1})")
