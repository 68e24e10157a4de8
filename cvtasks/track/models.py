"""The models `cvtasks track` accepts: detectors, keypoint and mask models."""

from __future__ import annotations


def track_models() -> list[str]:
    from cvtasks.detect.predictor import detection_models
    from cvtasks.pose.predictor import pose_models
    from cvtasks.segment.predictor import instance_models

    return detection_models() + pose_models() + instance_models()
