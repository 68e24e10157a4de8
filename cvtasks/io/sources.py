"""Turn what the user typed into an ordered list of input files (images and videos).

Accepted: a file, a folder (recursive, sorted), a glob, ``@list.txt`` (one path a line, relative
to the current directory), and ``-`` (paths on stdin). Expansion only lists paths; nothing is
decoded here. A path that does not exist is a usage error, raised before any model loads.
"""

from __future__ import annotations

import glob
import os
import re
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
    """One input: where it is, how results name it, and where its outputs go.

    ``kind`` is ``image`` (one still image) or a stream of frames read in order: ``video``
    (a file), ``sequence`` (a folder or glob of frames, one source; ``frames`` lists them) or
    ``live`` (a camera index or a stream URL, read on a thread).
    """

    path: Path
    source: str  # the path as given (or as found in a folder); the "source" of records
    rel: str  # output path relative to --out (posix, never absolute, never '..')
    kind: str = "image"
    frames: tuple[Path, ...] = ()  # a sequence's frame files, in order

    @property
    def is_video(self) -> bool:
        """Whether this input is a stream of frames (video, sequence or live source)."""
        return self.kind != "image"


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
            kind = "video" if is_video_path(source) else "image"
            items.append(InputItem(Path(source), source, rel, kind))
    if not items:
        raise UsageError("no input images or videos found in: " + ", ".join(specs or ["(none)"]))
    return items


LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://", "udp://")


def is_live(spec: str) -> bool:
    """A camera index (``0``) or a stream URL."""
    return spec.isdigit() or spec.lower().startswith(LIVE_SCHEMES)


def live_rel(spec: str) -> str:
    """An output name for a live source: ``camera0``, or the URL's host and path, made safe."""
    if spec.isdigit():
        return f"camera{spec}"
    text = spec.split("://", 1)[1].split("?", 1)[0].strip("/")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return safe or "stream"


def expand_sequences(
    specs: Iterable[str], stdin: TextIO | None = None, exclude: Path | None = None
) -> list[InputItem]:
    """Inputs for commands that follow objects over time (``track``): every spec is one
    source. A video is itself; a folder or glob of images is one sequence of frames in sorted
    order (the MOTChallenge ``img1/`` layout); a camera index or URL is a live source; a
    ``@list.txt`` or ``-`` names such inputs one a line."""
    items: list[InputItem] = []
    used: set[str] = set()
    for spec in _sequence_specs(specs, stdin):
        if is_live(spec):
            items.append(
                InputItem(Path(spec), spec, _unique(PurePosixPath(live_rel(spec)), used), "live")
            )
            continue
        path = Path(spec)
        if path.is_file() and is_video_path(spec):
            rel = _unique(_safe_rel(spec, None), used)
            items.append(InputItem(path, spec, rel, "video"))
            continue
        frames = [p for p, _ in _frame_files(spec, exclude)]
        if not frames:
            raise UsageError(f"no image frames found in {spec!r}")
        videos = [f for f in frames if is_video_path(f)]
        if videos:
            raise UsageError(
                f"{spec} mixes videos and images ({videos[0].name}): give each video on its own"
            )
        rel = _unique(_sequence_rel(spec), used)
        items.append(InputItem(path, spec, rel, "sequence", tuple(frames)))
    if not items:
        raise UsageError("no inputs given")
    return items


def _sequence_rel(spec: str) -> PurePosixPath:
    """Where a sequence's outputs are named: its folder, or for the MOTChallenge layout
    ``<sequence>/img1`` the sequence's folder (``MOT17-02``, not ``img1``)."""
    rel = _safe_rel(spec.rstrip("/") or spec, None)
    if rel.name == "img1":
        if len(rel.parts) > 1:
            return rel.parent
        return PurePosixPath(Path(spec).resolve().parent.name or "sequence")
    return rel


def _sequence_specs(specs: Iterable[str], stdin: TextIO | None) -> Iterator[str]:
    for spec in specs:
        if spec == "-":
            stream = stdin if stdin is not None else sys.stdin
            if stream.isatty():
                raise UsageError("'-' reads inputs from stdin, but stdin is a terminal")
            yield from _read_lines(stream)
        elif spec.startswith("@") and len(spec) > 1:
            try:
                with Path(spec[1:]).open(encoding="utf-8", errors="surrogateescape") as handle:
                    yield from list(_read_lines(handle))
            except OSError as exc:
                raise UsageError(
                    f"cannot read list file {spec[1:]}: {exc.strerror or exc}"
                ) from None
        else:
            yield spec


def _frame_files(spec: str, exclude: Path | None) -> list[tuple[Path, Path | None]]:
    """The frames of a folder (walked) or a glob, in natural order (2.jpg before 10.jpg)."""
    found = [(Path(source), base) for source, base in _expand_path(spec, exclude)]
    return sorted(found, key=lambda pair: natural_key(pair[0].as_posix()))


def natural_key(text: str) -> list[tuple[int, int | str]]:
    """Sort key comparing runs of digits as numbers: frame2 < frame10."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)]


def _unique(rel: PurePosixPath, used: set[str]) -> str:
    """Make ``rel`` unique among outputs by adding ``~N`` before the suffix when needed."""
    candidate = rel.as_posix()
    counter = 1
    while candidate in used:
        candidate = rel.with_name(f"{rel.stem}~{counter}{rel.suffix}").as_posix()
        counter += 1
    used.add(candidate)
    return candidate
