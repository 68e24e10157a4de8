"""The task-agnostic engine: a generator from input files to ``(Frame, Result | Failure)``.

Images are decoded and preprocessed in DataLoader workers (``--workers``) and batched
(``--batch-size``); videos are read sequentially on a background thread. Inference runs under
``torch.inference_mode``. One failing input never stops the others: it becomes a
:class:`Failure`. The engine never writes files; sinks do.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import torch
from PIL import Image
from torch.utils.data import DataLoader

from cvtasks.device import autocast_for
from cvtasks.errors import CvTasksError, ItemError
from cvtasks.io.frames import FrameReader, ReaderOptions, open_reader
from cvtasks.io.sources import InputItem
from cvtasks.log import warn
from cvtasks.samples import (
    ImageDataset,
    Sample,
    finish_on_device,
    identity,
    image_frames,
    prepare,
)
from cvtasks.tasks.base import Predictor
from cvtasks.types import Failure, Frame, Outcome

T = TypeVar("T")
FrameKey = tuple[str, int | None]


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over all processed frames."""

    decode: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0


@dataclass
class RunStats:
    """Counts and timings of one engine run."""

    processed: int = 0
    failed: int = 0
    skipped: int = 0  # already in results (--resume)
    dropped: int = 0  # live sources: frames dropped because inference fell behind
    times: StageTimes = field(default_factory=StageTimes)

    def per_frame_ms(self) -> dict[str, float]:
        n = max(self.processed, 1)
        return {
            stage: 1000.0 * getattr(self.times, stage) / n
            for stage in ("decode", "preprocess", "inference", "postprocess")
        }


class Engines(Protocol):
    """What the runner needs of an engine (local or Ray): results in order, and counts."""

    stats: RunStats

    def __iter__(self) -> Iterator[tuple[Frame, Outcome]]: ...


def usable_lanes(predictor: Predictor, lanes: int, workers: int) -> int:
    """Lanes need a predictor that allows them and no DataLoader workers; otherwise one.

    ``lanes=0`` (auto) is two lanes on a CPU with two or more cores whose threads are ours to
    divide (no OMP_NUM_THREADS): measured 1.0-1.2x one lane for resnet50 on 2 cores (fp32,
    bf16), because each lane's single-threaded forward overlaps the other's decoding.
    """
    if not predictor.supports_lanes or workers > 0:
        return 1
    if lanes > 0:
        return lanes
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    auto = predictor.device.type == "cpu" and (cores or 1) >= 2
    return 2 if auto and "OMP_NUM_THREADS" not in os.environ else 1


def _chunks(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    chunk: list[T] = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def prefetch(iterable: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Run ``iterable`` on a background thread, at most ``depth`` items ahead of the consumer."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterable:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # re-raised in the consumer
            put(("error", exc))
        finally:  # a stopped consumer: close the source now (a live reader's thread too)
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="cvtasks-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, payload = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise payload
            yield payload
    finally:
        stop.set()
        thread.join(timeout=30)  # no thread left inside a decoder when the process exits


class Engine:
    """Iterate over ``(Frame, Result | Failure)`` for every input, in input order."""

    def __init__(
        self,
        predictor: Predictor,
        items: Sequence[InputItem],
        *,
        batch_size: int = 8,
        workers: int = 0,
        vid_stride: int = 1,
        max_pixels: int,
        keep_images: bool = False,
        done: Collection[FrameKey] = frozenset(),
        precision: str = "fp32",
        jpeg_draft: bool = False,
        lanes: int = 1,
        reader: Callable[[InputItem], FrameReader] | None = None,
        device_decode: bool = False,
        on_corrupt: str = "warn",
    ) -> None:
        self.predictor = predictor
        self.on_corrupt = on_corrupt
        self.open_reader = reader or (lambda item: open_reader(item, ReaderOptions(max_pixels)))
        self.items = list(items)
        self.batch_size = batch_size
        self.workers = workers
        self.vid_stride = vid_stride
        self.max_pixels = max_pixels
        self.keep_images = keep_images or predictor.needs_images
        # Reduced-scale decoding for the model whether or not images are kept for drawing.
        self.min_side = predictor.decode_min_side() if jpeg_draft else None
        self.done = done
        self.precision = precision
        self.lanes = usable_lanes(predictor, lanes, workers)
        self._stats_lock = threading.Lock()
        autocast_for(predictor.device, precision)  # fp16 on a CPU fails here, before any input
        self.stats = RunStats()
        self._preprocess = predictor.preprocessor()
        # JPEGs decoded and preprocessed on the model's device (--decode-on)
        self._on_device = predictor.tensor_preprocessor() if device_decode else None

    def __iter__(self) -> Iterator[tuple[Frame, Outcome]]:
        run: list[InputItem] = []
        for item in self.items:
            if not item.is_video:
                run.append(item)
                continue
            if run:
                yield from self._images(run)
                run = []
            yield from self._video(item)
        if run:
            yield from self._images(run)

    # ------------------------------------------------------------------ images

    def _images(self, items: list[InputItem]) -> Iterator[tuple[Frame, Outcome]]:
        todo = [item for item in items if (item.source, None) not in self.done]
        self.stats.skipped += len(items) - len(todo)
        if not todo:
            return
        dataset = ImageDataset(
            todo,
            self._preprocess,
            self.max_pixels,
            self.keep_images,
            self.min_side,
            device_decode=self._on_device is not None,
            on_corrupt=self.on_corrupt,
        )
        if self.lanes > 1:
            yield from self._images_in_lanes(todo, dataset)
            return
        # One sample per worker request (batch_size=None), batched here: every worker is busy
        # from the start even when there are fewer batches than workers.
        depth = max(2, -(-2 * self.batch_size // max(self.workers, 1)))
        loader = DataLoader(
            dataset,
            batch_size=None,
            shuffle=False,
            num_workers=self.workers,
            collate_fn=identity,  # type: ignore[arg-type]  # batch_size=None: one sample
            pin_memory=self.predictor.device.type == "cuda",
            prefetch_factor=depth if self.workers > 0 else None,
        )
        for samples in _chunks(loader, self.batch_size):
            samples = self._finish(samples, dataset)
            yield from self._run_batch(samples, image_frames(todo, samples))

    def _images_in_lanes(
        self, todo: list[InputItem], dataset: ImageDataset
    ) -> Iterator[tuple[Frame, Outcome]]:
        """Batches processed side by side on ``lanes`` threads, each decoding its own images
        and running the model (PIL and torch release the GIL); results come out in order."""

        def process(positions: list[int]) -> tuple[list[Frame], list[Outcome]]:
            samples = self._finish([dataset[i] for i in positions], dataset)
            frames = image_frames(todo, samples)
            return frames, self._outcomes(samples, frames)

        pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="cvtasks-lane")
        pending: deque[Future[tuple[list[Frame], list[Outcome]]]] = deque()
        try:
            for positions in _chunks(range(len(todo)), self.batch_size):
                pending.append(pool.submit(process, positions))
                if len(pending) > self.lanes:
                    yield from self._count(*pending.popleft().result())
            while pending:
                yield from self._count(*pending.popleft().result())
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _finish(self, samples: list[Sample], dataset: ImageDataset) -> list[Sample]:
        """JPEG bytes decoded and preprocessed on the device, when that is the path."""
        if self._on_device is None:
            return samples
        return finish_on_device(
            samples, dataset, self.predictor.device, self._on_device, self.keep_images
        )

    # ------------------------------------------------------------------ videos

    def _video(self, item: InputItem) -> Iterator[tuple[Frame, Outcome]]:
        """A stream of frames (video, image sequence or live source), in order."""
        try:
            reader = self.open_reader(item)
        except ItemError as exc:
            self.stats.failed += 1
            yield Frame(item.source, None, rel=item.rel), Failure(str(exc))
            return
        produced = False
        try:
            for samples, frames in prefetch(self._video_batches(item, reader)):
                produced = True
                yield from self._run_batch(samples, frames)
        except ItemError as exc:  # a live source that died: the source fails, after its frames
            self.stats.failed += 1
            self.stats.dropped += reader.dropped
            yield Frame(item.source, None, rel=item.rel), Failure(str(exc))
            return
        self.stats.dropped += reader.dropped
        if not produced and reader.frames_read == 0:
            self.stats.failed += 1
            yield Frame(item.source, None, rel=item.rel), Failure("no decodable frames")
            return
        problem = reader.ended_early()
        if problem:
            warn(f"{item.source}: {problem}")

    def _video_batches(
        self, item: InputItem, reader: FrameReader
    ) -> Iterator[tuple[list[Sample], list[Frame]]]:
        for pairs in _chunks(self._video_frames(item, reader), self.batch_size):
            yield [sample for sample, _ in pairs], [frame for _, frame in pairs]

    def _video_frames(self, item: InputItem, reader: FrameReader) -> Iterator[tuple[Sample, Frame]]:
        for number, rgb in reader.frames(self.vid_stride):
            resumed = (item.source, number) in self.done
            if resumed and not self.keep_images:
                self.stats.skipped += 1
                continue
            if isinstance(rgb, ItemError):  # this frame (or the live stream) failed
                sample = Sample(number, error=str(rgb))
            else:
                sample = prepare(
                    number,
                    functools.partial(Image.fromarray, rgb),
                    self._preprocess,
                    self.keep_images,
                )
            frame = Frame(
                item.source,
                number,
                sample.width,
                sample.height,
                item.rel,
                sample.image,
                fps=reader.fps,
                resumed=resumed,
                dropped=reader.dropped,
            )
            yield sample, frame

    # ------------------------------------------------------------------ inference

    def _run_batch(
        self, samples: list[Sample], frames: list[Frame]
    ) -> Iterator[tuple[Frame, Outcome]]:
        return self._count(frames, self._outcomes(samples, frames))

    def _outcomes(self, samples: list[Sample], frames: list[Frame]) -> list[Outcome]:
        """One outcome per sample: its decoding error, or the model's result."""
        for sample, frame in zip(samples, frames, strict=True):
            if sample.warning is not None:
                warn(f"{frame.source}: {sample.warning}")
        ok = [i for i, s in enumerate(samples) if s.error is None]
        inferred = iter(
            self._infer([samples[i] for i in ok], [frames[i] for i in ok]) if ok else []
        )
        return [
            Failure(sample.error) if sample.error is not None else next(inferred)
            for sample in samples
        ]

    def _count(
        self, frames: list[Frame], outcomes: list[Outcome]
    ) -> Iterator[tuple[Frame, Outcome]]:
        """Pass the outcomes on in order, counting failures and processed frames."""
        for frame, outcome in zip(frames, outcomes, strict=True):
            if isinstance(outcome, Failure):
                self.stats.failed += 1
            elif not frame.resumed:
                self.stats.processed += 1
            yield frame, outcome

    def _infer(self, samples: list[Sample], frames: list[Frame]) -> list[Outcome]:
        """Run the model on a batch; if it fails, retry one by one so only bad inputs fail."""
        predictor = self.predictor
        try:
            t0 = time.perf_counter()
            batch = predictor.to_device(predictor.collate([s.tensor for s in samples]))
            with predictor.inference_context(), autocast_for(predictor.device, self.precision):
                outputs = predictor.infer_frames(batch, frames)
                if predictor.device.type == "cuda":
                    torch.cuda.synchronize(predictor.device)
                t1 = time.perf_counter()
                results = predictor.postprocess(outputs, frames)
            t2 = time.perf_counter()
        except CvTasksError:
            raise  # a usage or weights problem is the run's, not this input's
        except Exception as exc:
            if len(samples) > 1:
                return [
                    o for s, f in zip(samples, frames, strict=True) for o in self._infer([s], [f])
                ]
            if isinstance(exc, ItemError):  # e.g. a ground truth that does not fit this image
                return [Failure(str(exc))]
            return [Failure(f"inference failed: {type(exc).__name__}: {exc}")]
        with self._stats_lock:  # lanes finish batches concurrently
            times = self.stats.times
            times.inference += t1 - t0
            times.postprocess += t2 - t1
            for s in samples:
                times.decode += s.decode_s
                times.preprocess += s.preprocess_s
        return list(results)
