"""Face crops: aligned (a similarity transform of the five landmarks onto the standard 112x112
template used by ArcFace/InsightFace) and with context (the box scaled about its centre and
kept inside the image, as Silent-Face-Anti-Spoofing crops its inputs)."""

from __future__ import annotations

import numpy as np

# left eye, right eye, nose, left and right mouth corner in a 112x112 crop (InsightFace)
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of the rotation, uniform scale and translation that maps ``source``
    points onto ``target`` in the least-squares sense (Umeyama 1991, no reflection)."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (src_c**2).sum() / len(src)
    scale = float(np.trace(np.diag(singular) @ sign)) / variance if variance > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def aligned_crop(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The face warped so its landmarks sit on the template (scaled to ``size``)."""
    import cv2

    matrix = similarity(landmarks, TEMPLATE_112 * (size / 112.0))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


def context_box(
    box: list[float], width: int, height: int, scale: float
) -> tuple[int, int, int, int]:
    """The box grown ``scale`` times about its centre (less where the image is too small),
    shifted to stay inside the image: x1, y1, x2, y2 (inclusive pixels)."""
    x1, y1, x2, y2 = box
    box_w, box_h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = x1 + box_w / 2, y1 + box_h / 2
    left, top = cx - new_w / 2, cy - new_h / 2
    right, bottom = cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right, left = right - left, 0
    if top < 0:
        bottom, top = bottom - top, 0
    if right > width - 1:
        left, right = left - (right - width + 1), width - 1
    if bottom > height - 1:
        top, bottom = top - (bottom - height + 1), height - 1
    return int(left), int(top), int(right), int(bottom)


def context_crop(image: np.ndarray, box: list[float], scale: float, size: int) -> np.ndarray:
    """The context box's pixels resized to ``size`` x ``size``."""
    import cv2

    height, width = image.shape[:2]
    left, top, right, bottom = context_box(box, width, height, scale)
    patch = image[top : bottom + 1, left : right + 1]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)
