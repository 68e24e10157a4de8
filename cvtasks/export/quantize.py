"""Post-training int8 quantisation of an exported ONNX graph with onnxruntime's static
quantiser (QDQ format, per-channel int8 weights, uint8 activations, MinMax calibration on the
export's check inputs), runnable by onnxruntime and by OpenVINO (which reads QDQ graphs as
int8)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

from cvtasks.errors import UsageError
from cvtasks.export.metadata import missing_runtime
from cvtasks.export.plan import ExportPlan


def quantize_onnx(source: Path, target: Path, plan: ExportPlan) -> None:
    """Quantise ``source`` into ``target``, calibrated on one image at a time."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError:
        raise missing_runtime("onnxruntime", "onnx") from None

    name = plan.input_names[0]
    samples = [batch[i : i + 1].numpy() for (batch, *_) in plan.checks for i in range(len(batch))]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(samples)

        def get_next(self) -> dict[str, Any] | None:
            item = next(self.items, None)
            return None if item is None else {name: item}

    prepared = _prepared(source)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quantize_static(
                str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ,
                per_channel=True, weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax,
            )  # fmt: skip
    except Exception as exc:  # onnxruntime's quantiser raises many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"int8 quantisation failed: {type(exc).__name__}: {first}") from None


def _prepared(source: Path) -> Path:
    """onnxruntime's recommended pre-processing (shape inference, graph optimisation) when it
    succeeds; the graph as it is otherwise."""
    target = source.with_name("prepared.onnx")
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quant_pre_process(str(source), str(target))
        return target
    except Exception:  # an optional step: the quantiser copes without it
        return source
