"""Interruptions, kills, full disks and pipes: nothing half-written, resume completes exactly."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import cvtasks_argv, default_sigint, rotated_copies
from PIL import Image

FRCNN = "fasterrcnn_mobilenet_v3_large_320_fpn"


cvtasks = cvtasks_argv


@pytest.fixture
def many(tmp_path, photos) -> Path:
    return rotated_copies(photos["astronaut"], tmp_path / "many", 24, 15)


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for_results(proc: subprocess.Popen, path: Path, count: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"finished before being interrupted: {proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.05)
    raise AssertionError("no results appeared")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_leave_complete_lines_and_resume_finishes(many, r18_file, tmp_path, sig, code):
    out = tmp_path / "out"
    args = [
        "classify",
        many,
        "-m",
        "resnet18",
        "-w",
        r18_file,
        "-o",
        out,
        "-b",
        "1",
        "-q",
        "--save-images",
    ]
    proc = subprocess.Popen(
        cvtasks(*args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    wait_for_results(proc, out / "results.jsonl", 3)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    done = lines_of(out / "results.jsonl")  # every line parses: nothing torn
    assert 3 <= len(done) < 24
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    resumed = subprocess.run(
        cvtasks(*args, "--resume"), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    sources = [r["source"] for r in lines_of(out / "results.jsonl")]
    assert sorted(sources) == sorted(str(p) for p in many.iterdir()) and len(set(sources)) == 24


def test_kill_9_then_resume_equals_an_uninterrupted_run(many, r18_file, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    base = ["classify", many, "-m", "resnet18", "-w", r18_file, "-b", "2", "-q"]
    assert (
        subprocess.run(cvtasks(*base, "-o", clean), capture_output=True, timeout=300).returncode
        == 0
    )
    proc = subprocess.Popen(
        cvtasks(*base, "-o", killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_for_results(proc, killed / "results.jsonl", 4)
    proc.kill()
    proc.wait(timeout=30)
    with (killed / "results.jsonl").open(
        "a"
    ) as handle:  # what a kill in the middle of a write leaves
        handle.write('{"source": "' + str(many / "023.png"))
    resumed = subprocess.run(
        cvtasks(*base, "-o", killed, "--resume"), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    ordered = lambda path: sorted(lines_of(path / "results.jsonl"), key=lambda r: r["source"])  # noqa: E731
    assert ordered(killed) == ordered(clean)


def test_resume_refuses_changed_thresholds(cli, photos, small_models, tmp_path):
    out = tmp_path / "out"
    base = ["detect", photos["coffee"], "-m", FRCNN, "-w", small_models[FRCNN], "-o", out, "-q"]
    assert cli([*base, "--conf", "0.3"]).exit_code == 0
    refused = cli([*base, "--conf", "0.6", "--resume"])
    assert refused.exit_code == 2 and "conf: 0.3 -> 0.6" in refused.stderr
    assert (
        cli([*base, "--conf", "0.3", "--resume", "-b", "8"]).exit_code == 0
    )  # speed options may change


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (12000, 12000))  # config.yaml (~4 KB) fits


def test_full_disk_is_a_clear_error_and_leaves_nothing_corrupt(many, r18_file, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        cvtasks(
            "classify", many, "-m", "resnet18", "-w", r18_file, "-o", out, "-q", "--top-k", "100"
        ),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    assert result.returncode == 4, result.stderr
    assert "cannot write results under --out" in result.stderr and "File too large" in result.stderr
    assert "Traceback" not in result.stderr
    lines = (out / "results.jsonl").read_text().splitlines()
    complete = [line for line in lines if line.endswith("}")]
    assert len(complete) >= len(lines) - 1  # at most the last line is torn, and --resume cuts it
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_out_that_is_a_file_is_a_usage_error(cli, photos, r18_file, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("x")
    result = cli(["classify", photos["coffee"], "-m", "resnet18", "-w", r18_file, "-o", taken])
    assert result.exit_code == 2 and "exists and is not a folder" in result.stderr


def test_detect_into_head_exits_quietly(photos, small_models):
    cmd = (
        " ".join(
            cvtasks(
                "detect",
                photos["coffee"],
                photos["chelsea"],
                photos["astronaut"],
                "-m",
                FRCNN,
                "-w",
                small_models[FRCNN],
                "--conf",
                "0.05",
                "-b",
                "1",
                "-q",
            )
        )
        + " | head -1"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and json.loads(result.stdout)["task"] == "detect"
    assert result.stderr == ""


def test_nothing_is_written_outside_out(cli, photos, r18_file, tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.open(photos["coffee"]).save(outside / "a.png")
    Image.open(photos["chelsea"]).save(work / "sub" / "a.png")
    monkeypatch.chdir(work)
    (work / "list.txt").write_text(
        f"../outside/a.png\n{outside / 'a.png'}\nsub/../sub/a.png\nsub/a.png\n"
    )
    before = {p for p in tmp_path.rglob("*")}
    result = cli(
        [
            "classify",
            "@list.txt",
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "-o",
            "out",
            "--save-images",
            "-q",
            "-f",
            "jsonl",
        ]
    )
    assert result.exit_code == 0, result.stderr
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p.resolve().is_relative_to((work / "out").resolve()) for p in created)
    images = {p.relative_to(work / "out").as_posix() for p in created if p.suffix == ".png"}
    assert images == {"a.png", "sub/a.png"}  # each file once (by real path), mirrored inside out/
