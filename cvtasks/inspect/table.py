"""`cvtasks inspect`: the layer table of a model, built from one forward pass on meta tensors.

Every executed leaf module (a module none of whose children ran during its call, so an
attention block that applies its weights functionally is one row) gets: kernel, stride,
padding, output shape, receptive field and jump, parameters and multiply-accumulates.
Totals come from PyTorch's FLOP counter (aten level, so attention matmuls count too; the
fused multi-head-attention fast path is switched off while counting, because the counter
cannot see inside it). MACs are what torchvision's ``meta["_ops"]`` calls GFLOPs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cvtasks.inspect.fields import Field, ReceptiveFieldMode

_WINDOWED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class LayerRow:
    """One executed layer."""

    name: str
    type: str
    kernel: str = ""
    stride: str = ""
    padding: str = ""
    output: str = ""  # C x H x W (or the output shape without the batch dimension)
    rf: str = ""  # receptive field "size" or "global"
    jump: str = ""
    params: int = 0
    macs: int = 0
    note: str = ""


@dataclass
class ModelTable:
    """The whole table and its totals."""

    model: str
    input_size: int
    rows: list[LayerRow]
    total_params: int
    total_macs: int
    other_macs: int  # MACs outside the listed rows (functional matmuls, e.g. attention)
    notes: list[str] = field(default_factory=list)

    @property
    def gmacs(self) -> float:
        return self.total_macs / 1e9

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_size": self.input_size,
            "total_params": self.total_params,
            "total_gmacs": round(self.gmacs, 6),
            "other_macs": self.other_macs,
            "layers": [asdict(r) for r in self.rows],
        }


@contextlib.contextmanager
def meta_parameters() -> Iterator[None]:
    """Build modules with parameters and buffers on the meta device (no memory, no init cost);
    unlike ``with torch.device("meta")`` this lets builders compute plain tensors (RegNet)."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register_parameter(self, name, param)
        if param is not None:
            self._parameters[name] = nn.Parameter(
                param.to("meta"), requires_grad=param.requires_grad
            )

    def buffer(
        self: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True
    ) -> None:
        register_buffer(self, name, tensor.to("meta") if tensor is not None else None, persistent)

    nn.Module.register_parameter = parameter  # type: ignore[method-assign]
    nn.Module.register_buffer = buffer  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]


def _fmt_pair(value: Any) -> str:
    if isinstance(value, str):
        return value
    values = (value,) if isinstance(value, int) else tuple(value)
    return str(values[0]) if len(set(values)) == 1 else "x".join(str(v) for v in values)


def _fmt_field(field_: Field) -> tuple[str, str]:
    if field_ is None:
        return "global", ""
    h, w = field_
    size = f"{h.size:g}" if h.size == w.size else f"{h.size:g}x{w.size:g}"
    jump = f"{h.jump:g}" if h.jump == w.jump else f"{h.jump:g}x{w.jump:g}"
    return size, jump


def fit_note(module: nn.Module, in_h: int, in_w: int) -> str:
    """The lecture's check: does (N - F + 2P) / S + 1 come out whole? PyTorch floors silently."""
    if not isinstance(module, _WINDOWED) or isinstance(module.padding, str):
        return ""
    k = (
        (module.kernel_size,) * 2
        if isinstance(module.kernel_size, int)
        else tuple(module.kernel_size)
    )
    s = (module.stride,) * 2 if isinstance(module.stride, int) else tuple(module.stride or k)
    p = (module.padding,) * 2 if isinstance(module.padding, int) else tuple(module.padding)
    d_raw = getattr(module, "dilation", 1)
    d = (d_raw,) * 2 if isinstance(d_raw, int) else tuple(d_raw)
    notes = []
    for axis, n, kk, ss, pp, dd in zip(
        "HW", (in_h, in_w), k[-2:], s[-2:], p[-2:], d[-2:], strict=True
    ):
        span = n + 2 * pp - dd * (kk - 1) - 1
        if span % ss:
            ceil = getattr(module, "ceil_mode", False)
            notes.append(
                f"{axis}: ({n}-{kk}+2*{pp})/{ss}+1={span / ss + 1:g} "
                + ("(ceil_mode pads)" if ceil else f"does not fit, last {span % ss} px unused")
            )
    return "; ".join(notes)


def inspect_model(model: nn.Module, name: str, input_size: int, channels: int = 3) -> ModelTable:
    """Run one forward pass on meta tensors and build the layer table."""
    model = model.eval()
    rows: list[LayerRow] = []
    stack: list[list[bool]] = []  # per active module: did a child run?
    seen_params: set[int] = set()
    inputs: dict[int, tuple[int, ...]] = {}
    rf_mode = ReceptiveFieldMode()
    names = {id(m): n for n, m in model.named_modules()}
    root_class = type(model).__name__

    def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        if stack:
            stack[-1][0] = True
        stack.append([False])
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if first is not None:
            inputs[id(module)] = tuple(first.shape)

    def post_hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        had_child = stack.pop()[0]
        if had_child or module is model:
            return
        out = (
            output
            if isinstance(output, torch.Tensor)
            else next(
                (
                    o
                    for o in (output if isinstance(output, (tuple, list)) else ())
                    if isinstance(o, torch.Tensor)
                ),
                None,
            )
        )
        row = LayerRow(name=names.get(id(module), "?"), type=type(module).__name__)
        for attr, key in (("kernel_size", "kernel"), ("stride", "stride"), ("padding", "padding")):
            if isinstance(module, _WINDOWED) and hasattr(module, attr):
                setattr(row, key, _fmt_pair(getattr(module, attr)))
        if out is not None:
            row.output = "x".join(str(v) for v in out.shape[1:])
            known, field_ = rf_mode.field_of(out)
            if known:
                row.rf, row.jump = _fmt_field(field_)
        if id(module) not in seen_params:
            seen_params.add(id(module))
            row.params = sum(p.numel() for p in module.parameters())
        shape = inputs.get(id(module))
        if shape is not None and len(shape) == 4:
            row.note = fit_note(module, shape[2], shape[3])
        rows.append(row)

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    device = next(model.parameters()).device
    x = torch.zeros(1, channels, input_size, input_size, device=device)
    counter = FlopCounterMode(display=False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), counter:
            rf_mode.mark_input(x)
            with rf_mode:
                model(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for handle in handles:
            handle.remove()
    counts = counter.get_flop_counts()
    counted: set[str] = set()
    for row in rows:  # a module run twice gets all its MACs on its first row
        if row.name not in counted:
            counted.add(row.name)
            row.macs = sum(counts.get(f"{root_class}.{row.name}", {}).values()) // 2
    total = counter.get_total_flops() // 2
    return ModelTable(
        model=name,
        input_size=input_size,
        rows=rows,
        total_params=sum(p.numel() for p in model.parameters()),
        total_macs=total,
        other_macs=total - sum(r.macs for r in rows),
    )
