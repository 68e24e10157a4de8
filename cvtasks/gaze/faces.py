"""Face boxes: from a person's face keypoints (the rule below), or from a faces file.

Rule (Keypoint R-CNN's COCO keypoints): the nose and both eyes must be visible (score >=
``VISIBLE``). The face is ``w = max(2.2 x eye distance, ear distance)`` wide (faces are about
2.2 eye distances wide, ear to ear when both ears show) and ``1.3 w`` high, centred on the
eye midpoint horizontally, with the eyes 40 % down from its top. The gaze is drawn from the
eye midpoint."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvtasks.errors import UsageError
from cvtasks.pose.orientation import VISIBLE


@dataclass
class Face:
    """A face box ``[x1, y1, x2, y2]``, its score, and where its eyes are (for drawing)."""

    box: list[float]
    score: float
    eyes: tuple[float, float]


def face_from_keypoints(points: Mapping[str, Sequence[float]], score: float) -> Face | None:
    """The face box of one person (None without the nose and both eyes)."""
    seen = {n: p for n, p in points.items() if p[2] >= VISIBLE}
    if not all(n in seen for n in ("nose", "left_eye", "right_eye")):
        return None
    le, re = seen["left_eye"], seen["right_eye"]
    eye_x, eye_y = (le[0] + re[0]) / 2, (le[1] + re[1]) / 2
    width = 2.2 * math.dist(le[:2], re[:2])
    if "left_ear" in seen and "right_ear" in seen:
        width = max(width, math.dist(seen["left_ear"][:2], seen["right_ear"][:2]))
    if width < 2:
        return None
    height = 1.3 * width
    box = [eye_x - width / 2, eye_y - 0.4 * height, eye_x + width / 2, eye_y + 0.6 * height]
    return Face([round(v, 2) for v in box], round(score, 6), (eye_x, eye_y))


def face_from_box(box: Sequence[float], score: float) -> Face:
    """A face from a detector's box: the eyes assumed 40 % down the box, centred."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return Face([x1, y1, x2, y2], score, ((x1 + x2) / 2, y1 + 0.4 * (y2 - y1)))


def read_faces(path: str) -> dict[tuple[str, int | None], list[Face]]:
    """Faces by (source, frame) from detect-style JSONL; also keyed by the source's file name."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --faces {file}: {exc}") from None
    found: dict[tuple[str, int | None], list[Face]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record: Any = json.loads(line)
            faces = [
                face_from_box([float(v) for v in p["box"]], float(p.get("score", 1.0)))
                for p in record["predictions"]
            ]
            key = (str(record["source"]), record.get("frame"))
        except (ValueError, KeyError, TypeError):
            raise UsageError(
                f"{file}:{number}: expected a record with source, frame and predictions[].box"
            ) from None
        for where in {key, (Path(key[0]).name, key[1])}:  # by path, and by file name
            found.setdefault(where, []).extend(faces)
    return found
