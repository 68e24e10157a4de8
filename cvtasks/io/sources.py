"""Turn what the user typed into an ordered list of input files (images and videos).

Accepted: a file, a folder (recursive, sorted), a glob, ``@list.txt`` (one path a line, relative
to the current directory), and ``-`` (paths on stdin). Expansion only lists paths; nothing is
decoded here. A path that does not exist is a usage error, raised before any model loads.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TextIO

from cvtasks.errors import UsageError

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm",
        ".pgm", ".pbm", ".pnm", ".jp2", ".j2k", ".tga", ".ico", ".heic", ".heif", ".avif",
    }
)  # fmt: skip
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".gif", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
)
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputItem:
    """One input file: where it is, how results name it, and where its outputs go."""

    path: Path
    source: str  # the path as given (or as found in a folder); the "source" of records
    rel: str  # output path relative to --out (posix, never absolute, never '..')
    is_video: bool


def is_video_path(path: str | Path) -> bool:
    """Whether the extension marks a video (GIFs count: they are read frame by frame)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _is_media(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS


def _walk_folder(folder: Path, exclude: Path | None) -> list[Path]:
    """Media files below ``folder``, sorted by relative path.

    Hidden entries, links to folders (so symlink loops cannot hang the walk) and the
    ``exclude`` folder (the run's own ``--out``) are skipped.
    """
    found: list[Path] = []
    skip = exclude.resolve() if exclude is not None else None
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (skip is None or (Path(root) / d).resolve() != skip)
        )
        for name in files:
            if not name.startswith(".") and _is_media(Path(name)):
                found.append(Path(root) / name)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _safe_rel(source: str, base: Path | None) -> PurePosixPath:
    """A relative output path for ``source`` that cannot leave the output folder."""
    norm = PurePosixPath(os.path.normpath(source).replace(os.sep, "/"))
    if not norm.is_absolute() and ".." not in norm.parts:
        return norm
    if base is not None:
        inside = PurePosixPath(Path(source).relative_to(base).as_posix())
        return PurePosixPath(base.name or "input") / inside
    return PurePosixPath(norm.name)


def _expand_one(
    spec: str, stdin: TextIO | None, exclude: Path | None
) -> Iterator[tuple[str, Path | None]]:
    """Yield (source string, folder it was found in) pairs for one command-line input."""
    if spec == "-":
        stream = stdin if stdin is not None else sys.stdin
        if stream.isatty():
            raise UsageError("'-' reads image paths from stdin, but stdin is a terminal")
        for line in _read_lines(stream):
            yield from _expand_path(line, exclude)
        return
    if spec.startswith("@") and len(spec) > 1:
        list_path = Path(spec[1:])
        try:
            with list_path.open(encoding="utf-8", errors="surrogateescape") as handle:
                lines = list(_read_lines(handle))
        except OSError as exc:
            raise UsageError(f"cannot read list file {list_path}: {exc.strerror or exc}") from None
        for line in lines:
            yield from _expand_path(line, exclude)
        return
    yield from _expand_path(spec, exclude)


def _expand_path(spec: str, exclude: Path | None) -> Iterator[tuple[str, Path | None]]:
    """A file, a folder (walked) or a glob; lines of list files and stdin come here too."""
    path = Path(spec)
    if path.is_dir():
        for found in _walk_folder(path, exclude):
            yield os.path.join(spec, found.relative_to(path).as_posix()), path
        return
    if path.exists():
        yield spec, None
        return
    if _GLOB_CHARS & set(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            raise UsageError(f"no files match {spec!r}")
        for match in matches:
            if Path(match).is_dir():
                yield from _expand_path(match, exclude)
            elif _is_media(Path(match)):
                yield match, None
        return
    raise UsageError(f"input not found: {spec}")


def _read_lines(stream: Iterable[str]) -> Iterator[str]:
    for raw in stream:
        line = raw.strip()
        if line and not line.startswith("#"):
            yield line


def expand_inputs(
    specs: Iterable[str], stdin: TextIO | None = None, exclude: Path | None = None
) -> list[InputItem]:
    """Expand every input spec into files, in order, without duplicates.

    Folders are walked without entering ``exclude`` (the output folder of the run).

    Raises :class:`UsageError` (exit 2) for missing paths, empty globs and when nothing is found.
    """
    specs = list(specs)
    items: list[InputItem] = []
    seen: set[str] = set()
    used_rels: set[str] = set()
    for spec in specs:
        for source, base in _expand_one(spec, stdin, exclude):
            identity = os.path.realpath(source)  # the same file named twice is processed once
            if identity in seen:
                continue
            seen.add(identity)
            if not Path(source).exists():  # e.g. a dangling link found in a folder
                raise UsageError(f"input not found: {source}")
            rel = _unique(_safe_rel(source, base), used_rels)
            items.append(InputItem(Path(source), source, rel, is_video_path(source)))
    if not items:
        raise UsageError("no input images or videos found in: " + ", ".join(specs or ["(none)"]))
    return items


def _unique(rel: PurePosixPath, used: set[str]) -> str:
    """Make ``rel`` unique among outputs by adding ``~N`` before the suffix when needed."""
    candidate = rel.as_posix()
    counter = 1
    while candidate in used:
        candidate = rel.with_name(f"{rel.stem}~{counter}{rel.suffix}").as_posix()
        counter += 1
    used.add(candidate)
    return candidate
