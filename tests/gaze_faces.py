"""Synthetic faces whose pupils point in a known direction (for a gaze regressor trained in
the tests): a face on a background, two eyes, pupils displaced by the gaze."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw


def draw_face(
    yaw: float, pitch: float, rng: np.random.Generator, size: int = 96
) -> tuple[np.ndarray, list[float]]:
    """An RGB image and its face box. L2CS-Net's convention: positive yaw looks towards the
    image's left, positive pitch looks up; the pupils move that way."""
    background = tuple(int(v) for v in rng.integers(40, 200, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    cx, cy = size / 2 + rng.uniform(-6, 6), size / 2 + rng.uniform(-6, 6)
    half = size * rng.uniform(0.27, 0.32)
    skin = (int(rng.integers(150, 240)), int(rng.integers(110, 190)), int(rng.integers(80, 160)))
    draw.ellipse((cx - half, cy - 1.25 * half, cx + half, cy + 1.25 * half), fill=skin)
    eye_r = half * 0.24
    shift_x = -math.sin(math.radians(yaw)) * eye_r * 0.75
    shift_y = -math.sin(math.radians(pitch)) * eye_r * 0.75
    for side in (-1, 1):
        ex, ey = cx + side * half * 0.42, cy - half * 0.25
        draw.ellipse(
            (ex - eye_r, ey - 0.7 * eye_r, ex + eye_r, ey + 0.7 * eye_r), fill=(250, 250, 250)
        )
        px, py, pr = ex + shift_x, ey + shift_y * 0.7, eye_r * 0.42
        draw.ellipse((px - pr, py - pr, px + pr, py + pr), fill=(20, 20, 30))
    draw.line(
        (cx - half * 0.25, cy + half * 0.6, cx + half * 0.25, cy + half * 0.6),
        fill=(120, 50, 50),
        width=2,
    )
    box = [cx - 1.1 * half, cy - 1.35 * half, cx + 1.1 * half, cy + 1.35 * half]
    return np.asarray(image), [round(v, 2) for v in box]


def make_set(
    count: int, seed: int, limit: float = 30.0
) -> list[tuple[np.ndarray, list[float], float, float]]:
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(count):
        yaw, pitch = (float(v) for v in rng.uniform(-limit, limit, 2))
        image, box = draw_face(yaw, pitch, rng)
        found.append((image, box, yaw, pitch))
    return found
