"""Helpers for the robustness suite (files made broken on purpose)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture
def broken_folder(tmp_path: Path, photos: dict[str, Path]) -> Path:
    """One good photo and the four classic broken files."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.open(photos["coffee"]).save(folder / "good.jpg", quality=92)
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "page.jpg").write_text("<!doctype html><title>not an image</title>")
    (folder / "truncated.jpg").write_bytes(photos["chelsea"].read_bytes()[:6000])
    png = bytearray((folder / "good.jpg").read_bytes())
    Image.new("RGB", (32, 32), (10, 200, 30)).save(folder / "crc.png")
    png = bytearray((folder / "crc.png").read_bytes())
    png[-20] ^= 0xFF  # inside the last IDAT chunk: its CRC no longer matches
    (folder / "crc.png").write_bytes(bytes(png))
    return folder
