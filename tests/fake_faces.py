"""A synthetic presentation-attack set: crops of real photos ("real") and the same crops shown
on a screen: a moiré grid and JPEG re-compression ("fake")."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def _photos() -> list[np.ndarray]:
    import skimage.data

    return [
        skimage.data.astronaut(),
        skimage.data.chelsea(),
        skimage.data.coffee(),
        skimage.data.rocket(),
    ]


def screen_replay(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop as a camera sees it on a screen: a fine moiré grid and JPEG artefacts."""
    height, width = crop.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(2.5, 4.0)
    wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
    shown = np.clip(crop.astype(np.float32) * (0.7 + 0.3 * wave[..., None]), 0, 255).astype(
        np.uint8
    )
    buffer = io.BytesIO()
    Image.fromarray(shown).save(buffer, format="JPEG", quality=int(rng.integers(15, 30)))
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def make_set(folder: Path, per_class: int = 60, size: int = 64, seed: int = 0) -> Path:
    """folder/real/*.png and folder/fake/*.png (PNG, so decoding is exact everywhere)."""
    rng = np.random.default_rng(seed)
    photos = _photos()
    for name in ("real", "fake"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i in range(per_class):
        for name in ("real", "fake"):
            photo = photos[int(rng.integers(len(photos)))]
            y = int(rng.integers(0, photo.shape[0] - size))
            x = int(rng.integers(0, photo.shape[1] - size))
            crop = photo[y : y + size, x : x + size]
            if crop.ndim == 2:
                crop = np.repeat(crop[..., None], 3, axis=2)
            image = screen_replay(crop, rng) if name == "fake" else crop
            Image.fromarray(image).save(folder / name / f"{i:03d}.png")
    return folder
