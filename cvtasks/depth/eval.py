"""Scoring a depth prediction against ground truth, scale-and-shift invariantly (MiDaS).

Both maps go to disparity space (ground-truth depth is inverted; a relative model's output is
already inverse depth; a metric model's depth is inverted), a least-squares scale and shift
align the prediction to the ground truth on the valid pixels, and the aligned disparity is
turned back into depth for AbsRel and delta < 1.25.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cvtasks.errors import ItemError, UsageError

GT_SUFFIXES = (".npy", ".npz", ".pfm", ".png", ".tif", ".tiff")
_EPS = 1e-8


@dataclass
class DepthScores:
    """AbsRel (0 is perfect), delta1 (1 is perfect) and the fitted alignment."""

    abs_rel: float
    delta1: float
    scale: float
    shift: float
    valid_pixels: int

    def to_record(self) -> dict[str, float | int]:
        return {
            "abs_rel": round(self.abs_rel, 6),
            "delta1": round(self.delta1, 6),
            "scale": self.scale,
            "shift": self.shift,
            "valid_pixels": self.valid_pixels,
        }


def read_pfm(path: Path) -> np.ndarray:
    """A Portable Float Map (Middlebury disparity files), top row first."""
    with path.open("rb") as handle:
        header = handle.readline().strip()
        if header not in (b"Pf", b"PF"):
            raise ItemError(f"{path}: not a PFM file")
        dims = re.findall(rb"\d+", handle.readline())
        width, height = int(dims[0]), int(dims[1])
        scale = float(handle.readline().strip())
        channels = 3 if header == b"PF" else 1
        data = np.frombuffer(handle.read(), dtype="<f4" if scale < 0 else ">f4")
    expected = width * height * channels
    if data.size < expected:
        raise ItemError(f"{path}: truncated PFM")
    image = data[:expected].reshape(height, width, channels)[..., 0]
    return np.flipud(image).astype(np.float32)


def load_ground_truth(path: Path, scale: float = 1.0) -> np.ndarray:
    """A ground-truth map as float32; invalid pixels become NaN."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                keys = [k for k in ("disparity", "disp", "depth") if k in archive] or list(
                    archive.keys()
                )
                values = archive[keys[0]]
        elif suffix == ".pfm":
            values = read_pfm(path)
        else:
            values = np.asarray(Image.open(path)).astype(np.float32)
    except (OSError, ValueError) as exc:
        raise ItemError(f"cannot read ground truth {path}: {exc}") from None
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ItemError(f"ground truth {path} has shape {values.shape}, expected H x W")
    values = values * np.float32(scale)
    values[~np.isfinite(values) | (values <= 0)] = np.nan
    return values


def find_ground_truth(spec: str, source: str, single_input: bool) -> Path | None:
    """The ground-truth file for ``source``: ``spec`` itself (one input), or the file in the
    folder ``spec`` with the input's stem."""
    root = Path(spec)
    if root.is_file():
        if not single_input:
            raise UsageError(
                "--eval-gt is a single file but there are several inputs: pass a folder"
            )
        return root
    if root.is_dir():
        stem = Path(source).stem
        for suffix in GT_SUFFIXES:
            candidate = root / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
        return None
    raise UsageError(f"--eval-gt: not found: {spec}")


def score(
    prediction: np.ndarray, truth: np.ndarray, prediction_kind: str, truth_kind: str
) -> DepthScores:
    """Align ``prediction`` to ``truth`` in disparity space and compute AbsRel and delta1."""
    if prediction.shape != truth.shape:
        raise ItemError(
            f"ground truth is {truth.shape[1]}x{truth.shape[0]}, "
            f"the image {prediction.shape[1]}x{prediction.shape[0]}"
        )
    truth_disp = truth if truth_kind == "disparity" else 1.0 / truth
    pred = prediction.astype(np.float64)
    pred_disp = 1.0 / np.maximum(pred, _EPS) if prediction_kind == "metric" else pred
    valid = np.isfinite(truth_disp) & np.isfinite(pred_disp) & (truth_disp > 0)
    count = int(valid.sum())
    if count < 2:
        raise ItemError("ground truth has fewer than 2 valid pixels")
    x, y = pred_disp[valid], truth_disp[valid].astype(np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, y, rcond=None)
    aligned_disp = np.maximum(scale * x + shift, _EPS)
    depth_pred, depth_true = 1.0 / aligned_disp, 1.0 / y
    abs_rel = float(np.mean(np.abs(depth_pred - depth_true) / depth_true))
    ratio = np.maximum(depth_pred / depth_true, depth_true / depth_pred)
    delta1 = float(np.mean(ratio < 1.25))
    return DepthScores(abs_rel, delta1, float(scale), float(shift), count)
