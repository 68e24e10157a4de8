"""The CLI contract: fast help, exit codes, stdout formats, --out files, resume, stdin, video."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from helpers import jsonl
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def run(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cvtasks", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def test_help_and_version_do_not_import_torch():
    code = (
        "import sys, cvtasks.cli.app as a\n"
        "for argv in (['cvtasks', '--help'], ['cvtasks', '--version']):\n"
        "    sys.argv = argv\n"
        "    try: a.main()\n"
        "    except SystemExit: pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
        "print(sorted(m for m in sys.modules if m.endswith('.config') and 'cvtasks.' in m))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    *_, torch_line, configs_line = out.stdout.strip().splitlines()
    assert torch_line == "NO-TORCH"
    # the root's help builds no task's command: only the shared base config is imported
    assert configs_line == "['cvtasks.config']"
    from cvtasks.tasks.registry import TASKS

    top = [name for name, spec in TASKS.items() if spec.parent is None]  # not sub-commands
    for command in [*top, "run", "models", "config", "inspect", "report"]:
        assert f"│ {command} " in out.stdout, command
    assert "cvtasks 0.1.0" in out.stdout


@pytest.mark.parametrize("task", ["classify", "track", "explain", "eval"])
def test_each_task_builds_its_own_options_when_asked(task):
    """Tasks' commands are built on demand (LazyTaskGroup): their help still shows every
    option of their config, and nothing of the other tasks is imported."""
    code = (
        "import sys, cvtasks.cli.app as a\n"
        f"sys.argv = ['cvtasks', '{task}', '--help']\n"
        "try: a.main()\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.endswith('.config') and 'cvtasks.' in m))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    from cvtasks.config import config_fields, meta_of
    from cvtasks.tasks.registry import TASKS

    spec = TASKS[task]
    assert f"Usage: cvtasks {task} [OPTIONS]" in out.stdout
    for field in config_fields(spec.config_cls):
        if meta_of(field).cli and field.name not in spec.positional and field.name != "inputs":
            assert "--" + field.name.replace("_", "-") in out.stdout, field.name
    imported = out.stdout.strip().splitlines()[-1]
    for unrelated in ("gaze", "depth"):  # none of these four tasks builds on them
        assert f"cvtasks.{unrelated}.config" not in imported, imported


def test_python_dash_m_and_version():
    result = run(["--version"])
    assert result.returncode == 0 and result.stdout.strip() == "cvtasks 0.1.0"


def test_unknown_model_is_exit_2_with_suggestion(cli, photos):
    result = cli(["classify", photos["chelsea"], "-m", "resnet5"])
    assert result.exit_code == 2
    assert "unknown classify model 'resnet5'" in result.stderr and "did you mean" in result.stderr


def test_unknown_device_is_exit_2(cli, photos, r18_file):
    result = cli(
        ["classify", photos["chelsea"], "-m", "resnet18", "-w", r18_file, "--device", "tpu"]
    )
    assert result.exit_code == 2 and "unknown device 'tpu'" in result.stderr


def test_offline_default_weights_is_exit_3_quickly():
    start = time.perf_counter()
    result = run(["classify", ROOT / "examples" / "chelsea.jpg", "-m", "resnet18"])
    assert result.returncode == 3
    assert time.perf_counter() - start < 30
    assert "cvtasks models pull resnet18" in result.stderr
    assert "resnet18-f37072fd.pth" in result.stderr and "--weights" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_formats(cli, photos, r18_file):
    base = [
        "classify",
        photos["chelsea"],
        photos["coffee"],
        "-m",
        "resnet18",
        "-w",
        r18_file,
        "--top-k",
        "2",
        "-q",
    ]
    as_json = json.loads(cli([*base, "-f", "json"]).stdout)
    assert [len(r["predictions"]) for r in as_json] == [2, 2]
    assert jsonl(cli([*base, "-f", "jsonl"]).stdout) == as_json
    rows = list(csv.DictReader(io.StringIO(cli([*base, "-f", "csv"]).stdout)))
    assert [(r["source"], r["rank"], r["label"]) for r in rows] == [
        (rec["source"], str(i + 1), p["label"])
        for rec in as_json
        for i, p in enumerate(rec["predictions"])
    ]
    assert float(rows[0]["score"]) == pytest.approx(as_json[0]["predictions"][0]["score"])
    table = cli([*base, "-f", "table"]).stdout
    assert "chelsea.jpg" in table and as_json[0]["predictions"][0]["label"] in table
    five = json.loads(cli([*base, "--top-k", "5", "-f", "json"]).stdout)
    wide = cli([*base, "--top-k", "5", "-f", "table"]).stdout
    for record in five:  # every one of the k classes is shown, not the first three
        for pred in record["predictions"]:
            assert f"{pred['score']:.3f}" in wide and pred["label"][:10] in wide


def test_default_format_is_jsonl_when_piped(photos, r18_file):
    result = run(["classify", photos["chelsea"], "-m", "resnet18", "-w", r18_file, "-q"])
    assert result.returncode == 0
    assert jsonl(result.stdout)[0]["source"] == str(photos["chelsea"])


def test_out_dir_bad_inputs_and_exit_1(cli, photos, r18_file, tmp_path):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    Image.open(photos["chelsea"]).save(inputs / "sub" / "cat.jpg")
    Image.open(photos["coffee"]).convert("RGBA").save(inputs / "cup.png")
    (inputs / "empty.jpg").write_bytes(b"")
    (inputs / "fake.jpg").write_text("<html></html>")
    out = tmp_path / "out"
    result = cli(
        [
            "classify",
            inputs,
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "-o",
            out,
            "--save-images",
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 1
    assert f"{inputs}/empty.jpg: empty file" in result.stderr
    records = jsonl(result.stdout)
    assert [r["source"] for r in records] == [f"{inputs}/cup.png", f"{inputs}/sub/cat.jpg"]
    assert jsonl((out / "results.jsonl").read_text()) == records
    errors = jsonl((out / "errors.jsonl").read_text())
    assert [(e["source"], e["frame"]) for e in errors] == [
        (f"{inputs}/empty.jpg", None),
        (f"{inputs}/fake.jpg", None),
    ]
    assert all(e["error"] for e in errors)
    annotated = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert annotated == [
        ".cvtasks.inputs.jsonl",
        ".cvtasks.lock",
        "config.yaml",
        "errors.jsonl",
        "in/cup.png",
        "in/sub/cat.jpg",
        "results.jsonl",
    ]
    assert Image.open(out / "in/sub/cat.jpg").size == (451, 300)
    assert yaml.safe_load((out / "config.yaml").read_text())["model"] == "resnet18"
    assert not list(out.rglob(".*.tmp*"))


def test_annotated_image_differs_only_in_label_panel(cli, photos, r18_file, tmp_path):
    out = tmp_path / "out"
    cli(
        [
            "classify",
            photos["coffee"],
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "-o",
            out,
            "--save-images",
            "-q",
            "-f",
            "jsonl",
        ]
    )
    original = np.asarray(Image.open(photos["coffee"])).astype(int)
    annotated = np.asarray(Image.open(out / photos["coffee"].name)).astype(int)
    changed = np.abs(annotated - original).max(axis=2) > 40
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 500  # a label panel was drawn
    assert ys.max() < 200 and xs.min() < 10  # in the top-left corner only


def test_resume_skips_done_and_refuses_changed_config(cli, photos, r18_file, tmp_path):
    out = tmp_path / "out"
    base = ["-m", "resnet18", "-w", r18_file, "-o", out, "-q", "-f", "jsonl"]
    first = cli(["classify", photos["chelsea"], photos["coffee"], *base])
    assert first.exit_code == 0
    with (out / "results.jsonl").open("a") as handle:
        handle.write('{"source": "torn')  # a kill -9 in the middle of a line
    second = cli(
        ["classify", photos["chelsea"], photos["coffee"], photos["astronaut"], *base, "--resume"]
    )
    assert second.exit_code == 0
    assert [r["source"] for r in jsonl(second.stdout)] == [str(photos["astronaut"])]
    final = jsonl((out / "results.jsonl").read_text())
    assert sorted(r["source"] for r in final) == sorted(str(p) for p in photos.values())
    changed = cli(["classify", photos["chelsea"], *base, "--resume", "--top-k", "3"])
    assert changed.exit_code == 2 and "top_k: 5 -> 3" in changed.stderr


def test_stdin_paths(cli, photos, r18_file):
    listing = f"{photos['coffee']}\n{photos['chelsea']}\n"
    result = cli(
        ["classify", "-", "-m", "resnet18", "-w", r18_file, "-q", "-f", "jsonl"], input=listing
    )
    assert [r["source"] for r in jsonl(result.stdout)] == [
        str(photos["coffee"]),
        str(photos["chelsea"]),
    ]


def write_video(path: Path, frames: int, size=(96, 64), fps=10.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        cv2.circle(frame, (10 + 7 * i, 32), 8, (0, 255 - 20 * i, 20 * i), -1)
        writer.write(frame)
    writer.release()


def test_video_with_stride_and_annotated_mp4(cli, r18_file, tmp_path):
    video = tmp_path / "clip.mp4"
    write_video(video, 10)
    out = tmp_path / "out"
    result = cli(
        [
            "classify",
            video,
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "--vid-stride",
            "3",
            "-o",
            out,
            "--save-images",
            "-q",
            "-f",
            "jsonl",
            "-b",
            "2",
        ]
    )
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    assert [r["frame"] for r in records] == [0, 3, 6, 9]
    assert all((r["width"], r["height"]) == (96, 64) for r in records)
    assert all(r["files"]["annotated"] == "clip.mp4" for r in records)
    # Read back as a browser would need it: H.264 in yuv420p, index (moov) before the data,
    # one frame per record, playing at real speed (10 fps source / stride 3).
    with av.open(str(out / "clip.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == Fraction(10, 3)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(frames) == 4 and frames[0].shape == (64, 96, 3)
    data = (out / "clip.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    assert not list(out.glob(".*tmp*"))


def test_odd_sized_video_is_padded_to_even_sides(cli, r18_file, tmp_path):
    video = tmp_path / "odd.gif"  # a GIF keeps odd sides (an mp4v encoder would round them)
    frames = [Image.new("RGB", (95, 63), (40 * i, 90, 200)) for i in range(3)]
    frames[0].save(video, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = tmp_path / "out"
    args = ["classify", video, "-m", "resnet18", "-w", r18_file, "-o", out, "--save-images", "-q"]
    assert cli(args).exit_code == 0
    with av.open(str(out / "odd.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (96, 64)
        assert stream.average_rate == 10 and stream.frames in (0, 3)
        assert sum(1 for _ in container.decode(stream)) == 3


def test_unreadable_video_is_an_item_error(cli, r18_file, photos, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    result = cli(
        ["classify", bad, photos["chelsea"], "-m", "resnet18", "-w", r18_file, "-q", "-f", "jsonl"]
    )
    assert result.exit_code == 1
    assert "broken.mp4" in result.stderr
    assert [r["source"] for r in jsonl(result.stdout)] == [str(photos["chelsea"])]


def test_closed_stdout_pipe_exits_quietly(photos, r18_file):
    cmd = (
        f"{sys.executable} -m cvtasks classify {photos['chelsea']} {photos['coffee']} "
        f"{photos['astronaut']} -m resnet18 -w {r18_file} -b 1 -q | head -c 10"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120
    )
    assert len(result.stdout) == 10
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 0


def test_models_list_info_pull(cli):
    listed = jsonl(cli(["models", "list", "--task", "classify", "-f", "jsonl"]).stdout)
    r18 = next(r for r in listed if r["name"] == "resnet18")
    assert r18["params_m"] == pytest.approx(11.69, abs=0.01) and r18["gflops"] == pytest.approx(
        1.814, abs=1e-3
    )
    assert r18["metric"] == "ImageNet-1K acc@1" and r18["cached"] is False
    info = json.loads(cli(["models", "info", "resnet50"]).stdout)
    assert {w["weights"] for w in info["weights"]} == {
        "ResNet50_Weights.IMAGENET1K_V1",
        "ResNet50_Weights.IMAGENET1K_V2",
    }
    assert all("licence" in w and "license" not in w for w in info["weights"])
    assert all("  " not in w["transforms"] for w in info["weights"])
    assert "licence" in listed[0]
    explain = jsonl(cli(["models", "list", "--task", "explain", "-f", "jsonl"]).stdout)
    explained = {r["name"] for r in explain}  # classifiers, detectors and semantic segmenters
    assert {r["name"] for r in listed} | {
        "fasterrcnn_resnet50_fpn",
        "deeplabv3_resnet50",
    } <= explained
    assert {r["task"] for r in explain} == {"explain"}
    everything = jsonl(cli(["models", "list", "-f", "jsonl"]).stdout)
    for name in ("resnet18", "maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn"):
        assert sum(r["name"] == name for r in everything) == 1, name
    assert cli(["models", "info", "resnet5"]).exit_code == 2
    pulled = cli(["models", "pull", "resnet18"])
    assert pulled.exit_code == 3 and "cvtasks models pull resnet18" in pulled.stderr


def test_pull_uses_cache_when_present(cli, r18_file):
    from cvtasks.weights import cache_path, resolve_weights

    target = cache_path(resolve_weights("resnet18", "IMAGENET1K_V1").member)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(r18_file.read_bytes())
    try:
        result = cli(["models", "pull", "resnet18:IMAGENET1K_V1"])
        assert result.exit_code == 0 and str(target) in result.stdout
        listed = jsonl(cli(["models", "list", "-f", "jsonl"]).stdout)
        assert next(r for r in listed if r["name"] == "resnet18")["cached"] is True
    finally:
        os.unlink(target)


def test_say_it_instead_of_ignoring_it(cli, photos, r18_file):
    base = ["classify", photos["coffee"], "-m", "resnet18", "-w", r18_file, "-q"]
    no_out = cli([*base, "--save-images"])
    assert no_out.exit_code == 2 and "--save-images writes files under --out" in no_out.stderr
    txt = cli(["detect", photos["coffee"], "--save-txt", "-q"])
    assert txt.exit_code == 2 and "--save-txt writes files under --out" in txt.stderr
    bare = cli(["classify"])
    assert bare.exit_code == 2 and "no inputs given" in bare.stderr
    assert "usage: cvtasks classify [OPTIONS] INPUTS..." in bare.stderr
    explain = cli(["explain", "gradcam"])
    assert "usage: cvtasks explain METHOD [OPTIONS] INPUTS..." in explain.stderr


def test_compile_notice_about_cuda_home_is_silenced():
    """torch's "No CUDA runtime is found" log line is printed when cpp_extension is imported
    on a CPU machine; --compile silences it first. A child process shows the difference."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("the notice appears only without CUDA")
    code = "import torch, logging{}\nimport torch.utils.cpp_extension"
    silenced = "; from cvtasks.speed import silence_cuda_home_notice; silence_cuda_home_notice()"
    loud = subprocess.run([sys.executable, "-c", code.format("")], capture_output=True, text=True)
    quiet = subprocess.run(
        [sys.executable, "-c", code.format(silenced)], capture_output=True, text=True
    )
    if "No CUDA runtime is found" not in loud.stderr:
        pytest.skip("this torch build prints no CUDA_HOME notice")
    assert quiet.returncode == 0 and "No CUDA runtime is found" not in quiet.stderr
