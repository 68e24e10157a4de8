"""Stages run after the predictor, over the engine's ``(Frame, Result)`` stream, in order:
tracking, per-video verdicts, evaluation. A stage may add records, write files through its own
sinks, print a closing report, and fail inputs (which counts in the exit code)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cvtasks.io.sources import InputItem
from cvtasks.types import Frame, Outcome


class Stage:
    """The default stage does nothing; subclasses override what they need."""

    needs_images = False  # the stage looks at the frames themselves (BoT-SORT's CMC)
    prints_records = True  # False: stdout carries the stage's report instead of records
    # --resume: a stage that resumed in its factory (tracking, eval explain) says so; for the
    # others the runner goes by source (:func:`cvtasks.io.resume.resume_by_source`): "source"
    # skips what is finished, "rerun" runs every input again (the stage needs them all)
    resumed_itself = False
    resume_by = "rerun"

    def __init__(self, items: list[InputItem]) -> None:
        self.items = items  # what the engine should process (with --resume: what is left)
        self.predictor: Any = None  # set once the model is loaded
        self.failures = 0  # inputs failed by the stage (not by the engine)

    def finished(self, item: InputItem, records: list[dict[str, Any]]) -> bool:
        """Whether an earlier run's ``records`` of ``item`` are all it gives (``resume_by``
        "source"): a still image's one record; a video's only when the stage says so."""
        return item.kind == "image" and bool(records)

    def run(self, pairs: Iterator[tuple[Frame, Outcome]]) -> Iterator[tuple[Frame, Outcome]]:
        yield from pairs

    def sinks(self) -> list[Any]:
        """Extra sinks (files the stage writes under --out)."""
        return []

    def finish(self) -> list[str]:
        """After the last input (or an interruption): lines for stderr."""
        return []

    def report(self, fmt: str) -> str | None:
        """Text for stdout after the run (a stage that does not print records)."""
        return None
