"""`--engine ray`: the same records, files, failures and exit codes as the local engine, on a
local Ray instance (2 CPUs) started once for the module, and on a head node started with
`ray start --head --block` in its own process group."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import jsonl, noise_video
from PIL import Image

ray = pytest.importorskip("ray")

CVTASKS = [sys.executable, "-m", "cvtasks"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance for the module; runs in this process join it."""
    from cvtasks.engines.ray_connect import quiet_ray_logs

    quiet_ray_logs()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(photos, tmp_path_factory) -> Path:
    """Photos, rotated copies, a corrupt JPEG and a short video, in one folder."""
    folder = tmp_path_factory.mktemp("ray_inputs")
    for name, path in photos.items():
        image = Image.open(path)
        image.save(folder / f"{name}.jpg")
        for angle in (90, 180):
            image.rotate(angle, expand=True).save(folder / f"{name}_{angle}.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    noise_video(folder / "clip.mp4", 6)
    return folder


def same_records(ours: list[dict], theirs: list[dict], score_key: str = "score") -> None:
    """Equal records (order included), scores within 1e-5."""
    assert [(r["source"], r["frame"]) for r in ours] == [(r["source"], r["frame"]) for r in theirs]

    def close(a, b, key=""):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                close(a[k], b[k], k)
        elif isinstance(a, list):
            assert len(a) == len(b), key
            for x, y in zip(a, b, strict=True):
                close(x, y, key)
        elif isinstance(a, float) or isinstance(b, float):
            # scores within 1e-5; coordinates are rounded to 2 decimals, so one unit of that
            assert a == pytest.approx(b, abs=1e-5 if key == score_key else 0.0101), key
        else:
            assert a == b, key

    for a, b in zip(ours, theirs, strict=True):
        close(a, b)


def test_classify_equals_the_local_engine(cli, r18_file, inputs, tmp_path):
    base = ["classify", inputs, "-m", "resnet18", "-w", r18_file, "-b", "4", "-q", "-f", "jsonl"]
    local = cli([*base, "-o", tmp_path / "local"])
    on_ray = cli([*base, "-o", tmp_path / "ray", "--engine", "ray", "--ray-actors", "2"])
    assert local.exit_code == on_ray.exit_code == 1, on_ray.stderr  # the corrupt JPEG
    same_records(jsonl(on_ray.stdout), jsonl(local.stdout))
    assert len(jsonl(local.stdout)) == 9 + 6  # 9 photos, 6 video frames
    for name in ("results.jsonl", "errors.jsonl"):
        ours = jsonl((tmp_path / "ray" / name).read_text())
        theirs = jsonl((tmp_path / "local" / name).read_text())
        same_records(ours, theirs) if name == "results.jsonl" else None
        assert name == "results.jsonl" or ours == theirs
    assert "broken.jpg" in on_ray.stderr and on_ray.stderr.count("error:") == 1
    config = (tmp_path / "ray" / "config.yaml").read_text()
    assert "engine: ray" in config
    # --resume on Ray: what is done is skipped; the new photo (and the failed one) run again
    done = (tmp_path / "ray" / "results.jsonl").read_text()
    extra = tmp_path / "extra.jpg"
    shutil.copy(inputs / "coffee.jpg", extra)
    again = cli(
        [*base[:2], extra, *base[2:], "-o", tmp_path / "ray", "--engine", "ray", "--resume"]
    )
    assert again.exit_code == 1 and "broken.jpg" in again.stderr, again.stderr
    assert [Path(r["source"]).name for r in jsonl(again.stdout)] == ["extra.jpg"]
    text = (tmp_path / "ray" / "results.jsonl").read_text()
    assert text.startswith(done) and len(jsonl(text)) == 16
    coffee = next(r for r in jsonl(local.stdout) if r["source"].endswith("coffee.jpg"))
    same_records([{**jsonl(text)[-1], "source": coffee["source"]}], [coffee])


def test_detect_equals_the_local_engine_with_files(cli, small_models, photos, tmp_path):
    model = "fasterrcnn_mobilenet_v3_large_320_fpn"
    base = ["detect", *photos.values(), "-m", model, "-w", small_models[model], "-q", "-f", "jsonl"]
    base += ["--save-txt", "--save-images", "--conf", "0.05"]
    local = cli([*base, "-o", tmp_path / "local"])
    on_ray = cli([*base, "-o", tmp_path / "ray", "--engine", "ray"])
    assert local.exit_code == on_ray.exit_code == 0, on_ray.stderr
    same_records(jsonl(on_ray.stdout), jsonl(local.stdout))
    assert sum(len(r["predictions"]) for r in jsonl(local.stdout)) > 0
    for path in sorted((tmp_path / "local").rglob("*.txt")):
        twin = tmp_path / "ray" / path.relative_to(tmp_path / "local")
        if path.name == "classes.txt":
            assert twin.read_text() == path.read_text()
            continue
        ours = [[float(v) for v in line.split()] for line in twin.read_text().splitlines()]
        theirs = [[float(v) for v in line.split()] for line in path.read_text().splitlines()]
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):  # normalised boxes, as the JSON ones
            assert a == pytest.approx(b, abs=1e-4)
    images = sorted(p.name for p in (tmp_path / "ray").rglob("*.jpg"))
    assert images == sorted(p.name for p in (tmp_path / "local").rglob("*.jpg")) and images


def test_job_yaml_with_engine_ray(cli, r18_file, photos, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(
        f"task: classify\nmodel: resnet18\nweights: {r18_file}\nengine: ray\nray_actors: 1\n"
        f"inputs: [{photos['astronaut']}]\nout: {tmp_path / 'out'}\nquiet: true\n"
    )
    result = cli(["run", job])
    assert result.exit_code == 0, result.stderr
    (record,) = jsonl((tmp_path / "out" / "results.jsonl").read_text())
    local = cli(
        ["classify", photos["astronaut"], "-m", "resnet18", "-w", r18_file, "-q", "-f", "jsonl"]
    )
    same_records([record], jsonl(local.stdout))


def test_track_runs_each_video_on_one_actor_in_order(cli, tmp_path):
    from track_scenes import crossing_scene, write_sequence

    scene = write_sequence(crossing_scene(), tmp_path / "mot" / "CROSS-01")
    base = ["track", scene / "img1", "--detections", scene / "det" / "det.txt", "-q", "-f", "jsonl"]
    local = cli([*base, "-o", tmp_path / "local"])
    on_ray = cli([*base, "-o", tmp_path / "ray", "--engine", "ray"])
    assert local.exit_code == on_ray.exit_code == 0, on_ray.stderr
    same_records(jsonl(on_ray.stdout), jsonl(local.stdout))
    mot = (tmp_path / "ray" / "mot" / "CROSS-01.txt").read_text()
    assert mot == (tmp_path / "local" / "mot" / "CROSS-01.txt").read_text() and mot


def test_an_error_raised_in_an_actor_keeps_its_exit_code(cli, r18_file, photos):
    # the driver only names and labels (fp32 on its CPU); the actor refuses fp16 on a CPU
    args = ["classify", photos["coffee"], "-m", "resnet18", "-w", r18_file, "--engine", "ray"]
    result = cli([*args, "--precision", "fp16", "--device", "cpu", "-q"])
    assert result.exit_code == 2
    assert "fp16" in result.stderr and "Traceback" not in result.stderr


def test_what_cannot_run_on_ray_says_so(cli, r18_file, photos, tmp_path):
    live = cli(["track", "rtsp://127.0.0.1:9/none", "--engine", "ray", "-q"])
    assert live.exit_code == 2 and "live sources" in live.stderr
    gather = ["explain", "top-patches", photos["coffee"], "-m", "resnet18", "-w", r18_file]
    gather += ["--layer", "layer4"]
    result = cli([*gather, "-o", tmp_path / "o", "--engine", "ray", "-q"])
    assert result.exit_code == 2 and "--engine local" in result.stderr


def test_weights_and_run_folders_are_shipped_as_bytes(r18_file, tmp_path):
    from cvtasks.classify.config import ClassifyConfig
    from cvtasks.engines.shipping import pack_files, unpack_files

    run = tmp_path / "runs" / "exp"
    run.mkdir(parents=True)
    for name, data in {
        "config.yaml": b"run: {}\n",
        "best.safetensors": b"w",
        "labels.txt": b"a\nb\n",
    }.items():
        (run / name).write_bytes(data)
    (run / "last.safetensors").write_bytes(b"not needed")
    labels = tmp_path / "names.txt"
    labels.write_text("x\ny\n")
    cfg = ClassifyConfig(weights=str(run), labels=str(labels))
    packed = pack_files(cfg)
    assert sorted(packed["weights"][1]) == ["best.safetensors", "config.yaml", "labels.txt"]
    worker = ClassifyConfig(weights=str(run), labels=str(labels))
    unpack_files(worker, packed, tmp_path / "worker")
    assert Path(worker.weights).name == "exp" and Path(worker.weights).is_dir()
    assert (Path(worker.weights) / "best.safetensors").read_bytes() == b"w"
    assert Path(worker.labels).read_text() == "x\ny\n"
    assert Path(worker.weights).is_relative_to(tmp_path / "worker")
    hub = ClassifyConfig(weights="IMAGENET1K_V1")
    assert pack_files(hub) == {}  # resolved on each worker


def _actor_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "MapWorker(MapBatches(_Predict))" in title:
                pids.append(int(entry.name))
    return pids


def test_a_killed_actor_is_replaced_and_the_run_completes(r18_file, inputs, tmp_path):
    from cvtasks import predict

    images = sorted(str(p) for p in inputs.glob("*.jpg") if p.name != "broken.jpg") * 4
    options = {"model": "resnet18", "weights": str(r18_file), "batch_size": 1, "quiet": True}
    local = [(f.source, o.to_record()) for f, o in predict("classify", images, **options)]
    killed: list[int] = []
    on_ray = []
    for frame, outcome in predict("classify", images, engine="ray", ray_actors=2, **options):
        on_ray.append((frame.source, outcome.to_record()))
        if len(on_ray) == 3:
            pids = _actor_pids()
            assert pids, "no actor process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
    assert killed
    assert [s for s, _ in on_ray] == [s for s, _ in local]
    for (_, ours), (_, theirs) in zip(on_ray, local, strict=True):
        assert [p["index"] for p in ours["predictions"]] == [
            p["index"] for p in theirs["predictions"]
        ]
        for a, b in zip(ours["predictions"], theirs["predictions"], strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(process: subprocess.Popen) -> None:
    """End the head node's whole process group (SIGTERM, then SIGKILL after a grace)."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 30)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.parametrize("token", [True, False], ids=["token-in-home", "no-token"])
def test_a_head_node_reached_with_ray_address(cli, r18_file, photos, tmp_path, token):
    """What a user does: `ray start --head` in one shell, cvtasks in another, neither with any
    RAY_AUTH_* variable set. Ray 2.60's head turns token authentication on when
    ~/.ray/auth_token exists (any earlier local Ray run writes it); the driver must then join
    with that token. (This test used to pass where the same steps by hand failed: the pytest
    process had set RAY_AUTH_MODE=token for its own local instance, and both children
    inherited it.) Loopback only: --node-ip-address 127.0.0.1, as docs/ray.md says."""
    import shutil
    import tempfile

    home = tmp_path / "home"
    if token:
        (home / ".ray").mkdir(parents=True)
        (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    else:
        home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env["HOME"] = str(home)
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Unix socket paths are short
    ray_bin = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
            "--node-ip-address=127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group, ended by that group's id
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None, head.stderr.read().decode() if head.stderr else ""
                assert time.monotonic() < deadline, "the head node did not start"
                time.sleep(0.5)
        args = ["classify", str(photos["chelsea"]), "-m", "resnet18", "-w", str(r18_file)]
        result = subprocess.run(
            [*CVTASKS, *args, "--engine", "ray", "--ray-address", f"127.0.0.1:{port}", "-q",
             "-f", "jsonl"],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        local = cli([*args, "-q", "-f", "jsonl"])
        same_records(jsonl(result.stdout), jsonl(local.stdout))
        if token:  # with a token that is not the head's, the error says what to set
            wrong = {**env, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
            refused = subprocess.run(
                [*CVTASKS, *args, "--engine", "ray", "--ray-address", f"127.0.0.1:{port}", "-q"],
                capture_output=True,
                text=True,
                env=wrong,
                timeout=180,
            )
            assert refused.returncode == 2, refused.stderr
            assert "set RAY_AUTH_TOKEN to the head's" in refused.stderr
    finally:
        stop_group(head)
        shutil.rmtree(temp, ignore_errors=True)


def test_an_unreachable_cluster_is_exit_2_within_seconds(cli, r18_file, photos, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["classify", str(photos["chelsea"]), "-m", "resnet18", "-w", str(r18_file), "-q"]
    start = time.monotonic()
    result = subprocess.run(
        [*CVTASKS, *args, "--engine", "ray", "--ray-address", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr and "ray start --head" in result.stderr
    # before any model loads: seconds (a loaded CI machine with two test processes needs 10-15)
    assert time.monotonic() - start < 30
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    from_env = cli([*args, "--engine", "ray"])
    assert from_env.exit_code == 2 and f"127.0.0.1:{port}" in from_env.stderr


def crafted_run_folder(folder: Path) -> Path:
    """A `cvtasks train` run folder made directly: resnet18 with a seeded two-class head."""
    import torch
    import yaml
    from safetensors.torch import save_file
    from torchvision.models import resnet18

    from cvtasks.classify.train.config import TrainConfig
    from cvtasks.classify.train.run_folder import write_run_config

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    net = resnet18(num_classes=2)
    net.fc.weight.data *= 40
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, folder / "best.safetensors")
    preprocessing = {
        "resize": 73,
        "crop": 64,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    write_run_config(folder, TrainConfig(model="resnet18"), ["fake", "real"], preprocessing, None)
    assert yaml.safe_load((folder / "config.yaml").read_text())["run"]["model"] == "resnet18"
    return folder


def test_eval_with_a_run_folder_equals_local(cli, photos, tmp_path):
    run = crafted_run_folder(tmp_path / "runs" / "exp")
    data = tmp_path / "val"
    for label, names in (("real", ("astronaut", "coffee")), ("fake", ("chelsea",))):
        (data / label).mkdir(parents=True)
        for name in names:
            (data / label / f"{name}.jpg").write_bytes(photos[name].read_bytes())
    base = ["eval", "classify", data, "-w", run, "-f", "json", "-q"]
    local = cli([*base, "-o", tmp_path / "local"])
    on_ray = cli([*base, "-o", tmp_path / "ray", "--engine", "ray"])
    assert local.exit_code == on_ray.exit_code == 0, on_ray.stderr
    ours, theirs = json.loads(on_ray.stdout), json.loads(local.stdout)
    assert ours.keys() == theirs.keys() and ours["n"] == 3
    for key, value in theirs.items():
        if isinstance(value, float):
            assert ours[key] == pytest.approx(value, abs=1e-5), key
        elif key != "out":
            assert ours[key] == value, key


def test_depth_with_ground_truth_on_ray(cli, tmp_path):
    from helpers import tiny_depth_model

    tiny = tiny_depth_model(tmp_path / "tiny")  # a local transformers folder: shipped
    left, _right, disparity = __import__("skimage.data", fromlist=["x"]).stereo_motorcycle()
    image = tmp_path / "motorcycle.png"
    Image.fromarray(left).save(image)
    gt = tmp_path / "gt"
    gt.mkdir()
    np.save(gt / "motorcycle.npy", disparity)
    base = ["depth", image, "-m", tiny, "--eval-gt", gt, "-f", "jsonl"]
    local = cli(base)
    on_ray = cli([*base, "--engine", "ray"])
    assert local.exit_code == on_ray.exit_code == 0, on_ray.stderr
    same_records(jsonl(on_ray.stdout), jsonl(local.stdout))
    summary = [line for line in local.stderr.splitlines() if "depth eval over 1 image(s)" in line]
    assert summary and summary[0] in on_ray.stderr  # gathered where the results are written


def test_faces_with_a_weights_folder_on_ray(cli, photos):
    """MTCNN's three files as -w DIR travel to the actors like any folder spec."""
    from real_weights import mtcnn_dir

    base = ["faces", photos["astronaut"], photos["coffee"], "-w", mtcnn_dir(), "-f", "jsonl"]
    local = cli(base)
    on_ray = cli([*base, "--engine", "ray"])
    assert local.exit_code == on_ray.exit_code == 0, on_ray.stderr
    same_records(jsonl(on_ray.stdout), jsonl(local.stdout))
    assert sum(len(r["predictions"]) for r in jsonl(local.stdout)) == 1


def test_eval_detect_on_ray_equals_local(cli, photos, small_models, tmp_path):
    """The model part of `eval detect` runs on the actors; the scoring on the driver."""
    frcnn = "fasterrcnn_mobilenet_v3_large_320_fpn"
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "astronaut.jpg", "width": 512, "height": 512},
                   {"id": 2, "file_name": "coffee.jpg", "width": 600, "height": 400}],
        "categories": [{"id": 1, "name": "person"}, {"id": 47, "name": "cup"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [120, 30, 300, 480],
             "area": 144000, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 47, "bbox": [150, 40, 330, 300],
             "area": 99000, "iscrowd": 0}]}))  # fmt: skip
    base = ["eval", "detect", photos["astronaut"], photos["coffee"], "-m", frcnn, "-w",
            small_models[frcnn], "--gt", gt, "-f", "json"]  # fmt: skip
    local, on_ray = cli(base), cli([*base, "--engine", "ray"])
    assert local.exit_code == on_ray.exit_code == 0, on_ray.stderr
    assert json.loads(on_ray.stdout)["coco_stats"] == json.loads(local.stdout)["coco_stats"]


def test_eval_explain_on_ray_equals_local(cli, tmp_path):
    """The explanations and their curves are computed on the actors (the ground truth read there
    at its absolute path); the summary on the driver."""
    from crafted_models import crafted_detector, labels_file, two_squares

    image = two_squares(tmp_path / "two.png")
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "two.png", "width": 320, "height": 320}],
        "categories": [{"id": 1, "name": "red"}, {"id": 2, "name": "green"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [48, 48, 32, 32],
                         "area": 1024, "iscrowd": 0}]}))  # fmt: skip
    base = ["eval", "explain", "gradcam", image, "-m", "fasterrcnn_mobilenet_v3_large_320_fpn",
            "-w", crafted_detector(tmp_path / "d.pth"), "--labels", labels_file(tmp_path / "l.txt"),
            "--conf", "0.95", "--gt", os.path.relpath(gt), "--curve-steps", "3", "-f", "json"]  # fmt: skip
    local, on_ray = cli(base), cli([*base, "--engine", "ray"])
    assert local.exit_code == on_ray.exit_code == 0, on_ray.stderr
    ours, theirs = json.loads(on_ray.stdout), json.loads(local.stdout)
    assert ours["counts"]["pointing_game"] == 1  # the red detection, matched on the actor
    for key in ("pointing_game", "energy_pointing_game", "deletion_auc", "insertion_auc"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-5), key


def test_an_exported_model_on_ray_equals_local(cli, r18_file, photos, tmp_path):
    """Each actor opens the shipped .onnx file once in onnxruntime; the records are local's."""
    pytest.importorskip("onnxruntime")
    model = tmp_path / "r18.onnx"
    made = cli(["export", "-m", "resnet18", "-w", r18_file, "-o", model, photos["coffee"], "-q"])
    assert made.exit_code == 0, made.stderr
    base = ["classify", *photos.values(), "-w", model, "--backend", "onnxruntime", "-f", "jsonl"]
    local, on_ray = cli(base), cli([*base, "--engine", "ray", "-b", "1"])
    assert local.exit_code == on_ray.exit_code == 0, on_ray.stderr
    same_records(jsonl(on_ray.stdout), jsonl(local.stdout))
