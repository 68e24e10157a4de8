"""Consumers of ``(Frame, Result | Failure)``: stdout formats and the ``--out`` folder.

Sinks never touch models. Files under ``--out`` are written atomically, except the JSONL
logs, which grow one complete line at a time so that ``--resume`` can pick up after a stop.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from PIL import Image

from cvtasks.io.atomic import atomic_write, safe_join
from cvtasks.io.coco import CocoResults
from cvtasks.io.video_out import VideoOut, output_rate
from cvtasks.types import Failure, Frame, Outcome, Result, make_error_record, result_artifacts

RESULTS_FILE = "results.jsonl"
ERRORS_FILE = "errors.jsonl"
CONFIG_FILE = "config.yaml"
INPUTS_FILE = ".cvtasks.inputs.jsonl"  # size and mtime of each processed input (--resume)
_PIL_FORMATS = {  # annotated images keep these input formats; others become PNG
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def dumps(record: dict[str, Any]) -> str:
    """One JSON line; lone surrogates from undecodable file names are escaped, not fatal."""
    return (
        json.dumps(record, ensure_ascii=False, allow_nan=False)
        .encode("utf-8", "backslashreplace")
        .decode("utf-8")
    )


# --------------------------------------------------------------------------- stdout


_BOX_KEYS = frozenset({"box", "crop", "min_box"})  # [x1, y1, x2, y2] in pixels
_JSON_KEYS = frozenset({"mask", "polygons"})  # masks stay one JSON cell
_CORNERS = ("x1", "y1", "x2", "y2")


def _flatten(key: str, value: Any, row: dict[str, Any], prefix: str = "") -> None:
    """Spread one value over CSV columns: boxes as x1,y1,x2,y2, keypoints as name_x, name_y,
    name_score, mappings as prefix_key, masks (and other lists) as JSON."""
    name = f"{prefix}{key}"
    if (key in _JSON_KEYS and not prefix) or (isinstance(value, list) and key not in _BOX_KEYS):
        row[name] = json.dumps(value)
    elif key in _BOX_KEYS and isinstance(value, list) and len(value) == 4:
        box_prefix = "" if key == "box" else f"{name}_"
        row.update({f"{box_prefix}{c}": v for c, v in zip(_CORNERS, value, strict=True)})
    elif key == "keypoints" and isinstance(value, dict):
        for point, (x, y, score) in value.items():
            row.update({f"{point}_x": x, f"{point}_y": y, f"{point}_score": score})
    elif isinstance(value, dict):
        for inner, item in value.items():
            _flatten(str(inner), item, row, f"{name}_")
    else:
        row[name] = value


def _flat(mapping: dict[str, Any], skip: str = "") -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in mapping.items():
        if key != skip:
            _flatten(key, value, row)
    return row


def flatten_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """CSV rows for a record: one per prediction (with its rank), one column per number."""
    base = _flat(record, skip="predictions")
    predictions = record.get("predictions") or []
    if not predictions:
        return [base]
    return [{**base, "rank": rank, **_flat(pred)} for rank, pred in enumerate(predictions, start=1)]


class StdoutSink:
    """Writes results to stdout as jsonl (streamed), json, csv (streamed) or a console table."""

    def __init__(self, fmt: str, task: str, model: str, stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.task = task
        self.model = model
        self.stream = stream if stream is not None else sys.stdout
        self.closed = False  # the reader went away (broken pipe)
        self._records: list[dict[str, Any]] = []
        self._fields: list[str] | None = None
        self._pending: list[dict[str, Any]] = []
        self._csv_header_done = False
        self._coco = CocoResults()

    def write(self, frame: Frame, outcome: Outcome, record: dict[str, Any] | None) -> None:
        if self.closed or record is None or isinstance(outcome, Failure) or frame.resumed:
            return
        if self.fmt == "jsonl":
            self._emit(dumps(record) + "\n")
        elif self.fmt == "csv":
            self._write_csv(record)
        elif self.fmt == "coco":
            self._coco.add(record)
        elif self.fmt == "mot":
            from cvtasks.io.mot import mot_lines

            self._emit(mot_lines(record))
        else:
            self._records.append(dict(record, _summary=outcome.summary()))

    def _write_csv(self, record: dict[str, Any]) -> None:
        """Stream CSV rows; the header waits for the first record that has predictions."""
        self._pending.extend(flatten_rows(record))
        if self._fields is None and record.get("predictions"):
            self._fields = list(self._pending[-1].keys())
        if self._fields is not None:
            self._flush_csv(self._fields)

    def _flush_csv(self, fields: list[str]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
        if not self._csv_header_done:
            writer.writeheader()
            self._csv_header_done = True
        writer.writerows(self._pending)
        self._pending.clear()
        self._emit(buffer.getvalue())

    def _emit(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self._on_broken_pipe()

    def _on_broken_pipe(self) -> None:
        """The reader closed the pipe (``| head``): stop writing and silence the final flush."""
        self.closed = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def close(self) -> None:
        if self.closed:
            return
        if self.fmt == "csv" and self._pending:
            self._flush_csv(self._fields or list(self._pending[0].keys()))
        elif self.fmt == "json":
            for record in self._records:
                record.pop("_summary", None)
            self._emit(json.dumps(self._records, indent=2, ensure_ascii=False) + "\n")
        elif self.fmt == "coco":
            self._emit(json.dumps(self._coco.to_json(), ensure_ascii=False) + "\n")
        elif self.fmt == "table":
            self._print_table()

    def abort(self) -> None:
        self._records.clear()

    def _print_table(self) -> None:
        from rich.console import Console
        from rich.table import Table

        show_frame = any(r["frame"] is not None for r in self._records)
        title = f"{self.task} · {self.model}"  # printed above, never wrapped mid-word
        table = Table()
        table.add_column("source", overflow="fold")
        if show_frame:
            table.add_column("frame", justify="right")
        table.add_column("size", justify="right")
        table.add_column("result")
        for r in self._records:
            cells = [r["source"]] + ([str(r["frame"])] if show_frame else [])
            table.add_row(*cells, f"{r['width']}x{r['height']}", r["_summary"])
        try:
            console = Console(file=self.stream, soft_wrap=False)
            console.print(title, style="italic", highlight=False, soft_wrap=True)
            console.print(table)
            self.stream.flush()
        except BrokenPipeError:
            self._on_broken_pipe()


# --------------------------------------------------------------------------- --out folder


class OutDirSink:
    """results.jsonl, errors.jsonl and annotated images/videos under ``--out``."""

    def __init__(self, out: Path, *, save_images: bool, append: bool, vid_stride: int = 1) -> None:
        self.out = out
        self.save_images = save_images
        self.vid_stride = vid_stride
        out.mkdir(parents=True, exist_ok=True)
        mode = "a" if append else "w"
        self._results = (out / RESULTS_FILE).open(mode, encoding="utf-8")
        # Failed inputs are retried on --resume, so errors.jsonl always starts afresh.
        self._errors = (out / ERRORS_FILE).open("w", encoding="utf-8")
        self._inputs = (out / INPUTS_FILE).open(mode, encoding="utf-8")
        self._stamped: set[str] = set()
        self._video: VideoOut | None = None

    def save_files(self, frame: Frame, result: Result) -> dict[str, str]:
        """Write the result's artifacts (and the annotated image/video); return their paths."""
        files: dict[str, str] = {}
        for artifact in result_artifacts(result):
            rel = artifact_rel(frame, artifact.folder, artifact.suffix)
            atomic_write(safe_join(self.out, rel), artifact.write)
            files[artifact.key] = rel
        if self.save_images and frame.image is not None:
            files["annotated"] = self._save_annotated(frame, result)
        return files

    def write(self, frame: Frame, outcome: Outcome, record: dict[str, Any] | None) -> None:
        if isinstance(outcome, Failure):
            self._errors.write(dumps(make_error_record(frame, outcome)) + "\n")
            self._errors.flush()
            return
        if record is not None and not frame.resumed:
            if frame.source not in self._stamped:  # before its first result: --resume checks it
                self._stamped.add(frame.source)
                stamp = input_stamp(frame.source)
                if stamp is not None:
                    self._inputs.write(dumps({"source": frame.source, **stamp}) + "\n")
                    self._inputs.flush()
            self._results.write(dumps(record) + "\n")
            self._results.flush()

    def _save_annotated(self, frame: Frame, result: Result) -> str:
        assert frame.image is not None
        annotated = result.annotate(frame.image)
        if frame.index is None:
            self._finish_video()
            rel = annotated_image_rel(frame.rel)
            target = safe_join(self.out, rel)
            fmt = _PIL_FORMATS[target.suffix.lower()]
            options = {"quality": 95} if fmt == "JPEG" else {}
            atomic_write(
                target, lambda tmp: Image.fromarray(annotated).save(tmp, format=fmt, **options)
            )
            return rel
        rel = annotated_video_rel(frame.rel)
        if self._video is None or self._video.source != frame.source:
            self._finish_video()
            rate = output_rate(frame.fps, self.vid_stride)
            self._video = VideoOut(frame.source, safe_join(self.out, rel), rate)
        self._video.write(annotated)
        return rel

    def _finish_video(self) -> None:
        if self._video is not None:
            self._video.finish()
            self._video = None

    def close(self) -> None:
        self._finish_video()
        for handle in (self._results, self._errors, self._inputs):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()

    def abort(self) -> None:
        """Interrupted: keep complete JSONL lines, drop any half-written video."""
        if self._video is not None:
            self._video.discard()
            self._video = None
        for handle in (self._results, self._errors, self._inputs):
            with contextlib.suppress(OSError):  # a full disk must not hide the first error
                handle.close()


def input_stamp(source: str) -> dict[str, int] | None:
    """Size and modification time of an input file (None if it cannot be read)."""
    try:
        info = os.stat(source)
    except OSError:
        return None
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def artifact_rel(frame: Frame, folder: str, suffix: str) -> str:
    """Where an artifact of ``frame`` goes, relative to ``--out``."""
    base = PurePosixPath(folder) / PurePosixPath(frame.rel)
    if frame.index is None:
        return base.with_suffix(suffix).as_posix()
    return (base.with_suffix("") / f"{frame.index:06d}{suffix}").as_posix()


def annotated_image_rel(rel: str) -> str:
    """Annotated image path for an input: same relative path, PNG if the format is unusual."""
    path = PurePosixPath(rel)
    return rel if path.suffix.lower() in _PIL_FORMATS else path.with_suffix(".png").as_posix()


def annotated_video_rel(rel: str) -> str:
    """Annotated video path for an input video: same relative path, always ``.mp4``."""
    return PurePosixPath(rel).with_suffix(".mp4").as_posix()
