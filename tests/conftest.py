"""Shared fixtures. Tests never touch the network: TORCH_HOME is a temp folder and
CVTASKS_OFFLINE=1 makes any weights download fail fast with exit code 3."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("TORCH_HOME", "CVTASKS_OFFLINE", "HF_HUB_OFFLINE")}
    os.environ["TORCH_HOME"] = str(tmp_path_factory.mktemp("torch_home"))
    os.environ["CVTASKS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three real photos from scikit-image (public domain / CC0) saved as JPEGs."""
    import skimage.data
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("astronaut", "chelsea", "coffee"):
        path = folder / f"{name}.jpg"
        Image.fromarray(getattr(skimage.data, name)()).save(path, quality=92)
        paths[name] = path
    return paths


@pytest.fixture(scope="session")
def mnv2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision's real MobileNetV2 ImageNet weights (IMAGENET1K_V1), copied under a name that
    says nothing of its release: cvtasks must know the release from the content."""
    import shutil

    from real_weights import mobilenet_v2_file

    path = tmp_path_factory.mktemp("real_weights") / "my_mobilenet.pth"
    shutil.copyfile(mobilenet_v2_file(), path)
    return path


@pytest.fixture(scope="session")
def sized_photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """scikit-image photos as JPEGs at their own size and upscaled to 1000 and 2000 px on the
    long side (the sizes where draft decoding and resizing differences show)."""
    import skimage.data
    from PIL import Image

    folder = tmp_path_factory.mktemp("sized_photos")
    paths = {}
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        for long_side in (None, 1000, 2000):
            scaled = image
            if long_side is not None:
                scale = long_side / max(image.size)
                size = (round(image.width * scale), round(image.height * scale))
                scaled = image.resize(size, Image.Resampling.BICUBIC)
            key = f"{name}_{long_side or 'own'}"
            paths[key] = folder / f"{key}.jpg"
            scaled.save(paths[key], quality=92)
    return paths


@pytest.fixture(scope="session")
def r18_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random resnet18 state dict; the head is scaled so top-k ranks are well apart."""
    from helpers import seeded_state_dict

    path = tmp_path_factory.mktemp("weights") / "resnet18_random.pth"
    seeded_state_dict("resnet18", path)
    return path


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli() -> object:
    """Invoke the Typer app in-process: ``cli(["classify", ...], input="...")``."""
    from typer.testing import CliRunner

    from cvtasks.cli.app import app

    def invoke(args: list[str], input: str | None = None) -> CliResult:
        result = CliRunner().invoke(app, [str(a) for a in args], input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture(scope="session")
def small_models(
    tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]
) -> dict[str, Path]:
    """Calibrated seeded weights files for the small detection, segmentation and pose models."""
    from helpers import calibrated_state_dict

    folder = tmp_path_factory.mktemp("task_weights")
    images = list(photos.values())
    specs = {
        "fasterrcnn_mobilenet_v3_large_320_fpn": {"head_scale": 5.0, "num_classes": 91},
        "lraspp_mobilenet_v3_large": {"num_classes": 21},
        "keypointrcnn_resnet50_fpn": {"head_scale": 4.0, "num_classes": 2, "num_keypoints": 17},
        "maskrcnn_resnet50_fpn": {"head_scale": 3.0, "num_classes": 91},
    }
    files = {}
    for name, kwargs in specs.items():
        files[name] = folder / f"{name}.pth"
        calibrated_state_dict(name, files[name], images, **kwargs)
    return files
