"""The one place that opens image bytes: size guard, EXIF orientation, every mode to RGB uint8."""

from __future__ import annotations

import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cvtasks.errors import ItemError

# Formats that need a Pillow plugin we do not ship: name them in the error.
_PLUGIN_HINTS = {
    ".heic": "HEIC needs the pillow-heif plugin (pip install pillow-heif)",
    ".heif": "HEIF needs the pillow-heif plugin (pip install pillow-heif)",
    ".avif": "AVIF needs Pillow built with libavif or the pillow-avif-plugin",
    ".jxl": "JPEG XL needs the pillow-jxl-plugin",
}
_ALPHA_MODES = {"LA", "La", "RGBA", "RGBa", "PA"}
BACKGROUND = (255, 255, 255)  # transparent pixels are composited over white


def decode_image(
    path: str | Path,
    max_pixels: int,
    min_side: int | None = None,
    on_corrupt: str = "ignore",
) -> Image.Image:
    """Open ``path`` as an upright RGB image, or raise :class:`ItemError` with a one-line reason.

    The pixel count is checked from the header, before any pixel data is decoded. Pillow's
    warnings about damaged metadata are silenced: what matters is reported as an ItemError.

    With ``min_side`` (the shorter side the model resizes to), large JPEGs are decoded at a
    reduced scale (1/2, 1/4 or 1/8, libjpeg's DCT scaling) that keeps the shorter side at least
    ``min_side``, so the model's own resize still only shrinks. ``image.info["original_size"]``
    then holds the full upright size.

    Pillow decodes damaged JPEG data without a word. With ``on_corrupt`` "warn" the data is
    checked with libjpeg's own strict decoder (:func:`jpeg_corruption`) and its message kept in
    ``image.info["corrupt"]``; "fail" raises :class:`ItemError` instead; "ignore" skips the check.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _decode(Path(path), max_pixels, min_side, on_corrupt)


def jpeg_corruption(data: bytes, mode: str = "RGB") -> str | None:
    """libjpeg's warning about corrupt entropy-coded data in a JPEG (``Corrupt JPEG data: 300
    extraneous bytes before marker 0xd9``), or None when it decodes cleanly.

    The check decodes at 1/8 scale (every coefficient is still Huffman-decoded, which is where
    damage shows) with libjpeg-turbo through simplejpeg, whose strict mode raises on the
    warnings Pillow's decoder silences. A file simplejpeg cannot decode at all gets no verdict.
    """
    import simplejpeg

    colorspace = "CMYK" if mode == "CMYK" else "GRAY"
    options = {"colorspace": colorspace, "min_height": 1, "min_width": 1, "fastdct": True}
    try:
        simplejpeg.decode_jpeg(data, strict=True, **options)
        return None
    except ValueError as exc:
        try:
            simplejpeg.decode_jpeg(data, strict=False, **options)
        except ValueError:
            return None  # not decodable this way at all (Pillow could): no verdict
        return str(exc).strip() or "corrupt JPEG data"


def corruption_hint(message: str, on_corrupt: str) -> str:
    """The one-line account of a corrupt JPEG, naming the option that decides what happens."""
    if on_corrupt == "fail":
        return f"corrupt JPEG: {message} (--on-corrupt warn uses the decoded pixels)"
    return f"corrupt JPEG, decoded anyway: {message} (--on-corrupt fail makes it an error)"


def draft_scale(width: int, height: int, min_side: int) -> int:
    """The largest JPEG scale-down (1, 2, 4 or 8) keeping the shorter side >= ``min_side``.

    libjpeg rounds the scaled size up, so floor division here is on the safe side."""
    scale = 1
    while scale < 8 and min(width, height) // (scale * 2) >= min_side:
        scale *= 2
    return scale


def _open_checked(p: Path, max_pixels: int) -> Image.Image:
    """Open the header of ``p`` (no pixel data yet), after the file checks, with the pixel
    guard applied; every problem is an :class:`ItemError`."""
    try:
        info = p.stat()
    except OSError as exc:
        raise ItemError(f"cannot read file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ItemError("not a regular file (a FIFO, device or socket would block)")
    if info.st_size == 0:
        raise ItemError("empty file (0 bytes)")
    try:
        image = _open_unguarded(p)
    except UnidentifiedImageError:
        hint = _PLUGIN_HINTS.get(p.suffix.lower())
        raise ItemError(
            f"unsupported format: {hint}" if hint else "not a recognised image"
        ) from None
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, ... on bad headers
        raise ItemError(f"cannot open image: {type(exc).__name__}: {exc}") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ItemError(
            f"image too large: {width}x{height} = {width * height} pixels exceeds "
            f"max_image_pixels={max_pixels} (raise it with --max-image-pixels)"
        )
    return image


@dataclass(frozen=True)
class JpegFile:
    """A JPEG's bytes, for decoding elsewhere (on a GPU): its EXIF orientation (1-8) and its
    upright size."""

    data: bytes
    orientation: int
    width: int
    height: int
    warning: str | None = None  # libjpeg's complaint about corrupt data (``on_corrupt`` warn)


def read_jpeg(path: str | Path, max_pixels: int, on_corrupt: str = "ignore") -> JpegFile | None:
    """The bytes of an RGB or greyscale JPEG after the same checks as :func:`decode_image`
    (corrupt data included); None for anything else (other formats, CMYK), which takes the
    Pillow path."""
    p = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = _open_checked(p, max_pixels)
        with image:
            if image.format != "JPEG" or image.mode not in ("RGB", "L"):
                return None
            try:
                orientation = int(image.getexif().get(0x0112, 1))
            except Exception:  # malformed EXIF: as stored, like the Pillow path
                orientation = 1
            width, height = image.size
    if orientation not in range(1, 9):
        orientation = 1
    if orientation >= 5:  # turned by 90 degrees
        width, height = height, width
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ItemError(f"cannot read file: {exc.strerror or exc}") from None
    corrupt = jpeg_corruption(data) if on_corrupt != "ignore" else None
    if corrupt is not None and on_corrupt == "fail":
        raise ItemError(corruption_hint(corrupt, on_corrupt))
    warning = corruption_hint(corrupt, on_corrupt) if corrupt is not None else None
    return JpegFile(data, orientation, width, height, warning)


def _decode(p: Path, max_pixels: int, min_side: int | None, on_corrupt: str) -> Image.Image:
    image = _open_checked(p, max_pixels)
    with image:
        width, height = image.size
        corrupt = None
        if on_corrupt != "ignore" and image.format == "JPEG":
            try:
                corrupt = jpeg_corruption(p.read_bytes(), image.mode)
            except OSError as exc:
                raise ItemError(f"cannot read file: {exc.strerror or exc}") from None
            if corrupt is not None and on_corrupt == "fail":
                raise ItemError(corruption_hint(corrupt, on_corrupt))
        try:
            if min_side and image.format == "JPEG":
                scale = draft_scale(width, height, min_side)
                if scale > 1:  # Pillow picks the largest scale s with size // request >= s
                    image.draft("RGB", (width // scale, height // scale))
            image.load()
            upright = _apply_exif_orientation(image)
            rgb = to_rgb(upright)
            turned = rgb.size != image.size  # EXIF turned it by 90 degrees
            rgb.info["original_size"] = (height, width) if turned else (width, height)
            if corrupt is not None:
                rgb.info["corrupt"] = corruption_hint(corrupt, on_corrupt)
            return rgb
        except ItemError:
            raise
        except Exception as exc:  # Pillow raises many types on corrupt data
            raise ItemError(f"corrupt image: {type(exc).__name__}: {exc}") from None


def _open_unguarded(path: Path) -> Image.Image:
    """``Image.open`` (header only) with Pillow's global pixel guard lifted for this call:
    our own ``max_pixels`` check follows at once, before any pixel data is decoded."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        return Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip per EXIF orientation; a malformed EXIF block leaves the image as stored."""
    try:
        transposed = ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF must not lose the image
        return image
    return transposed if transposed is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: alpha over white, 16-bit scaled (not clipped)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) <= 65535 else values.max()
        gray = np.clip(np.rint(np.clip(values, 0, None) * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(gray)).convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        scale = 255.0 if values.max(initial=0) <= 1.0 else 1.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    return image.convert("RGB")
