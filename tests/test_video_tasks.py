"""Every task streams videos: one record per (strided) frame and an annotated mp4."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from helpers import jsonl


def write_clip(path, frames=30, size=(160, 120)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, size)
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.rectangle(frame, (5 + 3 * i, 30), (45 + 3 * i, 90), (30, 200, 240), -1)
        writer.write(frame)
    writer.release()


def video_facts(path) -> tuple[str, float, int]:
    """Codec, frame rate and decoded frame count, as PyAV (FFmpeg) reads them."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.name, float(stream.average_rate), frames


@pytest.mark.parametrize(
    ("task", "model", "stride", "extra"),
    [
        ("detect", "fasterrcnn_mobilenet_v3_large_320_fpn", 1, ["--conf", "0.05"]),
        ("segment", "lraspp_mobilenet_v3_large", 4, []),
    ],
)
def test_video_records_and_annotated_mp4(cli, small_models, tmp_path, task, model, stride, extra):
    clip = tmp_path / "clip.mp4"
    write_clip(clip)
    out = tmp_path / "out"
    result = cli(
        [
            task,
            clip,
            "-m",
            model,
            "-w",
            small_models[model],
            "--vid-stride",
            stride,
            "-o",
            out,
            "--save-images",
            "-q",
            "-f",
            "jsonl",
            *extra,
        ]
    )
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    assert [r["frame"] for r in records] == list(range(0, 30, stride))
    assert all(r["files"]["annotated"] == "clip.mp4" for r in records)
    # H.264 at the source rate divided by the stride: it plays at real speed
    assert video_facts(out / "clip.mp4") == ("h264", pytest.approx(15.0 / stride), len(records))
    if task == "segment":
        assert records[1]["files"]["mask"] == "masks/clip/000004.png"
        assert (out / "masks/clip/000004.png").is_file()
