"""MOTChallenge text files: detections in (det.txt), tracking results out, lines on stdout.

Rows are ``frame,id,x,y,w,h,conf,...`` with 1-based frame numbers and top-left boxes. A
detections file has ``id = -1``; results have the track id and ``-1,-1,-1`` after ``conf``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvtasks.errors import UsageError
from cvtasks.io.sources import natural_key


@dataclass
class FileDetection:
    """One detection read from a file: box ``[x1, y1, x2, y2]``, score, class."""

    box: list[float]
    score: float
    label: str = "object"
    index: int = 0
    keypoints: dict[str, list[float]] | None = None


@dataclass
class DetectionsFile:
    """Detections of one video or sequence, by 0-based frame number."""

    path: Path
    frames: dict[int, list[FileDetection]] = field(default_factory=dict)
    by_source: dict[str, list[FileDetection]] = field(default_factory=dict)  # per-image JSONL
    kind: str = "mot"

    def for_frame(self, number: int, frame_paths: list[str] | None = None) -> list[FileDetection]:
        if number in self.frames:
            return self.frames[number]
        if self.by_source and frame_paths is not None and number < len(frame_paths):
            return self.by_source.get(Path(frame_paths[number]).name, [])
        return []

    @property
    def last_frame(self) -> int:
        return max(self.frames, default=-1)


def _mot_row(line: str, number: int, path: Path) -> tuple[int, FileDetection]:
    parts = [p.strip() for p in line.replace(" ", ",").split(",") if p.strip()]
    if len(parts) < 7:
        raise UsageError(f"{path}:{number}: a MOT row needs frame,id,x,y,w,h,conf (got {line!r})")
    try:
        frame = int(float(parts[0]))
        x, y, w, h, conf = (float(v) for v in parts[2:7])
    except ValueError:
        raise UsageError(f"{path}:{number}: numbers expected, got {line!r}") from None
    if frame < 1:
        raise UsageError(f"{path}:{number}: frame numbers start at 1, got {frame}")
    if w < 0 or h < 0:
        raise UsageError(f"{path}:{number}: negative box size in {line!r}")
    return frame - 1, FileDetection([x, y, x + w, y + h], conf)


def _jsonl_records(path: Path, text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise UsageError(f"{path}:{number}: not a JSON line") from None
        if not isinstance(record, dict) or not isinstance(record.get("predictions"), list):
            raise UsageError(f"{path}:{number}: a cvtasks record with 'predictions' expected")
        yield number, record


def _jsonl_detection(pred: Any, path: Path, number: int) -> FileDetection:
    try:
        x1, y1, x2, y2 = (float(v) for v in pred["box"])
        return FileDetection(
            [x1, y1, x2, y2],
            float(pred["score"]),
            str(pred.get("label", "object")),
            int(pred.get("index", 0)),
            pred.get("keypoints"),
        )
    except (KeyError, TypeError, ValueError):
        raise UsageError(
            f"{path}:{number}: each prediction needs box [x1,y1,x2,y2] and score"
        ) from None


def read_detections(path: str | Path) -> DetectionsFile:
    """A MOTChallenge det.txt or cvtasks detect/pose JSONL (by frame number for videos, by
    file name for a folder of frames); bad rows are usage errors naming the line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --detections {file}: {exc}") from None
    found = DetectionsFile(file)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.lstrip().startswith("{"):
        found.kind = "jsonl"
        frames: dict[int, list[FileDetection]] = defaultdict(list)
        for number, record in _jsonl_records(file, text):
            detections = [_jsonl_detection(p, file, number) for p in record["predictions"]]
            if record.get("frame") is not None:
                frames[int(record["frame"])].extend(detections)
            else:
                found.by_source[Path(str(record.get("source", ""))).name] = detections
        found.frames = dict(frames)
        return found
    rows: dict[int, list[FileDetection]] = defaultdict(list)
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            frame, detection = _mot_row(line, number, file)
            rows[frame].append(detection)
    found.frames = dict(rows)
    return found


def mot_lines(record: dict[str, Any]) -> str:
    """MOTChallenge result rows of one cvtasks track record (frame numbers 1-based)."""
    frame = record.get("frame")
    number = (frame if frame is not None else 0) + 1
    rows = []
    for pred in record.get("predictions") or []:
        if pred.get("track_id") is None:
            continue
        x1, y1, x2, y2 = pred["box"]
        rows.append(
            f"{number},{pred['track_id']},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
            f"{pred['score']:.6f},-1,-1,-1\n"
        )
    return "".join(rows)


def sorted_frames(paths: Iterable[str]) -> list[str]:
    return sorted(paths, key=natural_key)
