"""The Python API: the same pipeline as the CLI, as a generator of results.

>>> from cvtasks import predict
>>> for frame, result in predict("classify", ["examples/chelsea.jpg"], top_k=3):
...     print(frame.source, result.to_record())
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cvtasks.config import InferenceConfig
from cvtasks.config_build import build_config
from cvtasks.errors import UsageError
from cvtasks.runner import build_engine, collect_inputs, load_predictor
from cvtasks.safe_yaml import load_yaml_file
from cvtasks.tasks.registry import get_task
from cvtasks.types import Frame, Outcome


def predict(
    task: str,
    inputs: str | Path | list[str | Path],
    *,
    config: str | Path | None = None,
    keep_images: bool = False,
    **options: Any,
) -> Iterator[tuple[Frame, Outcome]]:
    """Yield ``(Frame, Result | Failure)`` for every image or video frame, in input order.

    Options are the config keys of the task (``cvtasks config show TASK``); precedence is
    defaults < ``config`` file < keyword options. Nothing is printed or written to disk.
    With ``keep_images=True`` each frame carries its decoded RGB image (``frame.image``).
    """
    spec = get_task(task)
    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    layers: list[tuple[str, dict[str, Any]]] = []
    if config is not None:
        data = load_yaml_file(config)
        data.pop("task", None)
        layers.append((str(config), data))
    layers.append(("predict()", {**options, "inputs": [str(p) for p in paths]}))
    cfg = build_config(spec.config_cls, layers)
    if not isinstance(cfg, InferenceConfig):
        raise UsageError(f"predict() runs a model over inputs; '{task}' does not")
    items = collect_inputs(cfg, spec=spec)
    predictor = load_predictor(spec, cfg)
    yield from build_engine(predictor, items, cfg, keep_images=keep_images, task=spec.name)
