"""Streams of frames in order: video files, image sequences and live sources share one shape.

A reader yields ``(frame number, RGB uint8 array)`` for every ``stride``-th frame, or
``(frame number, ItemError)`` for a frame that cannot be decoded (the frame fails, the stream
goes on). It knows its frame rate and how many frames it read and dropped.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from cvtasks.errors import ItemError
from cvtasks.io.decode import decode_image
from cvtasks.io.sources import InputItem
from cvtasks.io.video import VideoReader
from cvtasks.log import warn

FrameOrError = tuple[int, "np.ndarray | ItemError"]
DEFAULT_SEQUENCE_FPS = 30.0


class FrameReader(Protocol):
    """What the engine needs of a stream of frames."""

    fps: float | None
    frames_read: int
    dropped: int  # live sources: frames discarded because inference fell behind

    def frames(self, stride: int = 1) -> Iterator[FrameOrError]: ...

    def ended_early(self) -> str | None: ...


@dataclass
class ReaderOptions:
    """Options of the stream readers (from the config of the command)."""

    max_pixels: int
    sequence_fps: float | None = None  # image sequences: frames per second (None: seqinfo/30)
    reconnect: int = 3  # live sources: reconnection attempts before the source fails
    queue: int = 4  # live sources: frames buffered ahead of inference (oldest dropped)
    on_corrupt: str = "warn"  # image files whose JPEG data is damaged: warn, fail or ignore


def sequence_fps(folder: Path) -> float | None:
    """``frameRate`` from a MOTChallenge ``seqinfo.ini`` beside or above the frames."""
    for candidate in (folder / "seqinfo.ini", folder.parent / "seqinfo.ini"):
        if candidate.is_file():
            parser = configparser.ConfigParser()
            try:
                parser.read(candidate, encoding="utf-8")
                rate = float(parser.get("Sequence", "frameRate"))
            except (configparser.Error, ValueError, UnicodeDecodeError):
                continue
            if rate > 0:
                return rate
    return None


class SequenceReader:
    """The frames of an image sequence, decoded one by one in order."""

    def __init__(self, item: InputItem, options: ReaderOptions) -> None:
        self.paths = list(item.frames)
        self.max_pixels = options.max_pixels
        self.on_corrupt = options.on_corrupt
        self.fps: float | None = (
            options.sequence_fps or sequence_fps(item.path) or DEFAULT_SEQUENCE_FPS
        )
        self.frames_read = 0
        self.dropped = 0

    def frames(self, stride: int = 1) -> Iterator[FrameOrError]:
        for number in range(0, len(self.paths), stride):
            try:
                image = decode_image(self.paths[number], self.max_pixels, None, self.on_corrupt)
                if "corrupt" in image.info:
                    warn(f"{self.paths[number]}: {image.info['corrupt']}")
                self.frames_read = number + 1
                yield number, np.asarray(image)
            except ItemError as exc:
                yield number, ItemError(f"{self.paths[number].name}: {exc}")
        self.frames_read = len(self.paths)

    def ended_early(self) -> str | None:
        return None


def open_reader(item: InputItem, options: ReaderOptions) -> FrameReader:
    """The reader for a video, an image sequence or a live source."""
    if item.kind == "sequence":
        return SequenceReader(item, options)
    if item.kind == "live":
        from cvtasks.io.live import LiveReader

        return LiveReader(item.source, reconnect=options.reconnect, queue=options.queue)
    return VideoReader(item.path)
