"""Options of `cvtasks faces` (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import InferenceConfig, option


@dataclass
class FacesConfig(InferenceConfig):
    """Faces: boxes, scores and five landmarks (MTCNN); aligned and context crops."""

    model: str = option(
        "mtcnn",
        "Face detector: mtcnn (Zhang et al. 2016; P-Net, R-Net, O-Net).",
        flag="-m",
        choices=("mtcnn",),
        panel="Model",
    )
    weights: str = option(
        "DEFAULT",
        "DEFAULT (facenet-pytorch's pnet.pt, rnet.pt, onet.pt: downloaded once into the torch "
        "hub cache, SHA-256 checked; `cvtasks models pull mtcnn`), or a folder holding those "
        "three files.",
        flag="-w",
        panel="Model",
    )
    batch_size: int = option(
        4, "Images per step.", flag="-b", minimum=1, maximum=4096, affects_results=False
    )
    min_size: float = option(
        20.0,
        "Smallest face to look for, in pixels (smaller finds more, takes longer).",
        minimum=6.0,
        maximum=100_000.0,
        panel="Task",
    )
    thresholds: list[str] = option(
        ["0.6", "0.7", "0.7"],
        "Face-score thresholds of P-Net, R-Net and O-Net, comma-separated.",
        panel="Task",
    )
    factor: float = option(
        0.709,
        "Scale step of the image pyramid (closer to 1: more scales, slower).",
        minimum=0.1,
        maximum=0.95,
        panel="Task",
    )
    conf: float = option(
        0.0,
        "Keep faces scoring at least this (after O-Net's own threshold).",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    save_crops: bool = option(
        False,
        "Write each face's aligned crop (its landmarks on the 112x112 template) and its "
        "context crop under --out/crops/.",
        panel="Output",
    )
    context: float = option(
        2.7,
        "Context crops: the box scaled this much about its centre and kept inside the image "
        "(Silent-Face's 2.7; 1 is the box itself).",
        minimum=1.0,
        maximum=10.0,
        panel="Output",
    )
    crop_size: int = option(
        112, "Side of the written crops in pixels.", minimum=16, maximum=1024, panel="Output"
    )
    track: bool = option(
        False,
        "Videos: give each face a track id (BoT-SORT over the face boxes, as gaze --track).",
        panel="Task",
    )
