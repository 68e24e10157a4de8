"""Tracking rows of `make bench`: the tracker's cost per frame with 50 objects, `track` against
`detect` on the same video, and memory over a 10-minute video and a 10-minute stream."""

from __future__ import annotations

import contextlib
import http.server
import io
import re
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bench.proc import run_sampling_rss

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
TIMING = re.compile(r"(?P<done>\d+) done.*\((?P<rate>[\d.]+)/s after")


def moving_boxes(objects: int, frames: int, seed: int = 0) -> list[np.ndarray]:
    """``objects`` boxes per frame moving at random constant velocities, with jitter."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 1800, (objects, 2))
    velocity = rng.uniform(-4, 4, (objects, 2))
    size = rng.uniform(30, 90, (objects, 2))
    boxes = []
    for f in range(frames):
        top_left = start + velocity * f + rng.normal(0, 1, (objects, 2))
        boxes.append(np.concatenate([top_left, top_left + size], axis=1))
    return boxes


def tracker_cost(objects: int = 50, frames: int = 300) -> dict[str, float]:
    """Milliseconds per frame of each tracker (with the analytics of one line and one zone)."""
    from cvtasks.track.analytics import SourceAnalytics, Tracked
    from cvtasks.track.config import TrackConfig
    from cvtasks.track.geometry import anchor_point, parse_line, parse_zone
    from cvtasks.track.trackers import TrackerAdapter

    boxes = moving_boxes(objects, frames)
    scores = np.full(objects, 0.9)
    classes = np.zeros(objects, dtype=int)
    costs = {}
    for name in ("bytetrack", "sort", "ocsort", "botsort"):
        adapter = TrackerAdapter(TrackConfig(tracker=name, cmc=False), 30.0, 1)
        analytics = SourceAnalytics(
            [parse_line("a=0,900,1920,900")],
            [parse_zone("z=100,100,900,100,900,900,100,900")],
            None,
            1920,
            1080,
            30.0,
            1,
        )
        start = time.perf_counter()
        for f, frame_boxes in enumerate(boxes):
            ids = adapter.update(frame_boxes.tolist(), scores.tolist(), classes.tolist())
            tracked = [
                Tracked(i, "person", 0.9, anchor_point(b, "bottom-center"))
                for b, i in zip(frame_boxes.tolist(), ids, strict=True)
                if i is not None
            ]
            analytics.update(f, tracked)
        costs[name] = 1000 * (time.perf_counter() - start) / frames
    return costs


def _clip(path: Path, frames: int, size: tuple[int, int], fps: float = 30.0) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    rng = np.random.default_rng(0)
    background = rng.integers(40, 120, (size[1], size[0], 3), dtype=np.uint8)
    for i in range(frames):
        frame = background.copy()
        for k in range(5):
            x = (30 + 7 * i + 97 * k) % (size[0] - 40)
            cv2.rectangle(frame, (x, 20 + 15 * k), (x + 30, 60 + 15 * k), (40, 200, 250), -1)
        writer.write(frame)
    writer.release()
    return path


def _run(cmd: list[str]) -> tuple[float, int, list[float]]:
    """Steady rate from the timing line, frames done, and RSS samples of the process (MB)."""
    stderr, samples = run_sampling_rss(cmd)
    match = TIMING.search(stderr)
    if match is None:
        raise RuntimeError(stderr)
    return float(match["rate"]), int(match["done"]), samples


def track_against_detect(weights: Path, model: str) -> dict[str, float]:
    """The same 10 s clip (640x360) through `detect` and through `track`, batch 4."""
    clip = _clip(DATA / "walk_640x360_10s.avi", 300, (640, 360))
    base = [sys.executable, "-m", "cvtasks"]
    common = [str(clip), "-m", model, "-w", str(weights), "-b", "4", "-f", "jsonl"]
    detect, _, _ = _run([*base, "detect", *common, "--conf", "0.1"])
    track, _, _ = _run([*base, "track", *common, "--conf", "0.1"])
    return {"detect_fps": detect, "track_fps": track, "ratio": track / detect}


def _detections_for(frames: int, path: Path) -> Path:
    path.write_text(
        "".join(
            f"{f + 1},-1,{(30 + 7 * f + 97 * k) % 120},{20 + 15 * k},30,40,0.9\n"
            for f in range(frames)
            for k in range(5)
        )
    )
    return path


def memory_over_ten_minutes(out: Path) -> dict[str, float]:
    """RSS at 20 % and at the end of a 10-minute 30 fps video (160x120) and of a 10-minute
    MJPEG stream served as fast as it can be read, both tracked with a detections file."""
    frames = 30 * 600
    clip = _clip(DATA / "ten_minutes_160x120.avi", frames, (160, 120))
    detections = _detections_for(frames, DATA / "ten_minutes_det.txt")
    base = [sys.executable, "-m", "cvtasks", "track", "--detections", str(detections)]
    base += ["--line", "door=80,0,80,120", "-f", "jsonl"]
    video_fps, video_frames, video = _run([*base, str(clip), "-o", str(out / "video")])
    server = _MjpegServer(frames)
    with server:
        stream_fps, stream_frames, stream = _run(
            [*base, server.url, "--reconnect", "0", "-o", str(out / "stream")]
        )
    return {
        "video_frames": video_frames,
        "video_fps": video_fps,
        "video_rss_20pct": video[len(video) // 5],
        "video_rss_end": video[-1],
        "stream_frames": stream_frames,
        "stream_fps": stream_fps,
        "stream_rss_20pct": stream[len(stream) // 5],
        "stream_rss_end": stream[-1],
    }


class _MjpegServer:
    """``frames`` JPEG frames of moving boxes over HTTP multipart, then the port closes."""

    def __init__(self, frames: int) -> None:
        outer = self
        self.frames = frames

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f")
                self.end_headers()
                for i in range(outer.frames):
                    image = Image.new("RGB", (160, 120), (70, 70, 70))
                    buffer = io.BytesIO()
                    image.paste(
                        (40, 200, 250), ((30 + 7 * i) % 120, 20, (30 + 7 * i) % 120 + 30, 60)
                    )
                    image.save(buffer, format="JPEG", quality=80)
                    data = buffer.getvalue()
                    try:
                        self.wfile.write(
                            b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(data)).encode()
                            + b"\r\n\r\n"
                            + data
                            + b"\r\n"
                        )
                    except (BrokenPipeError, ConnectionResetError):
                        return
                threading.Thread(target=outer.close, daemon=True).start()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/live.mjpg"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> _MjpegServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.close()


def bench_tracking(weights: Path, model: str, out: Path) -> dict[str, object]:
    return {
        "tracker_ms_per_frame_50_objects": tracker_cost(),
        "track_vs_detect": track_against_detect(weights, model),
        "memory": memory_over_ten_minutes(out),
    }


def print_tracking(results: dict) -> None:
    costs = results["tracker_ms_per_frame_50_objects"]
    print(
        "\ntracking: tracker + analytics (1 line, 1 zone), 50 objects, ms per frame: "
        + ", ".join(f"{k} {v:.2f}" for k, v in costs.items())
    )
    vs = results["track_vs_detect"]
    print(
        f"track vs detect (fasterrcnn_mobilenet_v3_large_320_fpn, 300 frames 640x360, batch 4): "
        f"detect {vs['detect_fps']:.1f} frames/s, track {vs['track_fps']:.1f} frames/s, ratio {vs['ratio']:.3f}"
    )
    m = results["memory"]
    print(
        f"10-minute video ({m['video_frames']} frames, {m['video_fps']:.0f} frames/s): RSS "
        f"{m['video_rss_20pct']:.0f} MB at 20 %, {m['video_rss_end']:.0f} MB at the end; "
        f"10-minute stream ({m['stream_frames']} frames, {m['stream_fps']:.0f} frames/s): RSS "
        f"{m['stream_rss_20pct']:.0f} MB at 20 %, {m['stream_rss_end']:.0f} MB at the end"
    )
