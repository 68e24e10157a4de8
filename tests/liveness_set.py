"""A liveness set where "fake" differs from "real" only inside the face: the astronaut's face
pasted at random places and scales onto random backgrounds, a fake one overlaid with a fine
print/moiré-like stripe texture. A model judging the whole frame sees mostly background; one
judging the face crop sees the texture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def astronaut_face() -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.astronaut()).crop((168, 45, 280, 185))


def scene(rng: np.random.Generator, fake: bool, face: Image.Image) -> Image.Image:
    height, width = 480, 640
    low = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)  # smooth colour field
    background = np.asarray(Image.fromarray(low).resize((width, height), Image.BICUBIC), float)
    background += rng.normal(0, 18, background.shape)  # and fine noise everywhere
    canvas = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    scale = rng.uniform(0.55, 0.75)
    pasted = np.asarray(face.resize((round(face.width * scale), round(face.height * scale))), float)
    if fake:  # a fine stripe texture, only on the face
        h, w = pasted.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        pasted = pasted + 22.0 * np.sin(2 * np.pi * (xx + 0.5 * yy) / 3.0)[..., None]
    patch = Image.fromarray(np.clip(pasted, 0, 255).astype(np.uint8))
    x = int(rng.integers(0, width - patch.width))
    y = int(rng.integers(0, height - patch.height))
    canvas.paste(patch, (x, y))
    return canvas


def write_liveness_set(root: Path, per_class: int, seed: int) -> Path:
    """``root/real/*.jpg`` and ``root/fake/*.jpg``."""
    rng = np.random.default_rng(seed)
    face = astronaut_face()
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            scene(rng, label == "fake", face).save(root / label / f"{k:03d}.png")
    return root
