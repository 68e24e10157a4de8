"""Live sources (a camera index, rtsp://, rtmp://, http(s):// streams) read on a thread.

Frames go into a small bounded queue; when inference is slower than the source the oldest
frames are dropped and counted (a file is never read this way, so files never drop). A stream
that stops (or cannot be opened) is reopened with exponential backoff; after ``reconnect``
failed attempts in a row the source fails with a one-line reason.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from cvtasks.errors import ItemError

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_SANE_FPS = 240.0
TIMEOUT_MS = 5000

# FFmpeg's own log lines ("Stream ends prematurely ...") are noise on stderr: failures are
# reported by cvtasks itself.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # "can't open ..." warnings


class LiveReader:
    """Frames of a live source, numbered in the order the source sent them."""

    def __init__(self, source: str, *, reconnect: int = 3, queue: int = 4) -> None:
        self.source = source
        self.target: int | str = int(source) if source.isdigit() else source
        self.reconnect = reconnect
        self.capacity = max(1, queue)
        self.frames_read = 0
        self.dropped = 0
        self.reconnects = 0
        self.fps: float | None = None
        self._capture: Any = None

    def _open(self) -> bool:
        if isinstance(self.target, int):
            capture = cv2.VideoCapture(self.target)
        else:  # a stream that stalls this long counts as dropped (FFmpeg's default: 30 s)
            timeouts = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                TIMEOUT_MS,
            ]
            capture = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, timeouts)
        if not capture.isOpened():
            capture.release()
            return False
        rate = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if self.fps is None and 0.0 < rate <= MAX_SANE_FPS:
            self.fps = rate
        self._capture = capture
        return True

    def _reopen(self, stop: threading.Event, first: bool) -> bool:
        """Open the source, retrying with backoff; False once the attempts are spent."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        if first and self._open():
            return True
        delay = FIRST_BACKOFF_S
        for _ in range(self.reconnect):
            if stop.wait(delay):
                return False
            delay = min(delay * 2, MAX_BACKOFF_S)
            if self._open():
                self.reconnects += 1
                return True
        return False

    def frames(self, stride: int = 1) -> Iterator[tuple[int, np.ndarray | ItemError]]:
        """Every ``stride``-th frame while the source lives; raises ItemError when the source
        cannot be opened or reopened."""
        slots: deque[tuple[int, np.ndarray]] = deque()
        ready = threading.Condition()
        stop = threading.Event()
        finished: list[ItemError | None] = []

        def read() -> None:
            index, first = 0, True
            started = time.monotonic()
            while not stop.is_set():
                if self._capture is None and not self._reopen(stop, first):
                    what = "cannot open" if first else "lost and could not reconnect to"
                    attempts = f"after {self.reconnect} reconnection attempt(s)"
                    error = None if stop.is_set() else ItemError(f"{what} the stream {attempts}")
                    with ready:
                        finished.append(error)
                        ready.notify()
                    return
                first = False
                ok, bgr = self._capture.read()
                if not ok or bgr is None:
                    self._capture.release()
                    self._capture = None
                    continue
                if index % stride == 0:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    with ready:
                        if len(slots) >= self.capacity:
                            slots.popleft()  # inference is behind: the oldest frame goes
                            self.dropped += 1
                        slots.append((index, rgb))
                        ready.notify()
                index += 1
                self.frames_read = index
                if self.fps is None and index == 20:  # no usable rate in the header
                    self.fps = index / max(time.monotonic() - started, 1e-6)

        thread = threading.Thread(target=read, name="cvtasks-live", daemon=True)
        thread.start()
        try:
            while True:
                with ready:
                    while not slots and not finished:
                        ready.wait(0.5)
                    if slots:
                        item: tuple[int, np.ndarray | ItemError] = slots.popleft()
                    else:
                        error = finished[0]
                        if error is not None:
                            raise error  # the source failed (not one frame of it)
                        return
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)
            if self._capture is not None:
                self._capture.release()
                self._capture = None

    def ended_early(self) -> str | None:
        return None
