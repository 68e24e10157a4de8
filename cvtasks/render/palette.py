"""Colours people can tell apart: a palette chosen for distance in CIELAB, and readable text.

Instances (boxes, masks) and tracks take the colours in palette order, so objects drawn
together differ as much as possible; semantic classes take a colour by class index, stable
across images.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

RGB = tuple[int, int, int]
PALETTE_SIZE = 64


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (N x 3, 0-1) to CIELAB (D65), for perceptual distances."""
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = (
        linear
        @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    )
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


@lru_cache(maxsize=1)
def palette() -> tuple[RGB, ...]:
    """``PALETTE_SIZE`` saturated colours, each as far (in CIELAB) from those before it as the
    candidates allow (greedy farthest-point order, starting from red): any prefix is a
    well-separated set, so the first few objects of an image get the most distinct colours."""
    candidates = [
        colorsys.hsv_to_rgb(h / 48, s, v)
        for h in range(48)
        for s in (0.55, 0.75, 0.95)
        for v in (0.7, 0.85, 1.0)
    ]
    rgb = np.array(candidates)
    lab = _lab(rgb)
    chosen = [int(np.argmin(np.abs(rgb - [1.0, 0.2, 0.2]).sum(axis=1)))]
    distance = np.linalg.norm(lab - lab[chosen[0]], axis=1)
    while len(chosen) < PALETTE_SIZE:
        best = int(np.argmax(distance))
        chosen.append(best)
        distance = np.minimum(distance, np.linalg.norm(lab - lab[best], axis=1))
    return tuple(
        (round(r * 255), round(g * 255), round(b * 255)) for r, g, b in rgb[chosen].tolist()
    )


def instance_colour(number: int) -> RGB:
    """The colour of the ``number``-th object drawn in an image, or of track ``number``."""
    return palette()[number % PALETTE_SIZE]


def class_colour(index: int) -> RGB:
    """The stable colour of class ``index`` (semantic maps, legends, plots)."""
    return palette()[index % PALETTE_SIZE]


def _luminance(rgb: RGB) -> float:
    """WCAG relative luminance."""
    channels = np.array(rgb, dtype=np.float64) / 255
    linear = np.where(channels > 0.03928, ((channels + 0.055) / 1.055) ** 2.4, channels / 12.92)
    return float(linear @ [0.2126, 0.7152, 0.0722])


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio of two colours (1 to 21; 4.5 is the bar for normal text)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_colour(fill: RGB) -> RGB:
    """Black or white, whichever contrasts more with ``fill`` (at least 4.58:1 for any fill)."""
    black, white = (0, 0, 0), (255, 255, 255)
    return black if contrast(fill, black) >= contrast(fill, white) else white
