"""The runtimes that run exported files (``--backend``): onnxruntime, OpenVINO, and PyTorch for
.pt2 (torch.export) and TorchScript files. Each is opened once per predictor (so once per Ray
actor) and runs float32 tensors in, float32 (or integer) tensors out."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cvtasks.errors import UsageError, WeightsError
from cvtasks.export.metadata import EXPORT_SUFFIXES, is_exported, missing_runtime

RUNS = {  # which backend runs which format
    "onnx": ("onnxruntime", "openvino"),
    "openvino": ("openvino",),
    "exported-program": ("torch",),
    "torchscript": ("torch",),
}


def check_backend(backend: str, weights: str) -> None:
    """Refuse a backend that cannot run ``weights`` (exit 2, saying what would)."""
    spec = str(weights).strip()
    if not is_exported(spec):
        if backend != "torch":
            raise UsageError(
                f"--backend {backend} runs a file made by `cvtasks export` (-w MODEL.onnx or "
                f".xml); -w {spec} is PyTorch weights: export them first, or use --backend torch"
            )
        return
    kind = EXPORT_SUFFIXES[Path(spec).suffix.lower()]
    if backend not in RUNS[kind]:
        runs = " or --backend ".join(RUNS[kind])
        raise UsageError(f"-w {spec} is an {kind} file: run it with --backend {runs}")


class Runtime:
    """An exported model opened in one runtime: ``run(inputs) -> outputs`` (tensors).

    onnxruntime and OpenVINO get as many threads as torch has when they run (``threads``
    overrides): the file is opened when the predictor is built (so a bad file fails before any
    input), and opened again on the first run if the engine has since divided the cores among
    lanes. Runs may come from two lanes at once: onnxruntime sessions are thread-safe, and each
    thread gets its own OpenVINO infer request."""

    def __init__(self, path: str | Path, backend: str, device: torch.device, threads: int = 0):
        self.path, self.backend, self.device = Path(path), backend, device
        self.requested = threads
        self.opened_with = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        kind = EXPORT_SUFFIXES[self.path.suffix.lower()]
        try:
            if backend in ("onnxruntime", "openvino"):
                self._open(threads or torch.get_num_threads())
            elif kind == "exported-program":
                self.module = torch.export.load(str(self.path)).module().to(device)
            else:
                with warnings.catch_warnings():  # TorchScript is deprecated upstream: said in docs
                    warnings.simplefilter("ignore")
                    self.module = torch.jit.load(str(self.path), map_location=device)
        except (UsageError, WeightsError):
            raise
        except Exception as exc:  # each runtime has its own error types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightsError(f"{backend} cannot load {self.path}: {first}") from None

    def _open(self, threads: int) -> None:
        if self.backend == "onnxruntime":
            self._open_onnxruntime(threads)
        else:
            self._open_openvino(threads)
        self.opened_with = threads

    def _open_onnxruntime(self, threads: int) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise missing_runtime("onnxruntime", "onnx") from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=providers)
        self.names = [i.name for i in self.session.get_inputs()]

    def _open_openvino(self, threads: int) -> None:
        try:
            import openvino
        except ImportError:
            raise missing_runtime("openvino", "openvino") from None
        core = openvino.Core()
        device = "GPU" if self.device.type == "cuda" else "CPU"
        # f32 everywhere: on CPUs with bf16 (AMX) OpenVINO would otherwise compute in bf16
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
        if device == "CPU":  # lanes: a stream each, with the threads torch has per lane
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else threads
            streams = max(1, cores // max(threads, 1))
            config["NUM_STREAMS"] = streams
            config["INFERENCE_NUM_THREADS"] = threads * streams  # the streams' total
        self.compiled = core.compile_model(core.read_model(str(self.path)), device, config)

    def _ready(self) -> None:
        """Reopen once with the thread count torch now has (lanes divide the cores)."""
        want = self.requested or torch.get_num_threads()
        if want != self.opened_with:
            with self._lock:
                if want != self.opened_with:
                    self._open(want)

    def run_one(self, x: torch.Tensor) -> torch.Tensor:
        """The first output for one float32 input, on the input's device."""
        return self.run([x.float().contiguous()])[0].to(x.device)

    def run(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The model's outputs for ``inputs`` (in its input order), as CPU tensors."""
        if self.backend == "onnxruntime":
            self._ready()
            feeds = {n: t.detach().cpu().numpy() for n, t in zip(self.names, inputs, strict=True)}
            return [torch.from_numpy(np.asarray(o)) for o in self.session.run(None, feeds)]
        if self.backend == "openvino":
            self._ready()
            compiled = self.compiled
            if getattr(self._local, "compiled", None) is not compiled:
                self._local.compiled = compiled
                self._local.request = compiled.create_infer_request()
            arrays = [t.detach().cpu().numpy() for t in inputs]
            results = self._local.request.infer(arrays)
            return [torch.from_numpy(np.array(results[out])) for out in compiled.outputs]
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scripted R-CNNs warn that they return a tuple
            found = self.module(*[t.to(self.device) for t in inputs])
        if isinstance(found, torch.Tensor):
            return [found.cpu()]
        if isinstance(found, dict):
            return [v.cpu() for v in found.values()]
        return [t.cpu() for t in _flatten(found)]


def _flatten(found: Any) -> list[torch.Tensor]:
    """A TorchScript detector returns (losses, [detections]) or [detections]: its tensors."""
    if isinstance(found, torch.Tensor):
        return [found]
    if isinstance(found, dict):
        return [t for v in found.values() for t in _flatten(v)]
    if isinstance(found, (list, tuple)):
        return [t for v in found for t in _flatten(v)]
    return []


def prepare_backend(cfg: Any, tell: bool = True) -> None:
    """Before the predictor is built: ``-w FILE`` from `cvtasks export` names its model (``-m``
    may be left out; a different one is an error), and ``--backend`` can run the file;
    ``tell``: warn what an int8 file's quantisation cost."""
    from cvtasks.config import is_given
    from cvtasks.export.metadata import read_metadata

    spec = str(getattr(cfg, "weights", "")).strip()
    backend = getattr(cfg, "backend", None)
    if is_exported(spec):
        if backend is None:
            raise UsageError(
                f"-w {spec} is an exported model; classify, detect, segment, pose, depth and "
                "their eval commands run exported files (with --backend), this command runs "
                "PyTorch weights"
            )
        meta = read_metadata(spec)
        if is_given(cfg, "model") and cfg.model != meta["model"]:
            raise UsageError(
                f"-m {cfg.model} contradicts -w {spec}, an export of {meta['model']}: leave -m "
                "out (the file knows its model)"
            )
        cfg.model = meta["model"]
        if meta.get("int8") and tell:
            from cvtasks.export.metadata import describe
            from cvtasks.log import warn

            warn(f"-w {spec}: {describe(meta)}")  # what quantisation cost, every run
    if backend is not None:
        check_backend(backend, spec)
