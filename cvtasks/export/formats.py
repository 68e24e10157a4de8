"""Writing an :class:`~cvtasks.export.plan.ExportPlan` in each format, with the metadata inside.

- onnx: ``torch.onnx.export``; by default through torch.export (the "dynamo" exporter), for
  torchvision's detectors through TorchScript tracing (their NMS is data-dependent);
- openvino: that ONNX graph converted by OpenVINO's own converter, saved as IR in float32
  (``compress_to_fp16=False``: the IR's weights are the model's);
- exported-program: ``torch.export.export`` saved as .pt2;
- torchscript: ``torch.jit.trace`` (``torch.jit.script`` for detectors).

A failure says what the format cannot hold, naming the operator where the exporter does."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from cvtasks.errors import UsageError
from cvtasks.export.metadata import EXTRA, KEY, missing_runtime
from cvtasks.export.plan import ExportPlan

_OPERATOR = re.compile(
    r"operator '?([\w:.]+)'?|ONNX export of (\w+)|(torchvision::\w+|aten::[\w.]+)"
)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters print progress, warnings and, on failure, whole graphs (from C++, on the
    process's stdout and stderr); cvtasks says what matters itself."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with (
        tempfile.TemporaryFile() as sink,
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            logging.disable(logging.NOTSET)


def _failure(fmt: str, model: str, exc: BaseException) -> UsageError:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = _OPERATOR.search(text)
    operator = next((g for g in found.groups() if g), None) if found else None
    reason = next((ln for ln in lines if "operator" in ln.lower()), lines[0] if lines else "")
    hint = {
        "exported-program": "torch.export cannot capture its data-dependent control flow; use "
        "-f onnx or -f torchscript",
        "onnx": "try another --opset, or -f torchscript / exported-program",
    }.get(fmt, "try another format")
    named = f" (operator {operator})" if operator else ""
    return UsageError(
        f"{model} cannot be exported as {fmt}{named}: {type(exc).__name__}: {reason[:400]}; {hint}"
    )


def _dynamic_shapes(plan: ExportPlan) -> tuple[dict[int, Any], ...]:
    """torch.export's dynamic dimensions of each input, from the plan's named axes."""
    return tuple(
        {axis: torch.export.Dim.DYNAMIC for axis in plan.dynamic.get(name, {})}
        for name in plan.input_names
    )


def write_onnx(plan: ExportPlan, path: Path, opset: int, text: str, model: str) -> None:
    """The ONNX graph with the metadata in its ``metadata_props``."""
    try:
        import onnx
    except ImportError:
        raise missing_runtime("onnx", "onnx") from None
    try:
        with _quiet():
            if plan.graph == "dynamo":
                torch.onnx.export(
                    plan.module, plan.example, str(path), dynamo=True, opset_version=opset,
                    input_names=plan.input_names, output_names=plan.output_names,
                    dynamic_shapes=_dynamic_shapes(plan), external_data=False,
                )  # fmt: skip
            else:
                torch.onnx.export(
                    plan.module, plan.example, str(path), dynamo=False, opset_version=opset,
                    input_names=plan.input_names, output_names=plan.output_names,
                    dynamic_axes=plan.dynamic, do_constant_folding=True,
                )  # fmt: skip
    except ImportError as exc:
        raise missing_runtime(exc.name or "onnxscript", "onnx") from None
    except Exception as exc:  # the exporters raise many types
        raise _failure("onnx", model, exc) from None
    set_onnx_metadata(path, text)
    del onnx


def set_onnx_metadata(path: Path, text: str) -> None:
    import onnx

    graph = onnx.load(str(path))
    kept = [p for p in graph.metadata_props if p.key != KEY]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    graph.metadata_props.add(key=KEY, value=text)
    onnx.save(graph, str(path))


def write_openvino(onnx_path: Path, path: Path, text: str, model: str) -> None:
    """OpenVINO IR (``path``: .xml, with its .bin) converted from the ONNX graph."""
    try:
        import openvino
    except ImportError:
        raise missing_runtime("openvino", "openvino") from None
    try:
        with _quiet():
            converted = openvino.convert_model(str(onnx_path))
    except Exception as exc:
        raise _failure("openvino", model, exc) from None
    set_openvino_metadata(converted, path, text)


def set_openvino_metadata(converted: Any, path: Path, text: str) -> None:
    import openvino

    converted.set_rt_info(text, [KEY])
    openvino.save_model(converted, str(path), compress_to_fp16=False)


def write_exported_program(plan: ExportPlan, path: Path, text: str, model: str) -> Any:
    """A .pt2 archive; returns the ExportedProgram (saved again with the final metadata)."""
    try:
        with _quiet():
            program = torch.export.export(
                plan.module, plan.example, dynamic_shapes=_dynamic_shapes(plan)
            )
    except Exception as exc:
        raise _failure("exported-program", model, exc) from None
    torch.export.save(program, str(path), extra_files={EXTRA: text})
    return program


def write_torchscript(plan: ExportPlan, path: Path, text: str, model: str) -> Any:
    """A TorchScript archive; returns the scripted or traced module."""
    try:
        with _quiet():
            if plan.script:
                module = torch.jit.script(plan.module)
            else:
                module = torch.jit.trace(plan.module, plan.example, check_trace=False)
    except Exception as exc:
        raise _failure("torchscript", model, exc) from None
    torch.jit.save(module, str(path), _extra_files={EXTRA: text})
    return module
