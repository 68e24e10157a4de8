"""`cvtasks track` on scenes with known truth (detections from files), and its plumbing with a
random-weight detector. The reference is the `trackers` package's ByteTrack called directly."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from collections import Counter
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers import jsonl
from track_scenes import crossing_scene, write_sequence

LINES = ["--line", "mid=160,0,160,240", "--line", "row=0,120,320,120"]
ZONE = ["--zone", "corner=240,180,300,180,300,235,240,235"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_sequence(crossing_scene(), tmp_path_factory.mktemp("mot") / "CROSS-01")


@pytest.fixture(scope="module")
def tracked(scene, tmp_path_factory):
    """One run with everything on: lines, zone, evaluation, annotated video, -f jsonl."""
    from typer.testing import CliRunner

    from cvtasks.cli.app import app

    out = tmp_path_factory.mktemp("tracked") / "out"
    args = ["track", scene / "img1", "--detections", scene / "det" / "det.txt", *LINES, *ZONE]
    args += ["--eval-gt", scene.parent, "-o", out, "--save-images", "-f", "jsonl", "-q"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return out, jsonl(result.stdout), result.stderr


def reference_bytetrack(scene: Path, folder: Path, conf: float = 0.1) -> Path:
    """The package's own ByteTrack on the same detections, written as MOT rows."""
    import supervision as sv
    from trackers import ByteTrackTracker

    rows: dict[int, list[list[float]]] = {}
    for line in (scene / "det" / "det.txt").read_text().splitlines():
        frame, _, x, y, w, h, score = (float(v) for v in line.split(",")[:7])
        if score >= conf:
            rows.setdefault(int(frame), []).append([x, y, x + w, y + h, score])
    tracker = ByteTrackTracker(lost_track_buffer=30, frame_rate=10.0)
    lines = []
    for frame in range(1, 81):
        boxes = np.array(rows.get(frame, []), dtype=np.float32).reshape(-1, 5)
        found = tracker.update(sv.Detections(xyxy=boxes[:, :4], confidence=boxes[:, 4]))
        for (x1, y1, x2, y2), score, tid in zip(
            found.xyxy, found.confidence, found.tracker_id, strict=True
        ):
            if tid >= 0:
                lines.append(
                    f"{frame},{tid + 1},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1"
                )
    path = folder / "reference.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tracking_is_no_worse_than_the_packages_own_bytetrack(scene, tracked, tmp_path):
    from trackers.eval import evaluate_mot_sequence

    out, _, stderr = tracked
    (entry,) = json.loads((out / "analytics.json").read_text())["sources"]
    ours = entry["eval"]
    theirs = evaluate_mot_sequence(
        scene / "gt" / "gt.txt", reference_bytetrack(scene, tmp_path), ["CLEAR", "HOTA", "Identity"]
    )
    assert (
        ours["IDF1"] >= theirs.Identity.IDF1 - 1e-6 and ours["MOTA"] >= theirs.CLEAR.MOTA - 1e-6
    )  # 6 decimals
    assert ours["IDSW"] <= theirs.CLEAR.IDSW
    assert ours["IDF1"] > 0.95 and ours["MOTA"] > 0.9 and ours["HOTA"] > 0.8
    # the MOT file is what TrackEval-style tools read (the package's own loader)
    again = evaluate_mot_sequence(
        scene / "gt" / "gt.txt", out / "mot" / "CROSS-01.txt", ["Identity"]
    )
    assert abs(again.Identity.IDF1 - ours["IDF1"]) < 1e-6
    assert f"track {scene / 'img1'}: 80 frames, 4 tracks" in stderr and "IDF1 0.9" in stderr


def test_line_and_zone_counts_are_exact(tracked):
    out, records, _ = tracked
    (entry,) = json.loads((out / "analytics.json").read_text())["sources"]
    mid, row = entry["lines"]["mid"], entry["lines"]["row"]
    # person 2 walks left across the downward line mid ("in"), person 1 right ("out");
    # the third walks down across row, a line drawn left to right ("in")
    assert (mid["in"], mid["out"], row["in"], row["out"]) == (1, 1, 1, 0)
    corner = entry["zones"]["corner"]
    assert (corner["entries"], corner["max"]) == (1, 1)
    # present 41 frames at 10 fps; the tracker gives it an id from its second frame
    assert corner["dwell_s"]["max"] == pytest.approx(4.0, abs=0.11)
    assert records[-1]["counts"]["lines"] == {
        "mid": {"in": 1, "out": 1},
        "row": {"in": 1, "out": 0},
    }
    assert [r["frame"] for r in records] == list(range(80))
    ids = {p["track_id"] for r in records for p in r["predictions"]}
    assert all(isinstance(i, int) and i >= 1 for i in ids)


def test_outputs_are_read_back_by_their_tools(tracked):
    out, records, _ = tracked
    tracks = [json.loads(line) for line in (out / "tracks.jsonl").read_text().splitlines()]
    assert sorted(t["track_id"] for t in tracks) == sorted(
        {p["track_id"] for r in records for p in r["predictions"]}
    )
    assert all(t["trajectory"][0][0] == t["first_frame"] for t in tracks)
    with av.open(str(out / "CROSS-01.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.average_rate == 10
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == 80 and frames[0].shape == (240, 320, 3)
    rows = (out / "mot" / "CROSS-01.txt").read_text().splitlines()
    assert len(rows) == sum(len(r["predictions"]) for r in records)
    assert all(len(row.split(",")) == 10 and row.endswith(",-1,-1,-1") for row in rows)


def test_stdout_mot_equals_the_file(cli, scene, tracked):
    out, _, _ = tracked
    result = cli(
        ["track", scene / "img1", "--detections", scene / "det" / "det.txt", "-f", "mot", "-q"]
    )
    assert result.exit_code == 0
    assert result.stdout == (out / "mot" / "CROSS-01.txt").read_text()


def test_every_tracker_runs_and_botsort_sees_the_frames(cli, scene):
    for tracker in ("sort", "ocsort", "botsort"):
        result = cli(
            ["track", scene / "img1", "--detections", scene / "det" / "det.txt", "--tracker", tracker,
             "--eval-gt", scene.parent, "-f", "jsonl", "-q"]
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert "IDF1 0.9" in result.stderr, (tracker, result.stderr)


def test_vid_stride_reads_every_nth_frame(cli, scene, tmp_path):
    out = tmp_path / "out"
    result = cli(
        ["track", scene / "img1", "--detections", scene / "det" / "det.txt", "--vid-stride", "2",
         "-o", out, "-f", "jsonl", "-q"]
    )  # fmt: skip
    assert result.exit_code == 0
    assert [r["frame"] for r in jsonl(result.stdout)] == list(range(0, 80, 2))
    (entry,) = json.loads((out / "analytics.json").read_text())["sources"]
    assert entry["frames"] == 40 and entry["fps"] == 10.0


def test_resume_goes_by_source(cli, scene, tmp_path):
    short = tmp_path / "SHORT-01"
    (short / "img1").mkdir(parents=True)
    for frame in sorted((scene / "img1").iterdir())[:30]:
        shutil.copy(frame, short / "img1")
    out = tmp_path / "out"
    args = ["track", scene / "img1", short / "img1", "-m", "fasterrcnn_mobilenet_v3_large_320_fpn"]
    args += ["-w", "none", "-o", out, "-q", "--min-size", "64"]
    assert cli(args).exit_code == 0
    # simulate a run interrupted in the second source: its entry is not in analytics.json yet
    analytics = json.loads((out / "analytics.json").read_text())
    analytics["sources"] = analytics["sources"][:1]
    (out / "analytics.json").write_text(json.dumps(analytics))
    resumed = cli([*args, "--resume"])
    assert resumed.exit_code == 0
    assert "1 source(s) already tracked, 1 to go" in resumed.stderr
    keys = Counter((r["source"], r["frame"]) for r in jsonl((out / "results.jsonl").read_text()))
    assert len(keys) == 110 and set(keys.values()) == {1}
    sources = json.loads((out / "analytics.json").read_text())["sources"]
    assert [s["source"] for s in sources] == [str(scene / "img1"), str(short / "img1")]


def test_random_weight_detector_plumbing(cli, small_models, photos, tmp_path):
    """A video of one photo (a random-weight detector finds the same boxes in every frame)."""
    video = tmp_path / "still.mp4"
    still = cv2.resize(cv2.imread(str(photos["astronaut"])), (256, 256))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (256, 256))
    for _ in range(4):
        writer.write(still)
    writer.release()
    model = "fasterrcnn_mobilenet_v3_large_320_fpn"
    result = cli(
        ["track", video, "-m", model, "-w", small_models[model], "--conf", "0.05",
         "--track-activation", "0.05", "--high-conf", "0.05", "--min-hits", "1", "-f", "jsonl", "-q"]
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    assert [r["frame"] for r in records] == list(range(4))
    assert all(r["task"] == "track" and r["model"] == model for r in records)
    ids = [sorted(p["track_id"] for p in r["predictions"]) for r in records]
    # most of the (many, overlapping) random boxes keep their ids from frame to frame
    assert ids[2] and len(set(ids[2]) & set(ids[3])) >= 0.8 * len(ids[3])


def test_pose_keypoints_travel_with_their_track(cli, small_models, photos, tmp_path):
    folder = tmp_path / "people"
    folder.mkdir()
    for i in range(3):
        shutil.copy(photos["astronaut"], folder / f"{i:03d}.jpg")
    result = cli(
        ["track", folder, "-m", "keypointrcnn_resnet50_fpn", "-w", small_models["keypointrcnn_resnet50_fpn"],
         "--conf", "0.05", "--track-activation", "0.05", "--high-conf", "0.05", "--min-size", "320",
         "--min-hits", "1",
         "-f", "jsonl", "-q"]
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    people = [p for r in jsonl(result.stdout) for p in r["predictions"]]
    assert people and all(len(p["keypoints"]) == 17 and p["track_id"] >= 1 for p in people)


# ------------------------------------------------------------------ bad input


def test_bad_shapes_and_files_are_one_line_errors(cli, scene, tmp_path):
    base = ["track", scene / "img1", "--detections", scene / "det" / "det.txt", "-q"]
    for extra, message in [
        (["--line", "door=1,2,3"], "needs 4 numbers"),
        (["--zone", "z=0,0,10,10,10,0,0,10"], "intersects itself"),
        (["--ground", "0,0,1,1,2,2,3,3:0,0,1,0,1,1,0,1"], "on one line"),
        (["--line", "a=0,0,1,1", "--line", "a=0,1,1,0"], "the name 'a' is used twice"),
    ]:
        result = cli([*base, *extra])
        assert result.exit_code == 2 and message in result.stderr, (extra, result.stderr)
        assert "Traceback" not in result.stderr
    bad = tmp_path / "det.txt"
    bad.write_text("1,-1,10,10,20,20,0.9\n2,-1,10,x,20,20,0.9\n")
    result = cli(["track", scene / "img1", "--detections", bad, "-q"])
    assert result.exit_code == 2 and f"{bad}:2: numbers expected" in result.stderr
    two = cli(["track", scene / "img1", scene / "img1", "--detections", scene / "det" / "det.txt"])
    assert two.exit_code == 2 and "one video or sequence, but 2 inputs" in two.stderr


def test_detections_beyond_the_video_fail_the_source(cli, scene, tmp_path):
    short = tmp_path / "img1"
    short.mkdir()
    for frame in sorted((scene / "img1").iterdir())[:40]:
        shutil.copy(frame, short)
    out = tmp_path / "out"
    result = cli(
        ["track", short, "--detections", scene / "det" / "det.txt", "-o", out, "-f", "jsonl"]
    )
    assert result.exit_code == 1
    assert (
        "has detections up to frame 80 (1-based) but the source ended at frame 40" in result.stderr
    )
    assert len(jsonl(result.stdout)) == 40  # what it could track is kept
    assert json.loads((out / "errors.jsonl").read_text())["frame"] is None


def test_unreachable_stream_fails_its_source(cli):
    result = cli(
        [
            "track",
            "http://127.0.0.1:9/stream.mjpg",
            "--detections",
            "/dev/null",
            "--reconnect",
            "0",
            "-q",
        ]
    )
    assert result.exit_code in (1, 2)
    result = cli(["track", "http://127.0.0.1:9/stream.mjpg", "-w", "none", "-m",
                  "fasterrcnn_mobilenet_v3_large_320_fpn", "--reconnect", "0", "-q"])  # fmt: skip
    assert result.exit_code == 1
    assert (
        "http://127.0.0.1:9/stream.mjpg" in result.stderr
        and "cannot open the stream" in result.stderr
    )


def test_exactly_one_opencv_is_installed():
    names = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
    opencv = sorted(n for n in names if n.startswith("opencv"))
    assert opencv == ["opencv-python"], opencv  # trackers requires it; -headless would clash
    assert cv2.__version__ and hasattr(cv2, "VideoCapture")


def test_no_tracks_says_which_threshold_held_them_back(cli, scene, tmp_path):
    """Detections scoring 0.547 give no ByteTrack tracks (it starts tracks above both 0.7 and
    0.6); the warning names both options, and lowering both tracks them."""
    rows = (scene / "det" / "det.txt").read_text().splitlines()
    low = tmp_path / "det.txt"
    low.write_text("\n".join(",".join([*r.split(",")[:6], "0.547"]) for r in rows) + "\n")
    quiet = cli(["track", scene / "img1", "--detections", low, "-q", "-f", "jsonl"])
    assert quiet.exit_code == 0, quiet.stderr
    assert "but no tracks: the best scores 0.547" in quiet.stderr
    assert "--track-activation 0.7 and --high-conf 0.6" in quiet.stderr
    only_one = cli(
        ["track", scene / "img1", "--detections", low, "-q", "--track-activation", "0.3"]
    )
    assert "--track-activation 0.3 and --high-conf 0.6" in only_one.stderr
    both = cli(["track", scene / "img1", "--detections", low, "-q", "-f", "jsonl",
                "--track-activation", "0.3", "--high-conf", "0.5"])  # fmt: skip
    assert both.exit_code == 0 and "no tracks" not in both.stderr
    assert any(p.get("track_id") for r in jsonl(both.stdout) for p in r["predictions"])
