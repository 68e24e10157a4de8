"""The local engine built from a config, and the predictor it runs: shared by the runner and by
the Ray actors (which run this same engine on their share of the inputs)."""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

from cvtasks.config import InferenceConfig
from cvtasks.engine import Engine, usable_lanes
from cvtasks.io.sources import InputItem
from cvtasks.log import warn
from cvtasks.tasks.base import Predictor
from cvtasks.tasks.spec import TaskSpec


def name_the_model(cfg: InferenceConfig, tell: bool = True) -> None:
    """``-m`` from what ``-w`` is: a run folder or an exported file knows its model (and
    ``--backend`` is checked against the file). Before anything compares ``cfg.model``;
    ``tell``: warn what an int8 file's quantisation cost (once a run)."""
    from cvtasks.export.runtime import prepare_backend
    from cvtasks.run_spec import apply_run_model

    apply_run_model(cfg)  # -w runs/NAME brings its model name
    prepare_backend(cfg, tell)  # -w FILE.onnx too; and --backend can run it


def load_predictor(spec: TaskSpec, cfg: InferenceConfig) -> Predictor:
    """Resolve the device and build the task's predictor (downloads weights if needed)."""
    from cvtasks.device import autocast_for, resolve_device

    name_the_model(cfg)
    if cfg.engine == "ray":  # the model runs in the actors; here it only names and labels
        cfg = copy.copy(cfg)
        cfg.device, cfg.precision, cfg.compile = "cpu", "fp32", False
    device = resolve_device(cfg.device)
    autocast_for(device, cfg.precision)  # an impossible precision fails before the model loads
    predictor: Predictor = spec.load_predictor_class()(cfg, device)
    lanes = usable_lanes(predictor, cfg.lanes, cfg.workers)
    if cfg.lanes > 1 and lanes < cfg.lanes:
        task = f"{spec.name} {cfg.model}"
        warn(
            "--lanes does not combine with --workers: running one lane"
            if cfg.workers > 0
            else f"--lanes is for classify and semantic segment, not {task}: one lane"
        )
    set_threads(cfg.threads, cfg.workers, lanes)
    return predictor


def local_engine(
    predictor: Predictor,
    items: list[InputItem],
    cfg: InferenceConfig,
    *,
    keep_images: bool,
    done: Collection[Any] = frozenset(),
) -> Engine:
    """The local engine configured from ``cfg`` (batching, workers, precision, decoding, video)."""
    from cvtasks.io.frames import ReaderOptions, open_reader

    options = ReaderOptions(
        max_pixels=cfg.max_image_pixels,
        sequence_fps=getattr(cfg, "fps", None),
        reconnect=getattr(cfg, "reconnect", 3),
        on_corrupt=cfg.on_corrupt,
    )
    return Engine(
        predictor,
        items,
        reader=lambda item: open_reader(item, options),
        batch_size=cfg.batch_size,
        workers=cfg.workers,
        vid_stride=cfg.vid_stride,
        max_pixels=cfg.max_image_pixels,
        precision=cfg.precision,
        jpeg_draft=cfg.jpeg_draft,
        lanes=cfg.lanes,
        keep_images=keep_images,
        done=done,
        device_decode=decodes_on_device(cfg, predictor),
        on_corrupt=cfg.on_corrupt,
    )


def decodes_on_device(cfg: InferenceConfig, predictor: Predictor) -> bool:
    """``--decode-on``: auto means on the device when it is a GPU and the task can."""
    able = predictor.tensor_preprocessor() is not None
    if cfg.decode_on == "device" and not able:
        warn(f"--decode-on device: {predictor.task} preprocesses with Pillow; decoding on the CPU")
    if cfg.decode_on == "auto":
        return able and predictor.device.type == "cuda"
    return able and cfg.decode_on == "device"


def set_threads(threads: int, workers: int, lanes: int = 1) -> None:
    """Torch's intra-op threads: as asked, or the cores left after the DataLoader workers, or
    the cores shared among the lanes, so that the machine is never oversubscribed
    (OMP_NUM_THREADS wins)."""
    import os

    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    elif (workers > 0 or lanes > 1) and "OMP_NUM_THREADS" not in os.environ:
        cores = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
        torch.set_num_threads(max(1, cores - workers if workers > 0 else cores // lanes))
