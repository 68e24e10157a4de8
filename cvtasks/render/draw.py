"""Drawing primitives shared by the tasks' annotators; sizes scale with the image."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled scalable font at ``size`` pixels (bitmap fallback without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def text_size_for(width: int, height: int) -> int:
    """A font size readable on the image: about 1/28 of its shorter side, at least 11 px."""
    return max(11, round(min(width, height) / 28))


def draw_text_panel(image: np.ndarray, lines: Sequence[str], *, opacity: float = 0.6) -> np.ndarray:
    """Return a copy of ``image`` with ``lines`` in a translucent box at the top-left corner."""
    base = Image.fromarray(image).convert("RGBA")
    size = text_size_for(base.width, base.height)
    face = font(size)
    pad = max(3, size // 3)
    measure = ImageDraw.Draw(base)
    boxes = [measure.textbbox((0, 0), line, font=face) for line in lines]
    line_h = max((b[3] for b in boxes), default=size) + pad // 2
    panel_w = max((b[2] for b in boxes), default=0) + 2 * pad
    panel_h = line_h * len(lines) + 2 * pad - pad // 2
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, 0, panel_w, panel_h), fill=(0, 0, 0, round(255 * opacity)))
    for i, line in enumerate(lines):
        draw.text((pad, pad + i * line_h), line, font=face, fill=(255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(base, overlay).convert("RGB"))
