"""Broken and odd media files for the robustness tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

# How a camera stores an upright image for each EXIF orientation (the viewer undoes it):
# 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 needs 90 deg clockwise (stored turned
# counter-clockwise), 7 transverse (anti-diagonal), 8 needs 90 deg counter-clockwise.
STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but carries no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def write_avi(
    path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), fps: float = 10.0
) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 20) % 255, np.uint8))
    writer.release()


def patch_avi(path: Path, *, rate: int | None = None, length: int | None = None) -> None:
    """Rewrite the stream header's frame rate (dwRate) or frame count (dwLength)."""
    data = bytearray(path.read_bytes())
    strh = data.find(b"strh")
    if rate is not None:
        struct.pack_into("<I", data, strh + 32, rate)
        struct.pack_into("<I", data, data.find(b"avih") + 8, 0)  # no microseconds per frame
    if length is not None:
        struct.pack_into("<I", data, strh + 40, length)
    path.write_bytes(bytes(data))


def flip_bits(data: bytes, count: int, seed: int = 0) -> bytes:
    """``data`` with ``count`` single bits flipped in its second half (a JPEG's entropy-coded
    scan, past the headers and tables), as a failing disk or network would."""
    import random

    rng = random.Random(seed)
    damaged = bytearray(data)
    for _ in range(count):
        at = rng.randrange(len(damaged) // 2, len(damaged) - 4)
        damaged[at] ^= 1 << rng.randrange(8)
    return bytes(damaged)
