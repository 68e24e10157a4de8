"""Thumbnails for the report grid, made once into the report folder (so the page never loads a
full-size image until one is opened): from what the run drew (the annotated image or video
frame, an explanation's panel) when there is one, else from the input; video frames are read in
one pass per video."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cvtasks.config import DEFAULT_MAX_IMAGE_PIXELS
from cvtasks.errors import ItemError, UsageError
from cvtasks.io.decode import decode_image
from cvtasks.io.sources import VIDEO_EXTENSIONS, expand_sequences

# Tasks whose drawing is only text the card shows anyway: their thumbnails show the input.
TEXTUAL = ("classify", "eval")


def relative(target: Path, start: Path) -> str:
    """A link from the report folder to ``target`` (posix separators)."""
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def _save_thumb(image: Image.Image, path: Path, size: int) -> None:
    image = image.convert("RGB")
    image.thumbnail((size, size))
    image.save(path, format="JPEG", quality=82)


def _image_thumb(source: Path, target: Path, size: int) -> bool:
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return True  # made by an earlier report of the same run
    try:
        image = decode_image(source, DEFAULT_MAX_IMAGE_PIXELS, min_side=size)
    except ItemError:
        return False
    _save_thumb(image, target, size)
    return True


def _frames_of(source: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The frames of a video (OpenCV) or an image sequence (its sorted files) by number."""
    found: dict[int, np.ndarray] = {}
    if source.is_dir() or source.suffix.lower() not in VIDEO_EXTENSIONS:
        try:
            frames = expand_sequences([str(source)])[0].frames
        except UsageError:
            return found
        for number in wanted:
            if number < len(frames):
                try:
                    found[number] = np.asarray(
                        decode_image(frames[number], DEFAULT_MAX_IMAGE_PIXELS)
                    )
                except ItemError:
                    continue
        return found
    import cv2

    capture = cv2.VideoCapture(str(source))
    number, last = 0, max(wanted, default=-1)
    while number <= last:
        if number in wanted:
            ok, bgr = capture.read()
            if not ok:
                break
            found[number] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        elif not capture.grab():
            break
        number += 1
    capture.release()
    return found


def _first_frames(path: Path, count: int) -> dict[int, np.ndarray]:
    """The first ``count`` frames of an annotated video by position (it holds one frame per
    record of its source, in record order)."""
    import cv2

    found: dict[int, np.ndarray] = {}
    capture = cv2.VideoCapture(str(path))
    for position in range(count):
        ok, bgr = capture.read()
        if not ok:
            break
        found[position] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    capture.release()
    return found


def _drawn(out: Path, files: dict[str, Any]) -> Path | None:
    """The picture the run drew for a record: its annotated file, else an explanation's first
    panel; None when it drew nothing (or the file is gone)."""
    name = files.get("annotated") or next(
        (v for k, v in files.items() if k.startswith("panel_")), None
    )
    path = out / str(name) if name else None
    return path if path is not None and path.is_file() else None


def _video_rate(path: Path) -> float | None:
    """Frames per second of an annotated video (PyAV), to open it at a record's frame."""
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else None
    except (av.error.FFmpegError, IndexError, OSError):
        return None


def make_thumbnails(
    out: Path,
    records: list[dict[str, Any]],
    items: list[dict[str, Any]],
    report_dir: Path,
    size: int = 256,
    progress: Callable[[int], None] = lambda n: None,
) -> None:
    """Give each item ``thumb`` (in the report folder) and ``full`` (the annotated file, or the
    input) links; ``None`` where no picture can be found."""
    thumbs = report_dir / "thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[int, Path]] = []
    by_video: dict[str, list[int]] = defaultdict(list)
    drawn_video: dict[str, Path] = {}
    rates: dict[Path, float | None] = {}
    for i, (record, item) in enumerate(zip(records, items, strict=True)):
        source = Path(str(record.get("source", "")))
        drawn = _drawn(out, record.get("files") or {})
        if record.get("frame") is not None:
            if drawn is not None:  # the k-th frame of the annotated video
                if record.get("task") not in TEXTUAL:
                    drawn_video[str(source)] = drawn
                if drawn not in rates:
                    rates[drawn] = _video_rate(drawn)
                rate = rates[drawn]
                item["full"] = relative(drawn, report_dir)
                item["video"] = True
                item["time"] = len(by_video[str(source)]) / rate if rate else 0.0
            by_video[str(source)].append(i)
            continue
        best = drawn if drawn is not None else source
        if best.is_file():
            item["full"] = relative(best, report_dir)
            # a classification's drawing is text the card shows anyway: the photo reads better
            textual = record.get("task") in TEXTUAL and source.is_file()
            jobs.append((i, source if textual else best))
    done = 0

    def one(job: tuple[int, Path]) -> None:
        i, path = job
        target = thumbs / f"{i:06d}.jpg"
        if _image_thumb(path, target, size):
            items[i]["thumb"] = relative(target, report_dir)

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for _ in pool.map(one, jobs):
            done += 1
            if done % 100 == 0:
                progress(done)
    for video, indices in by_video.items():
        if video in drawn_video:  # what was drawn on each frame, by its position
            frames = _first_frames(drawn_video[video], len(indices))
            keys = list(range(len(indices)))
        else:
            frames = _frames_of(Path(video), {int(records[i]["frame"]) for i in indices})
            keys = [int(records[i]["frame"]) for i in indices]
        for i, key in zip(indices, keys, strict=True):
            frame = frames.get(key)
            if frame is None:
                continue
            target = thumbs / f"{i:06d}.jpg"
            _save_thumb(Image.fromarray(frame), target, size)
            items[i]["thumb"] = relative(target, report_dir)
            items[i].setdefault("full", items[i]["thumb"])
