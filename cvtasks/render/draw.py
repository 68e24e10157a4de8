"""Drawing primitives shared by the tasks' annotators; sizes scale with the image."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cvtasks.render.palette import class_colour, text_colour


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


def arrow_head_points(
    start: tuple[float, float], end: tuple[float, float], size: float
) -> list[tuple[float, float]] | None:
    """The triangle of an arrow's head at ``end`` (tip, two barbs), or None for an arrow too
    short to have a direction."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    length = (dx * dx + dy * dy) ** 0.5
    if length < 1e-6:
        return None
    size = min(size, length)
    ux, uy = dx / length, dy / length
    bx, by = end[0] - ux * size, end[1] - uy * size
    half = 0.6 * size
    return [end, (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)]


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


def colour(index: int) -> tuple[int, int, int]:
    """The stable colour of class ``index`` (see :mod:`cvtasks.render.palette`)."""
    return class_colour(index)


def line_width_for(width: int, height: int) -> int:
    """Box outline thickness: about 1/300 of the image diagonal, at least 2 px."""
    return max(2, round((width**2 + height**2) ** 0.5 / 300))


def draw_boxes(
    image: np.ndarray,
    boxes: Sequence[Sequence[float]],
    labels: Sequence[str],
    colours: Sequence[tuple[int, int, int]],
) -> np.ndarray:
    """Return a copy of ``image`` with each box outlined and its label on a filled tag."""
    canvas = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = line_width_for(canvas.width, canvas.height)
    face = font(text_size_for(canvas.width, canvas.height))
    for box, label, fill in zip(boxes, labels, colours, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle((x1, y1, x2, y2), outline=fill, width=width)
        if not label:
            continue
        left, top, right, bottom = draw.textbbox((0, 0), label, font=face)
        tag_w, tag_h = right - left + 2 * width, bottom - top + 2 * width
        tag_y = y1 - tag_h if y1 - tag_h >= 0 else y1  # above the box, or inside at the top
        tag_x = min(max(x1, 0), max(canvas.width - tag_w, 0))
        draw.rectangle((tag_x, tag_y, tag_x + tag_w, tag_y + tag_h), fill=fill)
        draw.text(
            (tag_x + width - left, tag_y + width - top), label, font=face, fill=text_colour(fill)
        )
    return np.asarray(canvas)


def blend_masks(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    colours: Sequence[tuple[int, int, int]],
    alpha: float,
) -> np.ndarray:
    """Tint each boolean HxW mask with its colour at opacity ``alpha``."""
    out = image.astype(np.float32)
    for mask, fill in zip(masks, colours, strict=True):
        out[mask] = (1.0 - alpha) * out[mask] + alpha * np.asarray(fill, np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def draw_skeletons(
    image: np.ndarray,
    people: Sequence[Sequence[tuple[float, float] | None]],
    limbs: Sequence[tuple[int, int]],
    point_colours: Sequence[tuple[int, int, int]],
    limb_colours: Sequence[tuple[int, int, int]],
) -> np.ndarray:
    """Draw limbs between visible keypoints, then the points; ``None`` marks a hidden point."""
    canvas = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = line_width_for(canvas.width, canvas.height)
    radius = width + 1
    for points in people:
        for (a, b), fill in zip(limbs, limb_colours, strict=True):
            pa, pb = points[a], points[b]
            if pa is not None and pb is not None:
                draw.line((pa, pb), fill=fill, width=width)
        for point, fill in zip(points, point_colours, strict=True):
            if point is not None:
                x, y = point
                draw.ellipse(
                    (x - radius, y - radius, x + radius, y + radius),
                    fill=fill,
                    outline=(255, 255, 255),
                )
    return np.asarray(canvas)


def draw_legend(
    image: np.ndarray, entries: Sequence[tuple[str, tuple[int, int, int]]]
) -> np.ndarray:
    """A translucent top-left panel with a colour swatch and a label per entry."""
    base = Image.fromarray(image).convert("RGBA")
    size = text_size_for(base.width, base.height)
    face = font(size)
    pad = max(3, size // 3)
    measure = ImageDraw.Draw(base)
    line_h = size + pad
    text_w = max(measure.textbbox((0, 0), text, font=face)[2] for text, _ in entries)
    panel_w = pad + size + pad + text_w + pad
    panel_h = pad + line_h * len(entries)
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, 0, panel_w, panel_h), fill=(0, 0, 0, 150))
    for i, (text, fill) in enumerate(entries):
        y = pad + i * line_h
        draw.rectangle((pad, y, pad + size, y + size), fill=(*fill, 255))
        draw.text((2 * pad + size, y), text, font=face, fill=(255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(base, overlay).convert("RGB"))
