"""Sinks and --out state: CSV flattening, atomic files, containment, torn-line recovery."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from cvtasks.classify.config import ClassifyConfig
from cvtasks.errors import UsageError
from cvtasks.io.atomic import atomic_write, safe_join
from cvtasks.io.outdir import check_resume_compatible, read_done, write_config
from cvtasks.io.sinks import (
    INPUTS_FILE,
    OutDirSink,
    StdoutSink,
    annotated_image_rel,
    annotated_video_rel,
    flatten_rows,
)
from cvtasks.types import Failure, Frame, make_record


class Boxes:
    def __init__(self, n: int) -> None:
        self.n = n

    def to_record(self):
        return {"predictions": [{"label": "cat", "score": 0.5, "box": [1, 2, 3, 4]}] * self.n}

    def summary(self):
        return f"{self.n} boxes"

    def annotate(self, image):
        return 255 - image


def test_flatten_rows():
    rows = flatten_rows(
        {"source": "a.jpg", "frame": None, "predictions": [{"label": "x", "box": [1, 2, 3, 4]}]}
    )
    assert rows == [
        {
            "source": "a.jpg",
            "frame": None,
            "rank": 1,
            "label": "x",
            "x1": 1,
            "y1": 2,
            "x2": 3,
            "y2": 4,
        }
    ]
    person = {
        "label": "person",
        "box": [0, 0, 5, 5],
        "keypoints": {"nose": [1.5, 2.5, 0.9], "left_eye": [1, 2, 0.1]},
        "mask": {"size": [5, 5], "counts": "abc"},
    }
    (row,) = flatten_rows(
        {
            "source": "b.jpg",
            "stats": {"min": 0.1, "max": 2},
            "crop": [1, 2, 3, 4],
            "files": {"mask": "masks/b.png"},
            "predictions": [person],
        }
    )
    assert row["stats_min"] == 0.1 and row["stats_max"] == 2 and row["files_mask"] == "masks/b.png"
    assert (row["crop_x1"], row["crop_y2"]) == (1, 4)
    assert (row["nose_x"], row["nose_y"], row["nose_score"], row["left_eye_score"]) == (
        1.5,
        2.5,
        0.9,
        0.1,
    )
    assert json.loads(row["mask"]) == person["mask"] and "keypoints" not in row


def test_csv_header_waits_for_a_record_with_predictions():
    stream = io.StringIO()
    sink = StdoutSink("csv", "detect", "m", stream)
    for frame, result in [
        (Frame("empty.jpg", None, 4, 4), Boxes(0)),
        (Frame("two.jpg", None, 4, 4), Boxes(2)),
    ]:
        sink.write(frame, result, make_record(frame, "detect", "m", result))
    sink.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].split(",")[:7] == [
        "source",
        "frame",
        "task",
        "model",
        "width",
        "height",
        "rank",
    ]
    assert "x1,y1,x2,y2" in lines[0] and len(lines) == 4 and lines[1].startswith("empty.jpg")


def test_output_names():
    assert annotated_image_rel("a/b.jpg") == "a/b.jpg"
    assert annotated_image_rel("a/b.gif.ppm") == "a/b.gif.png"
    assert annotated_video_rel("v/clip.avi") == "v/clip.mp4"


@pytest.mark.parametrize("rel", ["../x.png", "/etc/passwd", "a/../../x.png", ""])
def test_safe_join_refuses_escapes(tmp_path, rel):
    with pytest.raises(UsageError):
        safe_join(tmp_path, rel)


def test_safe_join_refuses_symlinked_escape(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(UsageError):
        safe_join(tmp_path / "out", "link/x.png")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def explode(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, explode)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_read_done_cuts_torn_tail(tmp_path):
    good = [
        json.dumps({"source": "a.jpg", "frame": None}),
        json.dumps({"source": "v.mp4", "frame": 3}),
    ]
    (tmp_path / "results.jsonl").write_text("\n".join(good) + '\n{"source": "b.j')
    assert read_done(tmp_path) == {("a.jpg", None), ("v.mp4", 3)}
    assert (tmp_path / "results.jsonl").read_text() == "\n".join(good) + "\n"


def test_resume_refuses_other_task(tmp_path):
    write_config(tmp_path, "detect", ClassifyConfig())
    with pytest.raises(UsageError, match="task 'detect'"):
        check_resume_compatible(tmp_path, "classify", ClassifyConfig())
    write_config(tmp_path, "classify", ClassifyConfig(batch_size=2))
    check_resume_compatible(tmp_path, "classify", ClassifyConfig(batch_size=16))  # speed only


def test_out_sink_video_abort_leaves_no_file(tmp_path):
    sink = OutDirSink(tmp_path, save_images=True, append=False)
    image = np.zeros((16, 16, 3), np.uint8)
    frame = Frame("v.mp4", 0, 16, 16, "v.mp4", image, fps=5.0)
    files = sink.save_files(frame, Boxes(1))
    assert files == {"annotated": "v.mp4"}
    sink.write(frame, Boxes(1), make_record(frame, "t", "m", Boxes(1), files))
    sink.write(Frame("v.mp4", 1, 16, 16, "v.mp4", image, fps=5.0), Failure("bad frame"), None)
    sink.abort()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [INPUTS_FILE, "errors.jsonl", "results.jsonl"]  # no half-written mp4, no temp
    assert json.loads((tmp_path / "results.jsonl").read_text())["files"] == {"annotated": "v.mp4"}
    assert json.loads((tmp_path / "errors.jsonl").read_text()) == {
        "source": "v.mp4",
        "frame": 1,
        "error": "bad frame",
    }


def test_table_titles_are_not_wrapped_mid_word():
    stream = io.StringIO()
    model = "fasterrcnn_mobilenet_v3_large_320_fpn"
    sink = StdoutSink("table", "detect", model, stream)
    frame, result = Frame("a.jpg", None, 4, 4), Boxes(0)
    sink.write(frame, result, make_record(frame, "detect", model, result))
    sink.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"detect · {model}"  # whole, though the table is narrower
    assert not any(line.strip().startswith("fpn") for line in lines)
