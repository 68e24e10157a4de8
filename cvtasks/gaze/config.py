"""Options of `cvtasks gaze` (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import InferenceConfig, option

L2CS_CHECKPOINTS = "https://github.com/Ahmednull/L2CS-Net (README: pre-trained models)"


@dataclass
class GazeConfig(InferenceConfig):
    """Where each face looks: L2CS-Net on face crops."""

    model: str = option(
        "l2cs",
        "Gaze model: l2cs (L2CS-Net; its ResNet depth and bins come from the checkpoint).",
        flag="-m",
        choices=("l2cs",),
        panel="Model",
    )
    weights: str = option(
        "DEFAULT",
        "An L2CS-Net checkpoint (.pkl/.pth, e.g. L2CSNet_gaze360.pkl; loaded with "
        f"weights_only=True). Required: the public ones are published at {L2CS_CHECKPOINTS}, "
        "not on a package registry, so nothing is downloaded.",
        flag="-w",
        panel="Model",
    )
    batch_size: int = option(
        4, "Images per forward pass.", flag="-b", minimum=1, maximum=4096, affects_results=False
    )
    faces: str | None = option(
        None,
        "Face boxes from any face detector: cvtasks detect-style JSONL (source, frame, "
        "predictions with box and score), e.g. `cvtasks faces` records. Default: "
        "--face-detector.",
        panel="Task",
    )
    face_detector: str = option(
        "mtcnn",
        "Without --faces, where the faces come from: mtcnn (the face detector of `cvtasks "
        "faces`; the gaze starts between its eye landmarks) or keypoints (a face box from "
        "Keypoint R-CNN's nose, eyes and ears: people seen from afar).",
        choices=("mtcnn", "keypoints"),
        panel="Task",
    )
    face_weights: str = option(
        "DEFAULT",
        "--face-detector mtcnn: its weights (DEFAULT: the cache, `cvtasks models pull mtcnn`; "
        "or a folder with pnet.pt, rnet.pt, onet.pt).",
        panel="Model",
    )
    pose_model: str = option(
        "keypointrcnn_resnet50_fpn",
        "--face-detector keypoints: the keypoint model whose face keypoints give the faces.",
        panel="Model",
    )
    pose_weights: str = option(
        "DEFAULT", "Weights of --pose-model (DEFAULT, an enum member or a file).", panel="Model"
    )
    conf: float = option(
        0.5,
        "Minimum score of a person (keypoints) or of a face (--faces) to look at.",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    input_size: int = option(
        448,
        "The gaze model's input side: 448 for the public checkpoints (the face crop is resized "
        "to half of it, then to it, as L2CS-Net's demo does).",
        minimum=16,
        maximum=2048,
        panel="Task",
    )
    track: bool = option(
        False,
        "Videos: give each face a track id (BoT-SORT over the face boxes; a face appearing "
        "after the first frame gets its id from its second frame).",
        panel="Task",
    )
