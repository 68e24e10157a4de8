"""`cvtasks train DATA -o runs/NAME`: wires the data, the model, the recipe and the loop, holds
the run folder's lock, and reports."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from cvtasks.classify.train.config import TrainConfig
from cvtasks.classify.train.data import LabelledSet, load_labelled_set
from cvtasks.classify.train.images import NO_FACE
from cvtasks.errors import UsageError
from cvtasks.io.lock import out_lock
from cvtasks.io.outdir import check_resume_compatible
from cvtasks.io.sinks import dumps
from cvtasks.tasks.spec import TaskSpec


def run_train(spec: TaskSpec, cfg: TrainConfig, *, stdin: TextIO | None = None, **_: Any) -> Any:
    """Train; exit code 1 when some images could not be read (they are skipped and listed)."""
    from cvtasks.engine import RunStats
    from cvtasks.runner import RunSummary

    started = time.perf_counter()
    if not cfg.inputs:
        raise UsageError(
            "no training data given\nusage: cvtasks train DATA -o RUN_FOLDER [OPTIONS]"
        )
    if len(cfg.inputs) != 1:
        raise UsageError(f"cvtasks train takes one DATA folder or list, got {len(cfg.inputs)}")
    if cfg.out is None:
        raise UsageError("cvtasks train writes a run folder: pass -o runs/NAME")
    folder = Path(cfg.out)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} exists and is not a folder")
    data = load_labelled_set(cfg.inputs[0], cfg.val_split, cfg.seed, cfg.labels)
    console = Console(file=sys.stderr, soft_wrap=not sys.stderr.isatty())  # greppable in logs
    with out_lock(folder, wait=cfg.wait_lock):
        failed = _train(cfg, data, folder, console)
    summary = RunStats(processed=len(data.train) + len(data.val) - failed, failed=failed)
    return RunSummary(summary, len(data.train) + len(data.val), 0.0, time.perf_counter() - started)


def _train(cfg: TrainConfig, data: LabelledSet, folder: Path, console: Console) -> int:
    import torch

    from cvtasks.classify.train.images import LabelledImages, ResizedImages, Unreadable
    from cvtasks.classify.train.loop import Loop
    from cvtasks.classify.train.model import build_for_training
    from cvtasks.classify.train.recipe import (
        eval_transform,
        optimizer_for,
        preprocessing_for,
        schedule,
        train_transform,
    )
    from cvtasks.classify.train.run_folder import (
        RunState,
        is_resumable,
        load_state,
        load_weights_into,
        read_metrics,
        write_labels,
        write_run_config,
        write_split,
    )
    from cvtasks.device import autocast_for, resolve_device, resolve_precision
    from cvtasks.engines.local import set_threads
    from cvtasks.run_spec import apply_run_model
    from cvtasks.weights import resolve_weights

    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    autocast_for(device, precision)
    set_threads(cfg.threads, cfg.workers)
    apply_run_model(cfg)
    resuming = cfg.resume and is_resumable(folder)
    if resuming:
        check_resume_compatible(folder, "train", cfg)
    elif cfg.resume:
        console.print(f"--resume: nothing to resume in {folder}; starting afresh", highlight=False)
    torch.manual_seed(cfg.seed)  # the new head's initial weights
    start = resolve_weights(cfg.model, cfg.weights, cfg.release)  # preprocessing comes from it
    img_size = cfg.img_size or int(start.transforms().crop_size[0])
    # A resumed run is built empty and gets the weights of its last completed epoch.
    initial = resolve_weights(cfg.model, "none") if resuming else start
    built = build_for_training(cfg.model, initial, data.classes, cfg.freeze, img_size)
    if resuming:
        load_weights_into(built.model, folder / "last.safetensors")
    model = built.model.to(device)
    channels_last = cfg.channels_last and device.type != "mps"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    preprocessing = preprocessing_for(start, cfg.img_size)
    folder.mkdir(parents=True, exist_ok=True)
    errors: dict[str, str] = {}
    no_face: set[str] = set()

    def unreadable(bad: Unreadable, part: str) -> None:
        samples = data.train if part == "train" else data.val
        path = str(samples[bad.index][0])
        if bad.reason.startswith(NO_FACE):  # not a failure: there is nothing to judge
            if path not in no_face:
                no_face.add(path)
                console.print(f"warning: {path}: {bad.reason} (skipped)", highlight=False)
            return
        if path not in errors:
            errors[path] = bad.reason
            console.print(f"[red]error[/red]: {path}: {bad.reason} (skipped)", highlight=False)
            with (folder / "errors.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(dumps({"source": path, "frame": None, "error": bad.reason}) + "\n")

    cache_each = cfg.cache_mb // 2 if cfg.workers == 0 else 0  # workers hold their own copies
    from cvtasks.classify.predictor import crop_spec

    crop = crop_spec(cfg)
    cropper = None
    if crop is not None:
        from cvtasks.classify.face_crops import FaceCropper

        cropper = FaceCropper(crop, cfg.face_weights)
        console.print(f"crop: {crop.describe()}, the most confident face of each image")
    train_images = ResizedImages(
        data.train, preprocessing, cfg.max_image_pixels, cache_each, cfg.on_corrupt, cropper
    )
    val_images = ResizedImages(
        data.val, preprocessing, cfg.max_image_pixels, cache_each, cfg.on_corrupt, cropper
    )
    crop_record = crop.to_record() if crop is not None else None
    optimizer = optimizer_for(model, cfg.lr, cfg.weight_decay)
    # the loader's batches per epoch: every partial batch but one of a single image
    count, size = len(data.train), cfg.batch_size
    steps_per_epoch = max(1, count // size if count % size == 1 else math.ceil(count / size))
    scheduler = schedule(
        optimizer, math.ceil(cfg.warmup * steps_per_epoch), cfg.epochs * steps_per_epoch
    )
    state = RunState(0, 0, -1.0, math.inf, 0, 0)
    history: list[dict[str, Any]] = []
    if resuming:
        state = load_state(folder, optimizer, scheduler)
        history = read_metrics(folder, state.epoch)
        console.print(f"--resume: continuing {folder} after epoch {state.epoch}", highlight=False)
    else:
        for stale in ("errors.jsonl", "metrics.jsonl"):
            (folder / stale).unlink(missing_ok=True)
        write_labels(folder, data.classes)
        write_split(folder, data, cfg)
        write_run_config(folder, cfg, data.classes, preprocessing, None, crop_record)
    loop = Loop(
        cfg, precision, data, model, device,
        LabelledImages(train_images, train_transform(preprocessing, cfg.augment)),
        LabelledImages(val_images, eval_transform(preprocessing)),
        optimizer, scheduler, folder, console, channels_last, unreadable,
    )  # fmt: skip
    loop.history = history
    if not cfg.quiet:
        header = _header(cfg, data, built, start, preprocessing, device, precision)
        if resuming:
            header += f" (resumed from {folder / 'last.safetensors'})"
        console.print(header, highlight=False)
    try:
        state = loop.run(state)
    except KeyboardInterrupt:
        console.print(
            f"interrupted: {folder}/last.safetensors holds epoch {state.epoch}; "
            "run the same command with --resume to continue",
            highlight=False,
        )
        raise
    best = {
        "epoch": state.best_epoch,
        "val_top1": state.best_top1,
        "val_loss": round(state.best_loss, 6),
    }
    write_run_config(folder, cfg, data.classes, preprocessing, best, crop_record)
    summary = {
        "task": "train",
        "model": cfg.model,
        "run": str(folder),
        "classes": data.classes,
        "epochs": state.epoch,
        "best": best,
        "unreadable": len(errors),
    }
    if no_face:
        summary["no_face"] = len(no_face)
    print(dumps(summary), flush=True)
    return len(errors)


def _header(
    cfg: TrainConfig,
    data: LabelledSet,
    built: Any,
    start: Any,
    p: dict[str, Any],
    device: Any,
    precision: str,
) -> str:
    counts = ", ".join(f"{name} {n}" for name, n in data.counts("train").items())
    frozen = f", frozen: {len(built.frozen)} part(s)" if built.frozen else ""
    return (
        f"train {cfg.model} from {start.describe()} on {device}: {len(data.classes)} "
        f"classes ({counts}); {len(data.train)} train / {len(data.val)} val images "
        f"({data.layout}); "
        f"{p['crop']} px crops, augment {cfg.augment}, {precision}{frozen}"
    )
