"""Read video files (and animated GIFs) frame by frame with OpenCV."""

from __future__ import annotations

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
            raise ItemError("cannot open video: file not found")
        if self.path.stat().st_size == 0:
            raise ItemError("empty file (0 bytes)")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            self._capture.release()
            raise ItemError("cannot open video: OpenCV found no decodable stream")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps: float | None = fps if 0.0 < fps <= MAX_SANE_FPS else None
        self.frame_count_hint = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def frames(self, stride: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame_number, rgb_uint8)`` for every ``stride``-th frame until the stream ends.

        Skipped frames are only grabbed, not decoded into pixels.
        """
        index = 0
        try:
            while True:
                if index % stride == 0:
                    ok, bgr = self._capture.read()
                    if not ok or bgr is None:
                        return
                    yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                elif not self._capture.grab():
                    return
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        self._capture.release()
