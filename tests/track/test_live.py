"""Live sources against a local HTTP MJPEG server started by the test: frames in order, a
dropped connection reconnected, a dead stream failing its source, the oldest frames dropped
when the consumer is slow."""

from __future__ import annotations

import http.server
import io
import itertools
import json
import threading
import time
from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw

from cvtasks.errors import ItemError
from cvtasks.io.live import LiveReader


class MjpegServer:
    """Serves ``frames`` JPEGs per connection at ``fps``, for ``connections`` connections;
    after that the port is closed (a camera that went away)."""

    def __init__(self, frames: int = 25, fps: float = 50.0, connections: int = 2) -> None:
        self.frames, self.fps, self.connections = frames, fps, connections
        self.served = 0
        self.sent = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.served += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for _ in range(outer.frames):
                        data = outer.jpeg(outer.sent)
                        outer.sent += 1
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(data)}\r\n\r\n".encode()
                            + data
                            + b"\r\n"
                        )
                        time.sleep(1 / outer.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if outer.served >= outer.connections:  # the camera goes away: port closed
                    threading.Thread(target=outer.close, daemon=True).start()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"

    @staticmethod
    def jpeg(number: int) -> bytes:
        image = Image.new("RGB", (160, 120), (60, 60, 60))
        x = 10 + (number * 3) % 100
        ImageDraw.Draw(image).rectangle((x, 40, x + 30, 100), fill=(240, 180, 40))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()

    def __enter__(self) -> MjpegServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def server() -> Iterator[MjpegServer]:
    with MjpegServer() as running:
        yield running


def test_stream_reconnects_then_fails_its_source(cli, server, tmp_path):
    detections = tmp_path / "det.txt"  # a box where the server draws one, for 50 frames
    detections.write_text(
        "".join(f"{f + 1},-1,{10 + (f * 3) % 100},40,30,60,0.9\n" for f in range(50))
    )
    out = tmp_path / "out"
    started = time.monotonic()
    result = cli(
        ["track", server.url, "--detections", detections, "--reconnect", "1", "-o", out,
         "-f", "jsonl", "--min-hits", "1"]
    )  # fmt: skip
    assert time.monotonic() - started < 60
    assert result.exit_code == 1, result.stderr  # the camera went away for good
    assert server.url in result.stderr and "lost and could not reconnect" in result.stderr
    assert server.served == 2  # the first drop was reconnected
    frames = [json.loads(line)["frame"] for line in result.stdout.splitlines()]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    assert max(frames) >= 30  # numbering goes on across the reconnection
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(p["track_id"] for r in records for p in r["predictions"])
    (entry,) = json.loads((out / "analytics.json").read_text())["sources"]
    assert entry["source"] == server.url and entry["frames"] == len(frames)
    # every frame received was either processed or dropped (counted) because it came too fast
    assert len(frames) + entry["dropped"] >= 45
    error = json.loads((out / "errors.jsonl").read_text())
    assert error["source"] == server.url and "reconnect" in error["error"]


def test_slow_consumer_drops_the_oldest_frames():
    with MjpegServer(frames=60, fps=100.0, connections=1) as server:
        reader = LiveReader(server.url, reconnect=0, queue=2)
        seen = []
        with pytest.raises(ItemError, match="lost and could not reconnect"):  # it ends
            for number, _frame in reader.frames():
                seen.append(number)
                time.sleep(0.05)  # inference slower than the source
    assert reader.dropped > 0 and len(seen) + reader.dropped <= 60
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert max(b - a for a, b in itertools.pairwise(seen)) > 1  # gaps where frames were dropped


def test_files_never_drop_frames(cli, tmp_path):
    import cv2
    import numpy as np

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for _ in range(30):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    detections = tmp_path / "det.txt"
    detections.write_text("1,-1,1,1,10,10,0.9\n")
    result = cli(["track", video, "--detections", detections, "-f", "jsonl"])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 30
    assert "dropped" not in result.stderr


def test_ctrl_c_on_a_live_stream_keeps_everything(tmp_path):
    import signal
    import subprocess
    import sys

    from helpers import default_sigint

    with MjpegServer(frames=2000, fps=40.0, connections=1) as server:
        detections = tmp_path / "det.txt"
        detections.write_text(
            "".join(f"{f + 1},-1,{10 + (f * 3) % 100},40,30,60,0.9\n" for f in range(2000))
        )
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "cvtasks", "track", server.url, "--detections", detections,
             "--line", "door=60,0,60,120", "-o", out, "--save-images", "-q"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        results = out / "results.jsonl"
        while time.monotonic() < deadline and (
            not results.exists() or len(results.read_text().splitlines()) < 20
        ):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    records = [json.loads(line) for line in results.read_text().splitlines()]
    (entry,) = json.loads((out / "analytics.json").read_text())["sources"]
    assert entry["frames"] >= len(records) >= 20 and "door" in entry["lines"]
    assert (out / "tracks.jsonl").read_text().strip()  # the tracks seen so far are written
    assert (out / "mot" / "stream.mjpg.txt").exists() or list((out / "mot").iterdir())
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
