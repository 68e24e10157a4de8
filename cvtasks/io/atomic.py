"""Atomic file writes (temp file + rename) and path containment inside ``--out``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from cvtasks.errors import UsageError


def safe_join(root: Path, rel: str) -> Path:
    """``root / rel``, refusing any ``rel`` that would land outside ``root``."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise UsageError(f"refusing to write outside the output folder: {rel!r}")
    target = root.joinpath(*parts)
    resolved_root = root.resolve()
    if not target.resolve().is_relative_to(resolved_root):
        raise UsageError(f"refusing to write outside the output folder: {rel!r}")
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def temp_path_for(target: Path) -> Path:
    """A fresh temp file beside ``target`` keeping its suffix (encoders pick formats by it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    os.chmod(name, _FILE_MODE)  # mkstemp makes 0600; finished files get the usual umask mode
    return Path(name)


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename ``tmp`` over ``target``; no partial file survives."""
    tmp = temp_path_for(target)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(target, write)


def save_npy(path: Path, array: Any) -> None:
    """Write a NumPy array to ``path`` (used inside :func:`atomic_write`)."""
    import numpy as np

    with path.open("wb") as handle:
        np.save(handle, array)
