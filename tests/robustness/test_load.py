"""Load and soak runs (`make load`; not part of `make test`): many mixed inputs with workers,
and a 10-minute video, with memory measured. They print the figures the closing note quotes."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import seeded_state_dict
from PIL import Image

pytestmark = pytest.mark.load


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_two_thousand_mixed_inputs_with_workers(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mixed"
    folder.mkdir()
    photo = Image.fromarray(__import__("skimage").data.astronaut())
    sizes = np.exp(rng.uniform(np.log(16), np.log(8000), size=2000)).astype(int)
    corrupt = set(rng.choice(2000, size=20, replace=False).tolist())
    for i, side in enumerate(sizes):
        path = folder / f"{i:04d}.jpg"
        if i in corrupt:
            path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * (i % 3))
            continue
        height = max(16, int(side * rng.uniform(0.5, 1.0)))
        photo.resize((int(side), height)).save(path, quality=80)
    weights = tmp_path / "mobilenet.pth"
    seeded_state_dict("mobilenet_v3_small", weights)
    out = tmp_path / "out"
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cvtasks",
            "classify",
            str(folder),
            "-m",
            "mobilenet_v3_small",
            "-w",
            str(weights),
            "--workers",
            "2",
            "-b",
            "16",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    done = (out / "results.jsonl").read_text().splitlines()
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    print(
        f"\nload: 2000 inputs ({sizes.min()}-{sizes.max()} px, 20 corrupt), workers 2: {len(done)} done, "
        f"{len(errors)} errors, {wall:.0f} s, peak RSS of the largest process {peak:.0f} MB"
    )
    assert result.returncode == 1
    assert len(done) == 1980 and {Path(e["source"]).name for e in errors} == {
        f"{i:04d}.jpg" for i in corrupt
    }
    assert peak < 4000


def test_ten_minute_video_streams_with_flat_memory(tmp_path):
    clip = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 120))
    rng = np.random.default_rng(0)
    for i in range(30 * 600):
        frame = np.full((120, 160, 3), 40, np.uint8)
        x = int(10 + 130 * (0.5 + 0.5 * np.sin(i / 50)))
        cv2.circle(frame, (x, 60), 12, tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        writer.write(frame)
    writer.release()
    weights = tmp_path / "mobilenet.pth"
    seeded_state_dict("mobilenet_v3_small", weights)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cvtasks",
            "classify",
            str(clip),
            "-m",
            "mobilenet_v3_small",
            "-w",
            str(weights),
            "-b",
            "32",
            "-q",
            "-o",
            str(tmp_path / "out"),
            "--save-images",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    samples: list[tuple[float, float]] = []

    def sample() -> None:
        start = time.perf_counter()
        while proc.poll() is None:
            try:
                samples.append((time.perf_counter() - start, rss_mb(proc.pid)))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.5)

    thread = threading.Thread(target=sample)
    thread.start()
    _, stderr = proc.communicate(timeout=3600)
    thread.join()
    assert proc.returncode == 0, stderr
    records = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert len(records) == 18000
    values = [rss for _, rss in samples if rss > 0]
    warm = values[len(values) // 5]
    print(
        f"\nvideo: 18000 frames (10 min at 30 fps): RSS {values[0]:.0f} MB at start, {warm:.0f} MB at 20 %, "
        f"{max(values):.0f} MB peak, {values[-1]:.0f} MB at the end; {samples[-1][0]:.0f} s"
    )
    assert values[-1] - warm < 100
