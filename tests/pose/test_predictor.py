"""pose: keypoints equal torchvision's keypointrcnn on the same weights; skeleton drawing."""

from __future__ import annotations

import numpy as np
import torch
from helpers import jsonl, match_detections, reference_detector
from PIL import Image

from cvtasks.pose.predictor import LEFT, LIMBS, RIGHT, side_colour
from cvtasks.render.draw import draw_skeletons

KP = "keypointrcnn_resnet50_fpn"
NAMES = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
]


def test_matches_torchvision(cli, photos, small_models):
    images = [photos["astronaut"], photos["chelsea"]]
    result = cli(
        [
            "pose",
            *images,
            "-w",
            small_models[KP],
            "--min-size",
            "320",
            "--conf",
            "0.2",
            "-f",
            "jsonl",
            "-q",
            "-b",
            "2",
            "--max-det",
            "10",  # the keypoint head runs once per kept box: 10, not 100
        ]
    )
    assert result.exit_code == 0, result.stderr
    net, transforms = reference_detector(
        KP, small_models[KP], 320, num_classes=2, num_keypoints=17, box_detections_per_img=10
    )
    found = 0
    for record, path in zip(jsonl(result.stdout), images, strict=True):
        with torch.no_grad():
            ref = net([transforms(Image.open(path).convert("RGB"))])[0]
        keep = [i for i, s in enumerate(ref["scores"].tolist()) if s >= 0.2]
        found += len(keep)
        theirs = [
            {"index": 1, "score": float(ref["scores"][i]), "box": ref["boxes"][i].tolist(), "_i": i}
            for i in keep
        ]
        match_detections(record["predictions"], theirs)
        for pred in record["predictions"]:
            assert pred["label"] == "person" and list(pred["keypoints"]) == NAMES
            i = min(theirs, key=lambda t: abs(t["score"] - pred["score"]))["_i"]
            ours = np.array([v[:2] for v in pred["keypoints"].values()])
            assert np.abs(ours - ref["keypoints"][i, :, :2].numpy()).max() < 0.02
            scores = [v[2] for v in pred["keypoints"].values()]
            assert np.abs(np.array(scores) - ref["keypoints_scores"][i].numpy()).max() < 1e-3
    assert found >= 1


def test_side_colours_and_limbs():
    assert side_colour("left_knee") == LEFT and side_colour("right_eye") == RIGHT
    assert side_colour("nose") not in (LEFT, RIGHT)
    assert len(LIMBS) == 16 and all(0 <= a < 17 and 0 <= b < 17 for a, b in LIMBS)


def test_skeleton_pixels_at_keypoints():
    image = np.zeros((100, 100, 3), np.uint8)
    points = [(20.0, 20.0), (80.0, 80.0), None]
    out = draw_skeletons(
        image, [points], [(0, 1), (1, 2)], [LEFT, RIGHT, LEFT], [(0, 255, 0), (0, 0, 255)]
    )
    assert tuple(out[20, 20]) == LEFT and tuple(out[80, 80]) == RIGHT
    assert tuple(out[50, 50]) == (0, 255, 0)  # the limb between them
    assert not out[80, 20].any()  # nothing drawn elsewhere
