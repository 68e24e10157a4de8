"""Figure furniture: a title band above a picture, and colour bars that say what colours mean."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from cvtasks.render.draw import font

INK, GREY, PAPER = (0, 0, 0), (90, 90, 90), (255, 255, 255)
MIN_FIGURE_WIDTH = 440  # narrower pictures are centred on a band this wide, so titles fit


def _wrap(text: str, face: object, width: int, draw: ImageDraw.ImageDraw) -> list[str]:
    """Greedy word wrap of ``text`` to ``width`` pixels."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}".strip()
            if line and draw.textlength(candidate, font=face) > width:  # type: ignore[arg-type]
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def titled(image: np.ndarray, title: str, subtitle: str = "") -> np.ndarray:
    """``image`` under a white band with ``title`` (and a grey ``subtitle``), wrapped to fit;
    the text size follows the figure's width (at least 14 px). A picture narrower than
    ``MIN_FIGURE_WIDTH`` is centred on a white canvas that wide, so that titles stay readable."""
    height, width = image.shape[:2]
    if width < MIN_FIGURE_WIDTH:
        wide = np.full((height, MIN_FIGURE_WIDTH, 3), 255, np.uint8)
        left = (MIN_FIGURE_WIDTH - width) // 2
        wide[:, left : left + width] = image[..., :3]
        image, width = wide, MIN_FIGURE_WIDTH
    size = max(14, min(28, width // 45))
    face, small = font(size), font(max(12, size * 4 // 5))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pad = size // 2
    lines = [(text, face, INK) for text in _wrap(title, face, width - 2 * pad, measure)]
    if subtitle:
        lines += [(text, small, GREY) for text in _wrap(subtitle, small, width - 2 * pad, measure)]
    heights = [int(getattr(f, "size", size) * 1.3) for _, f, _ in lines]
    band = pad + sum(heights) + pad
    canvas = Image.new("RGB", (width, height + band), PAPER)
    canvas.paste(Image.fromarray(image), (0, band))
    draw = ImageDraw.Draw(canvas)
    y = pad
    for (text, f, fill), line_height in zip(lines, heights, strict=True):
        draw.text((pad, y), text, font=f, fill=fill)
        y += line_height
    return np.asarray(canvas)


def colour_bar(
    height: int,
    colours: np.ndarray,
    ticks: Sequence[tuple[float, str]],
    label: str = "",
    width: int | None = None,
    text_size: int | None = None,
) -> np.ndarray:
    """A vertical colour bar ``height`` px tall for the 256 RGB ``colours`` of a colour map
    (value 1 at the top), ``ticks`` as (position 0-1, text), and an optional ``label``."""
    size = text_size or max(12, min(22, height // 30))
    face = font(size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    bar_w = max(12, size)
    text_w = max([int(measure.textlength(t, font=face)) for _, t in ticks] + [0])
    label_w = int(measure.textlength(label, font=face)) if label else 0
    width = width or bar_w + 3 * size // 2 + max(text_w, label_w - bar_w) + size // 2
    canvas = Image.new("RGB", (width, height), PAPER)
    top, bottom = size + (size if label else 0), height - size
    span = max(bottom - top, 1)
    ramp = colours[np.linspace(255, 0, span).round().astype(int)]  # high values on top
    strip = np.repeat(ramp[:, None, :], bar_w, axis=1).astype(np.uint8)
    canvas.paste(Image.fromarray(strip), (size // 2, top))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((size // 2, top, size // 2 + bar_w - 1, bottom - 1), outline=GREY)
    if label:
        draw.text((size // 2, 2), label, font=face, fill=INK)
    for position, text in ticks:
        y = bottom - position * span
        draw.line((size // 2 + bar_w, y, size // 2 + bar_w + size // 3, y), fill=INK)
        draw.text((size // 2 + bar_w + size // 2, y - size // 2), text, font=face, fill=INK)
    return np.asarray(canvas)


def beside(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two RGB pictures side by side, top-aligned, on white."""
    height = max(left.shape[0], right.shape[0])
    canvas = np.full((height, left.shape[1] + right.shape[1], 3), 255, np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] :] = right
    return canvas
