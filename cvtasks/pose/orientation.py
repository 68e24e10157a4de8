"""Where a person faces, from 2-D keypoints alone: a geometric estimate, not a 3-D pose.

Yaw is in degrees: 0 faces the camera, 180 turns the back to it, +90 faces the image's right
edge, -90 its left edge.

Body (shoulders and hips): facing the camera puts the left shoulder on the image's right, so
the signed shoulder width ``w = x(left shoulder) - x(right shoulder)`` is positive facing the
camera and negative facing away; its size against the torso length ``h`` (shoulder midpoint to
hip midpoint) gives ``|cos(yaw)| = min(1, |w| / (0.9 h))`` (shoulders are about 0.9 torso
lengths wide). Which side a turned body faces comes from the nose's offset from the shoulder
midpoint, else from which ear is visible (facing the image's right shows the right ear).

Head (nose, eyes, ears): with both ears, ``yaw = atan2(x(nose) - x(ear midpoint), (x(left ear)
- x(right ear)) / 2)`` (a head seen as a circle); with one ear, +-90 by the side of the nose;
both ears but no nose: 180.

A keypoint counts when its score (Keypoint R-CNN's heatmap logit) is at least ``VISIBLE``;
the confidence of an estimate is the mean sigmoid of the scores it used. Missing keypoints give
``null``. Labels: camera (|yaw| <= 45), away (>= 135), right (45 to 135), left (-135 to -45).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

VISIBLE = 0.05  # the same bar as pose's --kpt-conf default (logit); a constant: no output option
SHOULDER_TO_TORSO = 0.9

Keypoints = Mapping[str, Sequence[float]]  # name -> [x, y, score]


def _seen(points: Keypoints, *names: str) -> dict[str, tuple[float, float, float]]:
    found = {}
    for name in names:
        value = points.get(name)
        if value is not None and value[2] >= VISIBLE:
            found[name] = (float(value[0]), float(value[1]), float(value[2]))
    return found


def _confidence(used: Sequence[tuple[float, float, float]]) -> float:
    return round(sum(1 / (1 + math.exp(-s)) for _, _, s in used) / len(used), 4)


def label_of(yaw: float) -> str:
    magnitude = abs(yaw)
    if magnitude <= 45:
        return "camera"
    if magnitude >= 135:
        return "away"
    return "right" if yaw > 0 else "left"


def _estimate(yaw: float, used: Sequence[tuple[float, float, float]]) -> dict[str, Any]:
    yaw = (yaw + 180.0) % 360.0 - 180.0 if yaw != 180.0 else 180.0
    return {"yaw": round(yaw, 1), "facing": label_of(yaw), "confidence": _confidence(used)}


def _side(points: Keypoints, centre_x: float) -> float | None:
    """+1 facing the image's right, -1 its left, from the nose, else from a lone ear."""
    seen = _seen(points, "nose", "left_ear", "right_ear")
    if "nose" in seen and abs(seen["nose"][0] - centre_x) > 1e-6:
        return 1.0 if seen["nose"][0] > centre_x else -1.0
    if "right_ear" in seen and "left_ear" not in seen:
        return 1.0
    if "left_ear" in seen and "right_ear" not in seen:
        return -1.0
    return None


def body_yaw(points: Keypoints) -> dict[str, Any] | None:
    seen = _seen(points, "left_shoulder", "right_shoulder", "left_hip", "right_hip")
    if "left_shoulder" not in seen or "right_shoulder" not in seen:
        return None
    hips = [seen[n] for n in ("left_hip", "right_hip") if n in seen]
    if not hips:
        return None
    ls, rs = seen["left_shoulder"], seen["right_shoulder"]
    mid_x, mid_y = (ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2
    hip_x = sum(h[0] for h in hips) / len(hips)
    hip_y = sum(h[1] for h in hips) / len(hips)
    torso = math.hypot(hip_x - mid_x, hip_y - mid_y)
    if torso < 1e-6:
        return None
    width = ls[0] - rs[0]
    turn = math.degrees(math.acos(min(1.0, abs(width) / (SHOULDER_TO_TORSO * torso))))
    yaw = turn if width >= 0 else 180.0 - turn
    cue = _side(points, mid_x)
    estimate = _estimate((cue or 1.0) * yaw, [ls, rs, *hips])
    if cue is None and 1e-6 < yaw < 180.0 - 1e-6:  # turned, but no cue to which side: +, halved
        estimate["confidence"] = round(estimate["confidence"] / 2, 4)
    return estimate


def head_yaw(points: Keypoints) -> dict[str, Any] | None:
    seen = _seen(points, "nose", "left_eye", "right_eye", "left_ear", "right_ear")
    ears = [seen[n] for n in ("left_ear", "right_ear") if n in seen]
    if "left_ear" in seen and "right_ear" in seen:
        le, re = seen["left_ear"], seen["right_ear"]
        half = (le[0] - re[0]) / 2
        if "nose" in seen:
            offset = seen["nose"][0] - (le[0] + re[0]) / 2
            return _estimate(math.degrees(math.atan2(offset, half)), [le, re, seen["nose"]])
        if half < 0:  # ears swapped and no nose: the back of the head
            return _estimate(180.0, [le, re])
        return None
    if len(ears) == 1 and "nose" in seen:
        ear, nose = ears[0], seen["nose"]
        if abs(nose[0] - ear[0]) < 1e-6:
            return None
        return _estimate(90.0 if nose[0] > ear[0] else -90.0, [ear, nose])
    return None


def orientation(points: Keypoints) -> dict[str, Any]:
    """``{"body": {...} | None, "head": {...} | None}`` for one person."""
    return {"body": body_yaw(points), "head": head_yaw(points)}


def arrow(
    points: Keypoints, yaw: float, length: float
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """A short arrow for drawing: from the shoulder midpoint (or the nose) towards where the
    person faces: sideways by sin(yaw), downwards (towards the viewer) by 0.35 cos(yaw)."""
    seen = _seen(points, "left_shoulder", "right_shoulder", "nose")
    if "left_shoulder" in seen and "right_shoulder" in seen:
        start = ((seen["left_shoulder"][0] + seen["right_shoulder"][0]) / 2,
                 (seen["left_shoulder"][1] + seen["right_shoulder"][1]) / 2)  # fmt: skip
    elif "nose" in seen:
        start = seen["nose"][:2]
    else:
        return None
    radians = math.radians(yaw)
    end = (start[0] + length * math.sin(radians), start[1] + 0.35 * length * math.cos(radians))
    return start, end
