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

from cvtasks.inspect.fields import ReceptiveFieldMode

_WINDOWED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool2d, nn.AvgPool2d)


Size = int | float | list[int | float]  # one number when height and width agree, else [h, w]


@dataclass
class LayerRow:
    """One executed layer. Numbers are numbers; ``None`` where a value does not apply."""

    name: str
    type: str
    kernel: Size | None = None
    stride: Size | None = None
    padding: Size | str | None = None  # "same"/"valid" for string paddings
    output: list[int] | None = None  # C, H, W (the output shape without the batch dimension)
    rf: Size | None = None  # receptive field in input pixels; None when global or unknown
    global_: bool = False  # every output unit sees the whole input (after global pooling)
    jump: Size | None = None
    params: int = 0
    macs: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row for JSON: ``global_`` is written as ``global``."""
        data = asdict(self)
        data["global"] = data.pop("global_")
        return {k: data[k] for k in ROW_KEYS}

    def text(self, key: str) -> str:
        """One cell as people read it: ``3``, ``1x7``, ``512x14x14``, ``global``."""
        if key == "rf" and self.global_:
            return "global"
        value = self.to_dict()[key]
        if value is None:
            return ""
        if isinstance(value, list):
            return "x".join(_number(v) for v in value)
        return _number(value) if isinstance(value, (int, float)) else str(value)


ROW_KEYS = (
    "name", "type", "kernel", "stride", "padding", "output", "rf", "global", "jump",
    "params", "macs", "note",
)  # fmt: skip


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


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
            "layers": [r.to_dict() for r in self.rows],
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


def _pair(value: Any) -> Size | str:
    """A module's kernel/stride/padding: one number when all sides agree, else a list."""
    if isinstance(value, str):
        return value
    values = [value] if isinstance(value, int) else list(value)
    return values[0] if len(set(values)) == 1 else values


def _integral(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _size(h: float, w: float) -> Size:
    return _integral(h) if h == w else [_integral(h), _integral(w)]


def fit_note(module: nn.Module, in_h: int, in_w: int) -> str | None:
    """The lecture's check: does (N - F + 2P) / S + 1 come out whole? PyTorch floors silently."""
    if not isinstance(module, _WINDOWED) or isinstance(module.padding, str):
        return None
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
    return "; ".join(notes) or None


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
                setattr(row, key, _pair(getattr(module, attr)))
        if out is not None:
            row.output = [int(v) for v in out.shape[1:]]
            known, field_ = rf_mode.field_of(out)
            if known and field_ is None:
                row.global_ = True
            elif known and field_ is not None:
                h, w = field_
                row.rf, row.jump = _size(h.size, w.size), _size(h.jump, w.jump)
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
