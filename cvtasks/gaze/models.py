"""The gaze models `cvtasks gaze` knows (checkpoints are files: see its --weights)."""

from __future__ import annotations


def gaze_models() -> list[str]:
    return ["l2cs"]
