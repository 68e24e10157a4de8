"""Where people face, on hand-made skeletons: front, back, left and right profiles."""

from __future__ import annotations

import numpy as np
import pytest

from cvtasks.pose.orientation import body_yaw, head_yaw, orientation
from cvtasks.pose.predictor import Person, PoseResult

SCORE = 5.0  # a confident keypoint logit


def skeleton(**points: tuple[float, float]) -> dict[str, list[float]]:
    return {name: [x, y, SCORE] for name, (x, y) in points.items()}


# A person 100 px wide at the shoulders, torso 110 px: facing the camera their left side is on
# the image's right.
FRONT = skeleton(
    nose=(200, 80), left_eye=(210, 70), right_eye=(190, 70), left_ear=(222, 78), right_ear=(178, 78),
    left_shoulder=(250, 130), right_shoulder=(150, 130), left_hip=(235, 240), right_hip=(165, 240),
)  # fmt: skip
BACK = skeleton(
    left_ear=(178, 78), right_ear=(222, 78),
    left_shoulder=(150, 130), right_shoulder=(250, 130), left_hip=(165, 240), right_hip=(235, 240),
)  # fmt: skip
FACING_RIGHT = skeleton(  # turned to face the image's right edge: the right side shows
    nose=(228, 82), right_eye=(215, 72), right_ear=(190, 78),
    left_shoulder=(205, 130), right_shoulder=(195, 130), left_hip=(203, 240), right_hip=(197, 240),
)  # fmt: skip
FACING_LEFT = skeleton(
    nose=(172, 82), left_eye=(185, 72), left_ear=(210, 78),
    left_shoulder=(205, 130), right_shoulder=(195, 130), left_hip=(203, 240), right_hip=(197, 240),
)  # fmt: skip


@pytest.mark.parametrize(
    ("points", "facing", "yaw"),
    [
        (FRONT, "camera", 0.0),
        (BACK, "away", 180.0),
        (FACING_RIGHT, "right", None),
        (FACING_LEFT, "left", None),
    ],
)
def test_body_and_head(points, facing, yaw):
    body, head = body_yaw(points), head_yaw(points)
    assert body is not None and head is not None
    assert body["facing"] == facing and head["facing"] == facing
    if yaw is not None:
        assert body["yaw"] == pytest.approx(yaw, abs=1) and head["yaw"] == pytest.approx(yaw, abs=1)
    else:
        sign = 1 if facing == "right" else -1
        assert 75 <= sign * body["yaw"] <= 90 and sign * head["yaw"] == 90
    assert 0.5 < body["confidence"] <= 1.0


def test_turned_half_way_and_the_rule_numbers():
    # shoulders at half their frontal width, nose to the right: acos(50/99) = 59.7 degrees
    half = dict(FRONT) | skeleton(
        left_shoulder=(225, 130), right_shoulder=(175, 130), nose=(215, 80)
    )
    assert body_yaw(half)["yaw"] == pytest.approx(59.7, abs=0.1)
    assert body_yaw(half)["facing"] == "right"
    # head: nose 15 px right of the ear midpoint, ears 22 px either side: atan2(15, 22)
    assert head_yaw(half)["yaw"] == pytest.approx(np.degrees(np.arctan2(15, 22)), abs=0.1)


def test_missing_keypoints_give_null():
    assert body_yaw(skeleton(left_shoulder=(1, 1), right_shoulder=(5, 1))) is None  # no hips
    assert head_yaw(skeleton(nose=(1, 1))) is None
    low = {name: [x, y, -3.0] for name, (x, y, _) in FRONT.items()}  # all below VISIBLE
    assert orientation(low) == {"body": None, "head": None}


def test_pose_records_and_drawing_carry_it():
    from torchvision.models import get_model_weights

    names = get_model_weights("keypointrcnn_resnet50_fpn").DEFAULT.meta["keypoint_names"]
    all_17 = {n: FRONT.get(n, [0.0, 0.0, -5.0]) for n in names}  # the model gives every point
    person = Person("person", 1, 0.9, [140, 60, 260, 250], all_17)
    record = person.to_record()
    assert record["orientation"]["body"]["facing"] == "camera"
    image = np.zeros((300, 400, 3), np.uint8)
    drawn = PoseResult([person], 400, 300).annotate(image)
    # the arrow starts at the shoulder midpoint (200, 130) and points down towards the viewer
    assert drawn[140:170, 198:203].max() == 255
