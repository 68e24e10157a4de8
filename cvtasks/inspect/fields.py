"""Receptive-field arithmetic, traced through a real forward pass.

A :class:`ReceptiveFieldMode` watches every torch function call and tags each output tensor
with the receptive field of its units along each spatial axis: ``size`` (pixels of the
input one unit sees), ``jump`` (input pixels between neighbouring units, the product of
strides) and ``start`` (input coordinate of the first unit's centre). Convolutions and
poolings apply the textbook rules

    size_out = size_in + (k - 1) * dilation * jump_in
    jump_out = jump_in * stride
    start_out = start_in + ((k - 1) / 2 * dilation - padding) * jump_in

element-wise ops and concatenations take the largest field of their inputs (a branching
network's unit sees the union of its paths), and ops that mix all positions (global pooling,
flattening, attention) make the field ``global``. Works on meta tensors: no arithmetic runs.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


@dataclass(frozen=True)
class Axis:
    """The receptive field along one axis."""

    size: float
    jump: float
    start: float


Field = tuple[Axis, Axis] | None  # None: every unit sees the whole input ("global")
INPUT_FIELD: Field = (Axis(1.0, 1.0, 0.0), Axis(1.0, 1.0, 0.0))

_CONV = {"conv1d", "conv2d", "conv3d"}
_MAX_POOL = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "boolean_dispatch"}
_AVG_POOL = {"avg_pool2d"}
_ADAPTIVE = {
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "_adaptive_max_pool2d",
    "adaptive_max_pool2d_with_indices",
}
_PAD = {"pad", "_pad"}
_RESIZE = {"interpolate", "upsample", "upsample_bilinear", "upsample_nearest"}


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    values = tuple(int(v) for v in value)
    return (values[0], values[0]) if len(values) == 1 else (values[-2], values[-1])


def _arg(args: Sequence[Any], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def _window(
    field: Field,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> Field:
    if field is None:
        return None
    return tuple(  # type: ignore[return-value]
        Axis(
            size=axis.size + (k - 1) * d * axis.jump,
            jump=axis.jump * s,
            start=axis.start + ((k - 1) / 2 * d - p) * axis.jump,
        )
        for axis, k, s, p, d in zip(field, kernel, stride, padding, dilation, strict=True)
    )


class ReceptiveFieldMode(TorchFunctionMode):
    """Tag tensors with their receptive fields during a forward pass (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self._fields: dict[int, Field] = {}  # by id(tensor); entries leave with their tensor

    def _store(self, tensor: torch.Tensor, field: Field) -> None:
        key = id(tensor)
        if key not in self._fields:
            weakref.finalize(tensor, self._fields.pop, key, None)
        self._fields[key] = field

    def _known(self, tensor: torch.Tensor) -> bool:
        return id(tensor) in self._fields

    def mark_input(self, tensor: torch.Tensor) -> None:
        self._store(tensor, INPUT_FIELD)

    def field_of(self, tensor: torch.Tensor) -> tuple[bool, Field]:
        """(known, field) for a tensor seen during the forward pass."""
        if self._known(tensor):
            return True, self._fields[id(tensor)]
        return False, None

    def __torch_function__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        with contextlib.suppress(TypeError, ValueError, IndexError):  # odd signature: untagged
            self._propagate(getattr(func, "__name__", ""), args, kwargs, out)
        return out

    def _set(self, out: Any, field: Field) -> None:
        for tensor in _tensors(out):
            self._store(tensor, field)
            break  # the first output (max_pool's indices are not features)

    def _propagate(self, name: str, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> None:
        inputs = [t for t in _tensors(list(args) + list(kwargs.values())) if self._known(t)]
        if not inputs or not isinstance(out, (torch.Tensor, tuple, list)):
            return
        source = inputs[0]
        field = self._fields[id(source)]
        if name in _CONV:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            kernel = tuple(int(k) for k in weight.shape[-2:])
            padding = _arg(args, kwargs, 4, "padding", 0)
            dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
            if padding == "same":
                padding = tuple((k - 1) * d // 2 for k, d in zip(kernel, dilation, strict=True))
            elif padding == "valid":
                padding = 0
            stride = _pair(_arg(args, kwargs, 3, "stride", 1))
            self._set(out, _window(field, kernel, stride, _pair(padding), dilation))  # type: ignore[arg-type]
        elif name in _MAX_POOL or name in _AVG_POOL:
            kernel = _pair(_arg(args, kwargs, 1, "kernel_size", 1))
            stride_value = _arg(args, kwargs, 2, "stride", None)
            stride = kernel if stride_value in (None, [], ()) else _pair(stride_value)
            padding = _pair(_arg(args, kwargs, 3, "padding", 0))
            dilation = _pair(_arg(args, kwargs, 4, "dilation", 1)) if name in _MAX_POOL else (1, 1)
            self._set(out, _window(field, kernel, stride, padding, dilation))
        elif name in _ADAPTIVE:
            first = next(_tensors(out))
            in_h, in_w = source.shape[-2:]
            out_h, out_w = first.shape[-2:]
            if out_h == 1 and out_w == 1:
                self._set(out, None)
            else:  # a fixed grid: windows of about in/out pixels
                kernel = (-(-in_h // out_h), -(-in_w // out_w))
                stride = (max(1, in_h // out_h), max(1, in_w // out_w))
                self._set(out, _window(field, kernel, stride, (0, 0), (1, 1)))
        elif name in _PAD and field is not None:
            pads = list(_arg(args, kwargs, 1, "pad", ()))
            padded = [*pads, 0, 0, 0, 0]
            left, top = padded[0], padded[2]
            h, w = field
            self._set(
                out,
                (
                    Axis(h.size, h.jump, h.start - top * h.jump),
                    Axis(w.size, w.jump, w.start - left * w.jump),
                ),
            )
        else:
            self._set(out, self._merge(inputs, out))

    def _merge(self, inputs: list[torch.Tensor], out: Any) -> Field:
        """Element-wise and shape-keeping ops: the widest field among same-sized inputs."""
        first = next(_tensors(out), None)
        fields = [self._fields[id(t)] for t in inputs]
        if first is None or any(f is None for f in fields) or first.dim() < 3:
            return None
        matching: list[tuple[Axis, Axis]] = []
        for t in inputs:
            candidate = self._fields[id(t)]
            if candidate is not None and t.dim() >= 3 and t.shape[-2:] == first.shape[-2:]:
                matching.append(candidate)
        if not matching:
            return None
        return max(matching, key=lambda f: f[0].size * f[1].size)
