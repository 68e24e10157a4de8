"""The models `cvtasks track` accepts: detectors, keypoint and mask models."""

from __future__ import annotations


def track_models() -> list[str]:
    from cvtasks.tasks.detect import detection_models
    from cvtasks.tasks.pose import pose_models
    from cvtasks.tasks.segment import instance_models

    return detection_models() + pose_models() + instance_models()
