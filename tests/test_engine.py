"""The engine: order, batching, workers, failure isolation, resume keys, videos."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cvtasks.config import BaseConfig
from cvtasks.engine import Engine, prefetch
from cvtasks.io.sources import expand_inputs
from cvtasks.tasks.base import Predictor
from cvtasks.types import Failure, Frame, Result


class MeanColour:
    """A tiny real result: the mean colour of the model input."""

    def __init__(self, value: float) -> None:
        self.value = value

    def to_record(self):
        return {"mean": self.value}

    def summary(self) -> str:
        return f"{self.value:.1f}"

    def annotate(self, image):
        return image


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.resize((8, 8)), dtype=np.float32)).permute(2, 0, 1)


class MeanPredictor(Predictor):
    """Computes mean intensity; refuses (raises) on inputs brighter than ``refuse_above``."""

    task = "mean"

    def __init__(self, refuse_above: float = 1e9) -> None:
        super().__init__(BaseConfig(model="mean"), torch.device("cpu"))
        self.refuse_above = refuse_above
        self.batch_sizes: list[int] = []

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return _to_tensor

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(len(batch))
        means = batch.mean(dim=(1, 2, 3))
        if (means > self.refuse_above).any():
            raise RuntimeError("too bright")
        return means

    def postprocess(self, outputs: torch.Tensor, frames: Sequence[Frame]) -> list[Result]:
        return [MeanColour(float(v)) for v in outputs]


class LanedMeanPredictor(MeanPredictor):
    """MeanPredictor that may run on lanes; remembers which threads ran the model."""

    supports_lanes = True

    def __init__(self, refuse_above: float = 1e9) -> None:
        super().__init__(refuse_above)
        self.threads: set[str] = set()

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        self.threads.add(threading.current_thread().name)
        time.sleep(0.05)  # busy long enough that the next batch needs another lane's thread
        return super().infer(batch)


@pytest.fixture
def greys(tmp_path) -> list[Path]:
    paths = []
    for i in range(7):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (20 + i, 10), (i * 30,) * 3).save(path)
        paths.append(path)
    (tmp_path / "3.png").write_bytes(b"broken")
    return paths


@pytest.mark.parametrize(
    ("batch", "workers", "lanes"),
    [(1, 0, 1), (3, 0, 1), (3, 2, 1), (8, 1, 1), (1, 0, 2), (2, 0, 3)],
)
def test_order_batches_and_failures(greys, batch, workers, lanes):
    predictor = LanedMeanPredictor()
    engine = Engine(
        predictor,
        expand_inputs([str(p) for p in greys]),
        batch_size=batch,
        workers=workers,
        max_pixels=10**6,
        lanes=lanes,
    )
    out = list(engine)
    assert [f.source for f, _ in out] == [str(p) for p in greys]
    assert isinstance(out[3][1], Failure) and "not a recognised image" in out[3][1].error
    means = [o.value for _, o in out if not isinstance(o, Failure)]
    assert means == pytest.approx([0, 30, 60, 120, 150, 180])
    assert [(f.width, f.height) for f, _ in out][:3] == [(20, 10), (21, 10), (22, 10)]
    assert engine.stats.processed == 6 and engine.stats.failed == 1
    assert max(predictor.batch_sizes) <= batch
    if lanes > 1:  # side by side on the lane threads, never in the caller's thread
        assert len(predictor.threads) >= 2
        assert all(name.startswith("cvtasks-lane") for name in predictor.threads)
    else:
        assert predictor.threads == {threading.current_thread().name}


def test_lanes_need_a_predictor_that_allows_them_and_no_workers(greys):
    inputs = expand_inputs([str(p) for p in greys])
    assert Engine(MeanPredictor(), inputs, lanes=2, max_pixels=10**6).lanes == 1
    assert Engine(LanedMeanPredictor(), inputs, lanes=2, workers=1, max_pixels=10**6).lanes == 1
    assert Engine(LanedMeanPredictor(), inputs, lanes=2, max_pixels=10**6).lanes == 2
    assert Engine(MeanPredictor(), inputs, lanes=0, max_pixels=10**6).lanes == 1


def test_automatic_lanes_are_two_on_a_multicore_cpu(greys, monkeypatch):
    from cvtasks.engine import usable_lanes

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert usable_lanes(LanedMeanPredictor(), 0, 0) == 2
    assert usable_lanes(LanedMeanPredictor(), 0, 1) == 1  # DataLoader workers: one lane
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert usable_lanes(LanedMeanPredictor(), 0, 0) == 1
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # threads set by the user (or Ray): one lane
    assert usable_lanes(LanedMeanPredictor(), 0, 0) == 1


def test_a_failing_batch_on_a_lane_is_retried_item_by_item(greys):
    predictor = LanedMeanPredictor(refuse_above=130)
    inputs = expand_inputs([str(p) for p in greys])
    out = list(Engine(predictor, inputs, batch_size=2, lanes=2, max_pixels=10**6))
    failed = [f.source for f, o in out if isinstance(o, Failure)]
    assert failed == [str(greys[i]) for i in (3, 5, 6)]
    assert out[4][1].value == pytest.approx(120)


def test_failing_batch_is_retried_item_by_item(greys):
    predictor = MeanPredictor(refuse_above=130)
    out = list(
        Engine(predictor, expand_inputs([str(p) for p in greys]), batch_size=4, max_pixels=10**6)
    )
    failed = [f.source for f, o in out if isinstance(o, Failure)]
    assert failed == [str(greys[i]) for i in (3, 5, 6)]
    assert "inference failed: RuntimeError: too bright" in out[5][1].error
    assert out[4][1].value == pytest.approx(120)


def test_done_keys_are_skipped(greys):
    done = {(str(greys[0]), None), (str(greys[2]), None)}
    engine = Engine(
        MeanPredictor(), expand_inputs([str(p) for p in greys]), max_pixels=10**6, done=done
    )
    sources = [f.source for f, _ in engine]
    assert str(greys[0]) not in sources and str(greys[2]) not in sources and len(sources) == 5
    assert engine.stats.skipped == 2


def test_video_frames_and_resume(tmp_path):
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 16))
    for i in range(9):
        writer.write(np.full((16, 32, 3), i * 25, np.uint8))
    writer.release()
    items = expand_inputs([str(video)])
    engine = Engine(MeanPredictor(), items, batch_size=2, vid_stride=2, max_pixels=10**6)
    out = list(engine)
    assert [f.index for f, _ in out] == [0, 2, 4, 6, 8]
    assert [o.value for _, o in out] == pytest.approx([0, 50, 100, 150, 200], abs=3)
    assert out[0][0].fps == pytest.approx(5.0)
    done = {(str(video), 0), (str(video), 2)}
    resumed = list(Engine(MeanPredictor(), items, vid_stride=2, max_pixels=10**6, done=done))
    assert [f.index for f, _ in resumed] == [4, 6, 8]
    rendered = list(
        Engine(MeanPredictor(), items, vid_stride=2, max_pixels=10**6, done=done, keep_images=True)
    )
    assert [(f.index, f.resumed) for f, _ in rendered][:3] == [(0, True), (2, True), (4, False)]


def test_prefetch_propagates_errors_and_order():
    def produce():
        yield from range(5)
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for x in prefetch(produce(), depth=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
