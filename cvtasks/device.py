"""Resolve ``--device`` to a torch device, failing with a usage error when it is absent."""

from __future__ import annotations

import contextlib
import re

import torch

from cvtasks.errors import UsageError

_CUDA = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; explicit devices must exist."""
    text = spec.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise UsageError("device 'mps' requested but Apple MPS is not available here")
        return torch.device("mps")
    match = _CUDA.match(text)
    if match:
        if not torch.cuda.is_available():
            raise UsageError(f"device '{spec}' requested but CUDA is not available here")
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise UsageError(
                f"device '{spec}' requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
        return torch.device("cuda", index)
    raise UsageError(f"unknown device '{spec}': use auto, cpu, cuda, cuda:N or mps")


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """The autocast context for ``precision`` on ``device`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type not in ("cuda", "mps"):
        raise UsageError("--precision fp16 needs a CUDA (or MPS) device; on CPU use bf16")
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (where bf16 autocast is a speed-up)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = torch.cpu
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 where it is native (see :func:`native_bf16`), else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"
