"""Read video files (and animated GIFs) frame by frame with OpenCV."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from cvtasks.errors import ItemError

MAX_SANE_FPS = 1000.0


class VideoReader:
    """Sequential RGB frames of one video; ``fps`` is None when the header has no usable rate."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ItemError("cannot open video: not a regular file")
        if self.path.stat().st_size == 0:
            raise ItemError("empty file (0 bytes)")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            self._capture.release()
            raise ItemError("cannot open video: OpenCV found no decodable stream")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps: float | None = fps if 0.0 < fps <= MAX_SANE_FPS else None
        if self.fps is None:
            self.fps = self._estimate_fps()
        hint = float(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count_hint = int(hint) if 0 < hint < 1e9 else 0
        self.frames_read = 0
        self.dropped = 0  # files never drop frames

    def frames(self, stride: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame_number, rgb_uint8)`` for every ``stride``-th frame until the stream ends.

        The header's frame count is not trusted: reading goes on until the decoder stops.
        Skipped frames are only grabbed, not decoded into pixels. When the header has no usable
        frame rate, ``fps`` was estimated from the first frames' timestamps when opening.
        """
        index = 0
        try:
            while True:
                if index % stride == 0:
                    ok, bgr = self._capture.read()
                    if not ok or bgr is None:
                        break
                    yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                elif not self._capture.grab():
                    break
                index += 1
            self.frames_read = index
        finally:
            self.close()

    def _estimate_fps(self) -> float | None:
        """Frames per second from the first decoded frames' timestamps; the stream reopens."""
        stamps = []
        for _ in range(8):
            if not self._capture.grab():
                break
            stamps.append(float(self._capture.get(cv2.CAP_PROP_POS_MSEC)))
        self._capture.release()
        self._capture = cv2.VideoCapture(str(self.path))
        steps = [b - a for a, b in itertools.pairwise(stamps) if b > a]
        if len(steps) < 3:
            return None
        rate = 1000.0 / float(np.median(steps))
        return rate if 0 < rate <= MAX_SANE_FPS else None

    def ended_early(self) -> str | None:
        """A warning when fewer frames were decoded than the header promised."""
        promised = self.frame_count_hint
        if promised > 0 and self.frames_read < promised * 0.98 - 1:
            return (
                f"decoding stopped at frame {self.frames_read} but the header says {promised}: "
                "the file may be truncated or corrupt (or its header wrong)"
            )
        return None

    def close(self) -> None:
        self._capture.release()
