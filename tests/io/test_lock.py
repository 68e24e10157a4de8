"""One run per --out: a second run exits 2 naming the holder, or waits with --wait-lock."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import cvtasks_argv, default_sigint, rotated_copies

from cvtasks.io.lock import LOCK_FILE

cvtasks = cvtasks_argv


@pytest.fixture
def many(tmp_path, photos) -> Path:
    return rotated_copies(photos["chelsea"], tmp_path / "many", 16, 11)


def classify_args(folder: Path, weights: Path, out: Path, *extra: object) -> list[str]:
    return cvtasks(
        "classify", folder, "-m", "resnet18", "-w", weights, "-o", out, "-b", "1", "-q", *extra
    )


def wait_for_holder(proc: subprocess.Popen, out: Path, results: int = 1) -> None:
    """Until the lock file names ``proc`` and it has written ``results`` lines."""
    deadline = time.time() + 120
    lock, written = out / LOCK_FILE, out / "results.jsonl"
    while time.time() < deadline:
        if (
            lock.exists()
            and lock.read_text().strip() == str(proc.pid)
            and written.exists()
            and len(written.read_text().splitlines()) >= results
        ):
            return
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def sources(out: Path) -> Counter[str]:
    return Counter(json.loads(line)["source"] for line in (out / "results.jsonl").open())


def test_second_run_exits_2_naming_the_holder(many, r18_file, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(
        classify_args(many, r18_file, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_for_holder(first, out)
    first.send_signal(signal.SIGSTOP)  # paused mid-run, still holding the lock
    try:
        second = subprocess.run(
            classify_args(many, r18_file, out, "--resume"), capture_output=True, text=True
        )
    finally:
        first.send_signal(signal.SIGCONT)
    first.wait(timeout=300)
    assert second.returncode == 2, second.stderr
    assert f"pid {first.pid}" in second.stderr and str(out) in second.stderr
    assert "--wait-lock" in second.stderr and "Traceback" not in second.stderr
    assert first.returncode == 0
    counts = sources(out)
    assert len(counts) == 16 and set(counts.values()) == {1}


def test_wait_lock_with_resume_gives_each_input_once(many, r18_file, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(
        classify_args(many, r18_file, out, "--resume"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_holder(first, out)
    first.send_signal(signal.SIGSTOP)
    try:
        second = subprocess.Popen(
            classify_args(many, r18_file, out, "--resume", "--wait-lock"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert second.stderr is not None
        waiting = second.stderr.readline()  # blocks until the second run reports the wait
    finally:
        first.send_signal(signal.SIGCONT)
    rest = second.communicate(timeout=300)[1]
    first.wait(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, rest
    assert f"in use by pid {first.pid}" in waiting
    counts = sources(out)
    assert len(counts) == 16 and set(counts.values()) == {1}
    assert "free after" in rest


def test_kill_9_leaves_no_stale_lock(many, r18_file, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(
        classify_args(many, r18_file, out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )
    wait_for_holder(first, out, results=2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert (out / LOCK_FILE).read_text().strip() == str(first.pid)  # the file stays, the lock not
    again = subprocess.run(
        classify_args(many, r18_file, out, "--resume"), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    counts = sources(out)
    assert len(counts) == 16 and set(counts.values()) == {1}


def test_read_only_folder_is_exit_4(tmp_path, photos, r18_file):
    mount = tmp_path / "ro"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a read-only filesystem here: {made.stderr.decode().strip()}")
    try:
        result = subprocess.run(
            cvtasks("classify", photos["chelsea"], "-m", "resnet18", "-w", r18_file, "-o", mount),
            capture_output=True,
            text=True,
        )
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert result.returncode == 4, result.stderr
    assert "cannot lock the output folder" in result.stderr and "Traceback" not in result.stderr


def test_filesystem_without_locks_is_exit_4(cli, tmp_path, photos, r18_file, monkeypatch):
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    out = tmp_path / "out"
    result = cli(["classify", photos["chelsea"], "-m", "resnet18", "-w", r18_file, "-o", out])
    assert result.exit_code == 4
    assert "does not support file locks" in result.stderr
    assert not (out / "results.jsonl").exists()


def test_lock_is_released_after_a_run(cli, tmp_path, photos, r18_file):
    out = tmp_path / "out"
    args = ["classify", photos["chelsea"], "-m", "resnet18", "-w", r18_file, "-o", out, "-q"]
    assert cli(args).exit_code == 0
    assert cli([*args, "--resume"]).exit_code == 0  # the same process can take it again
    assert (out / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_a_file_in_the_way_of_out_is_named(cli, tmp_path, photos, r18_file):
    blocker = tmp_path / "afile.txt"
    blocker.write_text("not a folder")
    result = cli(["classify", photos["chelsea"], "-m", "resnet18", "-w", r18_file,
                  "-o", blocker / "sub"])  # fmt: skip
    assert result.exit_code == 4
    assert f"{blocker} is a file, not a folder" in result.stderr
