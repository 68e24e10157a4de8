"""`--crop faces` for classify, train and eval: the classifier judges the face, not the frame.
On a liveness set whose fake faces differ from real ones only inside the face, the model that
sees face crops separates them; the one that sees the whole frame cannot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import jsonl
from liveness_set import write_liveness_set
from real_weights import mtcnn_dir

RECIPE = ["-m", "mobilenet_v2", "--epochs", "3", "--freeze", "backbone", "--lr", "0.01", "-q"]


@pytest.fixture(scope="module")
def liveness(tmp_path_factory):
    root = tmp_path_factory.mktemp("liveness")
    write_liveness_set(root / "data" / "train", 16, seed=0)
    write_liveness_set(root / "data" / "val", 6, seed=1)
    write_liveness_set(root / "test", 10, seed=2)
    return root


def test_judging_the_face_beats_judging_the_frame(cli, liveness, mnv2_file, tmp_path):
    faces = ["--face-weights", mtcnn_dir()]
    cropped, whole = tmp_path / "crop", tmp_path / "whole"
    trained = cli(["train", liveness / "data", "-w", mnv2_file, *RECIPE, "-o", cropped,
                   "--crop", "faces", *faces])  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    assert cli(["train", liveness / "data", "-w", mnv2_file, *RECIPE, "-o", whole]).exit_code == 0
    run = (cropped / "config.yaml").read_text()
    assert "crop:\n    faces: true" in run  # the run folder remembers how it was shown faces

    # eval -w RUN crops as the run did, without being told
    on_faces = cli(["eval", "classify", liveness / "test", "-w", cropped, *faces, "-f", "json"])
    on_frames = cli(["eval", "classify", liveness / "test", "-w", whole, "-f", "json"])
    assert on_faces.exit_code == on_frames.exit_code == 0, on_faces.stderr
    face_report, frame_report = json.loads(on_faces.stdout), json.loads(on_frames.stdout)
    assert face_report["crop"].startswith("faces") and face_report["no_face"] == []
    assert face_report["n"] == 20
    assert face_report["top1"] >= 0.9, face_report["top1"]
    assert frame_report["top1"] <= face_report["top1"] - 0.3, frame_report["top1"]

    # classify -w RUN gives eval's answers, one verdict per face with its box
    classified = cli(["classify", liveness / "test", "-w", cropped, *faces, "-f", "jsonl", "-q"])
    records = jsonl(classified.stdout)
    right = sum(r["predictions"][0]["label"] == Path(r["source"]).parent.name for r in records)
    assert right / len(records) == pytest.approx(face_report["top1"])
    assert all(len(r["faces"]) == 1 and len(r["faces"][0]["box"]) == 4 for r in records)


def test_images_without_a_face_are_recorded_as_such(cli, photos, mnv2_file, tmp_path):
    faces = ["--face-weights", mtcnn_dir()]
    result = cli(["classify", photos["astronaut"], photos["chelsea"], "-m", "mobilenet_v2",
                  "-w", mnv2_file, "--crop", "faces", *faces, "-f", "jsonl", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = {Path(r["source"]).name: r for r in jsonl(result.stdout)}
    assert records["chelsea.jpg"]["faces"] == [] and records["chelsea.jpg"]["predictions"] == []
    (face,) = records["astronaut.jpg"]["faces"]
    assert face["predictions"] == records["astronaut.jpg"]["predictions"]
    assert face["box"][0] == pytest.approx(180, abs=3)

    data = tmp_path / "data"  # eval: a face-less image is listed, not scored, not a failure
    for part, label, photo, name in [
        ("train", "real", "astronaut", "a.jpg"), ("train", "fake", "chelsea", "chelsea.jpg"),
        ("train", "fake", "astronaut", "b.jpg"), ("val", "real", "astronaut", "c.jpg"),
        ("val", "fake", "astronaut", "d.jpg"),
    ]:  # fmt: skip
        (data / part / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(photos[photo], data / part / label / name)
    trained = cli(["train", data, "-w", mnv2_file, *RECIPE, "-o", tmp_path / "run",
                   "--crop", "faces", *faces])  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    assert "chelsea.jpg: no face found (--crop faces)" in trained.stderr
    data = data / "train"
    report = cli(["eval", "classify", data, "-w", tmp_path / "run", *faces, "-f", "json"])
    assert report.exit_code == 0, report.stderr
    result = json.loads(report.stdout)
    assert result["n"] == 2 and [Path(p).name for p in result["no_face"]] == ["chelsea.jpg"]
    assert "1 image(s) without a face are not scored" in report.stderr


def test_face_weights_offline_is_exit_3_with_the_fix(cli, photos, mnv2_file):
    result = cli(["classify", photos["astronaut"], "-m", "mobilenet_v2", "-w", mnv2_file,
                  "--crop", "faces", "-q"])  # fmt: skip
    assert result.exit_code == 3
    assert "cvtasks models pull mtcnn" in result.stderr and "--face-weights" in result.stderr


def test_a_video_gets_one_verdict_per_tracked_face(cli, mnv2_file, tmp_path):
    import av
    import numpy as np
    from liveness_set import astronaut_face
    from PIL import Image

    face = astronaut_face()
    video = tmp_path / "two.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 320, "yuv420p"
        for k in range(8):
            canvas = Image.new("RGB", (640, 320), (90, 110, 130))
            canvas.paste(face, (20 + 15 * k, 80))  # walks right
            canvas.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (480, 100))  # stays
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(canvas), "rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = cli(["classify", video, "-m", "mobilenet_v2", "-w", mnv2_file, "--crop", "faces",
                  "--face-weights", mtcnn_dir(), "--aggregate", "mean", "-f", "jsonl", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    frames = [r for r in records if not r.get("aggregate")]
    assert len(frames) == 8 and all(len(r["faces"]) == 2 for r in frames)
    ids = {face["track_id"] for r in frames for face in r["faces"]}
    assert len(ids) == 2
    verdicts = [r for r in records if r.get("aggregate")]
    assert sorted(v["track_id"] for v in verdicts) == sorted(ids)
    for verdict in verdicts:  # the mean over that face's frames only
        mine = [
            next(p["score"] for p in f["predictions"] if p["label"] == verdict["verdict"]["label"])
            for r in frames
            for f in r["faces"]
            if f["track_id"] == verdict["track_id"]
            and any(p["label"] == verdict["verdict"]["label"] for p in f["predictions"])
        ]
        assert verdict["frames"] == 8
        if len(mine) == 8:
            assert verdict["verdict"]["score"] == pytest.approx(sum(mine) / 8, abs=1e-5)
