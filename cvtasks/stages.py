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

    def __init__(self, items: list[InputItem]) -> None:
        self.items = items  # what the engine should process (with --resume: what is left)
        self.predictor: Any = None  # set once the model is loaded
        self.failures = 0  # inputs failed by the stage (not by the engine)

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
