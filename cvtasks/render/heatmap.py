"""Heatmaps: colour maps, placing a model-input map on the original image, and panels."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

from cvtasks.render.draw import font, line_width_for, text_size_for

COLORMAPS = {
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "jet": cv2.COLORMAP_JET,
    "viridis": cv2.COLORMAP_VIRIDIS,
}


def normalise(heat: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to 0-1 by its 99.5th percentile (robust to a few hot pixels)."""
    finite = heat[np.isfinite(heat)]
    top = float(np.percentile(finite, 99.5)) if finite.size else 0.0
    if top <= 0:
        top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return np.clip(np.nan_to_num(heat, nan=0.0) / top, 0.0, 1.0)


def colorize(values: np.ndarray, colormap: str) -> np.ndarray:
    """RGB uint8 of a 0-1 map through an OpenCV colour map."""
    grey = np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(grey, COLORMAPS[colormap])
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def place_in_image(
    heat: np.ndarray, box: Sequence[int], width: int, height: int, nearest: bool = False
) -> np.ndarray:
    """Resize a map to ``box`` (x1, y1, x2, y2) of a ``width`` x ``height`` image; NaN outside."""
    x1, y1, x2, y2 = box
    full = np.full((height, width), np.nan, np.float32)
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    resized = cv2.resize(heat.astype(np.float32), (x2 - x1, y2 - y1), interpolation=interpolation)
    full[y1:y2, x1:x2] = resized
    return full


def overlay(image: np.ndarray, heat01: np.ndarray, colormap: str, alpha: float) -> np.ndarray:
    """Blend the coloured map over the image, weighted by the map itself; NaN areas are dimmed."""
    inside = np.isfinite(heat01)
    values = np.nan_to_num(heat01, nan=0.0)
    colours = colorize(values, colormap).astype(np.float32)
    weight = (alpha * np.sqrt(values))[..., None]
    out = image.astype(np.float32) * (1 - weight) + colours * weight
    out[~inside] *= 0.45
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def panel(
    image: np.ndarray,
    middle: np.ndarray,
    blended: np.ndarray,
    title: str,
    box: Sequence[int] | None = None,
    captions: Sequence[str] = ("original", "heatmap", "overlay"),
) -> np.ndarray:
    """original | map | overlay side by side under a title; ``box`` (the model's view) is drawn."""
    height, width = image.shape[:2]
    size = panel_text_size(width, height)
    face = font(size)
    gap = max(4, width // 100)
    title_h = 2 * size + 3 * gap
    canvas = Image.new("RGB", (3 * width + 4 * gap, height + title_h + gap), (255, 255, 255))
    for i, pane in enumerate((image, middle, blended)):
        canvas.paste(Image.fromarray(pane), (gap + i * (width + gap), title_h))
    draw = ImageDraw.Draw(canvas)
    draw.text((gap, gap), title, font=face, fill=(0, 0, 0))
    for i, caption in enumerate(captions):
        text = fit_text(draw, caption, face, width - gap)
        draw.text((gap + i * (width + gap), gap * 2 + size), text, font=face, fill=(90, 90, 90))
    if box is not None:
        x1, y1, x2, y2 = box
        line = max(1, line_width_for(width, height) // 2)
        for i in range(3):
            left = gap + i * (width + gap)
            draw.rectangle(
                (left + x1, title_h + y1, left + x2 - 1, title_h + y2 - 1),
                outline=(255, 255, 255),
                width=line,
            )
    return np.asarray(canvas)


def panel_text_size(width: int, height: int) -> int:
    """Text size of a three-pane panel of ``width`` x ``height`` panes: it grows with the whole
    panel's width, so a wide panel fitted to a screen stays readable."""
    return max(text_size_for(width, height), round(3 * width / 85))


def fit_text(draw: ImageDraw.ImageDraw, text: str, face: object, width: int) -> str:
    """``text`` cut with an ellipsis so that it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=face) <= width:  # type: ignore[arg-type]
        return text
    while text and draw.textlength(text + "…", font=face) > width:  # type: ignore[arg-type]
        text = text[:-1]
    return text + "…"
