"""Annotated videos as browsers play them: H.264 (libx264, yuv420p) in MP4 with the index up
front (``+faststart``), written with PyAV into a temp file renamed into place when complete."""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from cvtasks.io.atomic import temp_path_for

DEFAULT_FPS = 25.0
CRF = "20"  # visually near-lossless for annotations; libx264's default is 23


def output_rate(fps: float | None, stride: int) -> Fraction:
    """Frames per second of the written video: the source's rate divided by ``--vid-stride``,
    so that it plays at real speed (``25/1``, ``30000/1001`` ...)."""
    rate = Fraction(fps or DEFAULT_FPS).limit_denominator(1001) / stride
    return rate.limit_denominator(100_000)


def _even(rgb: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: repeat the last row/column where a side is odd."""
    height, width = rgb.shape[:2]
    if height % 2:
        rgb = np.concatenate([rgb, rgb[-1:]], axis=0)
    if width % 2:
        rgb = np.concatenate([rgb, rgb[:, -1:]], axis=1)
    return np.ascontiguousarray(rgb)


class VideoOut:
    """An H.264 MP4 being written for one source; renamed onto ``target`` only when complete."""

    def __init__(self, source: str, target: Path, rate: Fraction) -> None:
        self.source = source
        self.target = target
        self.rate = rate
        self.tmp = temp_path_for(target)
        self._container: Any = None
        self._stream: Any = None
        self.frames = 0

    def _open(self, width: int, height: int) -> None:
        import av

        self._container = av.open(
            str(self.tmp), mode="w", format="mp4", options={"movflags": "+faststart"}
        )
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": CRF, "preset": "veryfast"}
        self._stream = stream

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame_rgb = _even(rgb)
        if self._container is None:
            self._open(frame_rgb.shape[1], frame_rgb.shape[0])
        frame = av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")
        frame.pts = self.frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def finish(self) -> None:
        """Flush the encoder, close the file and rename it into place."""
        if self._container is None:
            self.discard()
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        """Drop a video that cannot be completed (interrupted run)."""
        if self._container is not None:
            with contextlib.suppress(Exception):  # a half-written stream may refuse to close
                self._container.close()
            self._container = None
        self.tmp.unlink(missing_ok=True)
