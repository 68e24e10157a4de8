"""Light data types shared by the engine, tasks and sinks (no torch here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class Frame:
    """One image, or one frame of a video, as it flows from a source to the sinks."""

    source: str  # the input path as given, or as found in a folder
    index: int | None  # video frame number (0-based), None for still images
    width: int = 0  # original (upright) size in pixels; 0 when decoding failed
    height: int = 0
    rel: str = ""  # output path relative to --out, mirroring the input
    image: np.ndarray | None = None  # RGB uint8 HxWx3, kept only when annotating
    fps: float | None = None  # video frames: frames per second of the source
    resumed: bool = False  # already in results.jsonl: re-rendered, not re-recorded
    dropped: int = 0  # live sources: frames dropped so far (inference fell behind)

    @property
    def key(self) -> tuple[str, int | None]:
        """Identity of this frame in results.jsonl (used by --resume)."""
        return (self.source, self.index)


@runtime_checkable
class Result(Protocol):
    """What every task's result dataclass provides."""

    def to_record(self) -> dict[str, Any]:
        """Task-specific fields of the JSON record (e.g. ``predictions``)."""
        ...

    def summary(self) -> str:
        """One short line for the console table."""
        ...

    def annotate(self, image: np.ndarray) -> np.ndarray:
        """Draw this result on an RGB uint8 image and return the annotated copy."""
        ...


@dataclass(frozen=True)
class Artifact:
    """A file a result writes under ``--out`` (a mask, a label file), named in its record.

    It lands at ``<out>/<folder>/<input path, extension replaced by suffix>``; for a video
    frame at ``<out>/<folder>/<video path without extension>/<frame:06d><suffix>``.
    """

    key: str  # the name in the record's "files" mapping, e.g. "mask"
    folder: str
    suffix: str
    write: Callable[[Path], None]


def result_artifacts(result: Result) -> list[Artifact]:
    """The files a result wants written (results without an ``artifacts`` method have none)."""
    method = getattr(result, "artifacts", None)
    return list(method()) if method is not None else []


@dataclass
class Failure:
    """An input (or frame) that could not be processed, with a one-line reason."""

    error: str


Outcome = Result | Failure


def make_record(
    frame: Frame, task: str, model: str, result: Result, files: dict[str, str] | None = None
) -> dict[str, Any]:
    """The JSON record of one processed frame (CONVENTIONS.md field order).

    ``files`` maps names to paths relative to ``--out`` of what was written for this frame.
    """
    record: dict[str, Any] = {
        "source": frame.source,
        "frame": frame.index,
        "task": task,
        "model": model,
        "width": frame.width,
        "height": frame.height,
    }
    record.update(result.to_record())
    if files:
        record["files"] = files
    return record


def make_error_record(frame: Frame, failure: Failure) -> dict[str, Any]:
    """The JSON record of a failed input, as written to errors.jsonl."""
    return {"source": frame.source, "frame": frame.index, "error": failure.error}
