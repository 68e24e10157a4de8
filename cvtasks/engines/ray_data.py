"""``--engine ray``: the same ``(Frame, Result | Failure)`` stream, computed by Ray Data actors.

Ray Data's batch-inference pattern: the inputs (after ``--resume`` filtering) become a dataset
of work units — up to ``--batch-size`` consecutive images, or one whole video, so a tracker
downstream never sees a video's frames out of order — and ``map_batches`` runs them on a pool
of actors (:class:`_Predict`) that each build the task's predictor once, with the same factory
as the local engine, and decode inside the actor. Results stream back in input order
(``preserve_order``) to this process, which writes them through the usual sinks. Local weight
files (and labels, faces or detections files) travel through the object store, so workers need
no shared filesystem for them; the inputs themselves are read by the workers at the same
absolute paths.

This is the only module that imports ray.
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cvtasks.config import InferenceConfig
from cvtasks.engine import RunStats, StageTimes
from cvtasks.engines.cluster import check_items
from cvtasks.engines.ray_connect import connect
from cvtasks.engines.shipping import (
    SHIPPED_KEYS,
    FrameKey,
    Unit,
    make_units,
    pack_files,
    unpack_files,
)
from cvtasks.errors import ClusterError, CvTasksError, UsageError
from cvtasks.io.sources import InputItem
from cvtasks.log import capture, emit
from cvtasks.tasks.base import Predictor
from cvtasks.tasks.registry import get_task
from cvtasks.types import Failure, Frame, Outcome
from cvtasks.version import __version__


@dataclass
class _Chunk:
    """What an actor sends back: a run of consecutive results and the stage times they took."""

    pairs: list[tuple[Frame, Outcome]]
    times: StageTimes
    skipped: int
    dropped: int
    actor: str
    messages: list[str]  # the actor's warnings, printed here


# --------------------------------------------------------------------------- the actor


class _Predict:
    """A Ray Data actor: builds the predictor once, then runs the local engine on each unit.

    A failure to build the predictor is kept and raised on the first call, so that it ends
    the run with its own message instead of Ray restarting the actor again and again.
    """

    def __init__(
        self,
        task: str,
        cfg: InferenceConfig,
        packed: Any,
        version: str,
        keep_images: bool,
        cwd: str,
    ) -> None:
        self.error: BaseException | None = None
        self.keep_images = keep_images
        self.actor = f"{socket.gethostname()}:{os.getpid()}"
        self._files = tempfile.TemporaryDirectory(prefix="cvtasks-ray-")
        self.messages = capture()
        try:
            if version != __version__:
                raise ClusterError(
                    f"cvtasks {__version__} on Ray worker {socket.gethostname()}, "
                    f"{version} here: install the same version on every node"
                )
            from cvtasks.engines.local import load_predictor
            from cvtasks.tasks.registry import get_task

            if os.path.isdir(cwd):  # this machine, or a shared filesystem: relative paths work
                os.chdir(cwd)
            self.cfg = copy.copy(cfg)
            self.cfg.engine = "local"
            self.cfg.lanes = 1  # the actor's CPUs are its torch threads
            import ray

            unpack_files(self.cfg, ray.get(packed[0]), Path(self._files.name))
            self.predictor = load_predictor(get_task(task), self.cfg)
        except BaseException as exc:  # raised on the first batch, with its message
            self.error = exc

    def __call__(self, batch: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        if self.error is not None:
            raise self.error
        from cvtasks.engines.local import local_engine

        for unit_id, work in zip(batch["unit"], batch["work"], strict=True):
            unit: Unit = pickle.loads(work)
            engine = local_engine(
                self.predictor, unit.items, self.cfg, keep_images=self.keep_images, done=unit.done
            )
            pairs: list[tuple[Frame, Outcome]] = []
            sent = RunStats()
            number = 0
            for pair in engine:
                pairs.append(pair)
                if len(pairs) >= self.cfg.batch_size:
                    yield self._chunk(int(unit_id), number, pairs, engine.stats, sent)
                    number, pairs = number + 1, []
            yield self._chunk(int(unit_id), number, pairs, engine.stats, sent)

    def _chunk(
        self,
        unit: int,
        number: int,
        pairs: list[tuple[Frame, Outcome]],
        stats: RunStats,
        sent: RunStats,
    ) -> dict[str, np.ndarray]:
        """One output row; ``sent`` keeps what earlier chunks of the unit reported."""
        times = StageTimes(
            *(
                getattr(stats.times, name) - getattr(sent.times, name)
                for name in ("decode", "preprocess", "inference", "postprocess")
            )
        )
        chunk = _Chunk(
            pairs,
            times,
            stats.skipped - sent.skipped,
            stats.dropped - sent.dropped,
            self.actor,
            list(self.messages),
        )
        self.messages.clear()
        sent.times = replace(stats.times)
        sent.skipped, sent.dropped = stats.skipped, stats.dropped
        payload = np.empty(1, dtype=object)
        payload[0] = _dumps(chunk)
        return {"unit": np.array([unit]), "chunk": np.array([number]), "payload": payload}


def _dumps(value: Any) -> bytes:
    from ray import cloudpickle

    return bytes(cloudpickle.dumps(value))


# --------------------------------------------------------------------------- the driver


class RayEngine:
    """Iterate over ``(Frame, Result | Failure)`` for every input, in input order, computed on
    a Ray cluster (or a local Ray instance started for the run and stopped after it)."""

    def __init__(
        self,
        task: str,
        predictor: Predictor,
        items: list[InputItem],
        cfg: InferenceConfig,
        *,
        keep_images: bool,
        done: set[FrameKey] | frozenset[FrameKey] = frozenset(),
    ) -> None:
        check_items(items)
        if getattr(predictor, "gathers_inputs", False):
            raise UsageError(
                f"{task} {getattr(cfg, 'method', '')}: gathers all inputs in one process; run "
                "it with --engine local"
            )
        self.task = task
        self.cfg = cfg
        self.keep_images = keep_images or predictor.needs_images
        self.stats = RunStats()
        self.units, self.stats.skipped = make_units(items, cfg.batch_size, done)
        # per actor: frames processed and seconds spent on them (the bench's per-actor rate)
        self.actor_frames: dict[str, int] = {}
        self.actor_seconds: dict[str, float] = {}
        self.printed: set[str] = set()
        self.started = bool(self.units) and connect(cfg)  # setup time, before the first input

    def __iter__(self) -> Iterator[tuple[Frame, Outcome]]:
        return self._run()

    def _run(self) -> Iterator[tuple[Frame, Outcome]]:
        import ray

        if not self.units:
            return
        try:
            seen: set[tuple[int, int]] = set()
            for row in _iter_rows(self._dataset()):
                key = (int(row["unit"]), int(row["chunk"]))
                if key in seen:  # a retried unit sends its first chunks again
                    continue
                seen.add(key)
                yield from self._take(pickle.loads(row["payload"]))
        finally:
            if self.started:
                with contextlib.suppress(Exception):
                    ray.shutdown()

    def _take(self, chunk: _Chunk) -> Iterator[tuple[Frame, Outcome]]:
        stats = self.stats
        busy = 0.0
        for name in ("decode", "preprocess", "inference", "postprocess"):
            busy += getattr(chunk.times, name)
            setattr(stats.times, name, getattr(stats.times, name) + getattr(chunk.times, name))
        self.actor_seconds[chunk.actor] = self.actor_seconds.get(chunk.actor, 0.0) + busy
        for line in chunk.messages:  # each actor says the same things about the model
            if line not in self.printed:
                self.printed.add(line)
                emit(line)
        stats.skipped += chunk.skipped
        stats.dropped += chunk.dropped
        for frame, outcome in chunk.pairs:
            if isinstance(outcome, Failure):
                stats.failed += 1
            elif not frame.resumed:
                stats.processed += 1
                self.actor_frames[chunk.actor] = self.actor_frames.get(chunk.actor, 0) + 1
            yield frame, outcome

    def _dataset(self) -> Any:
        import ray
        from ray.data import ActorPoolStrategy, DataContext

        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # results in input order
        context.enable_progress_bars = False  # the run's own progress bar is on stderr
        context.print_on_execution_start = False
        rows = [{"unit": i, "work": pickle.dumps(unit)} for i, unit in enumerate(self.units)]
        # One block per unit (up to a bound): work is handed out to actors per block.
        dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 10_000))
        # In a list: the actors fetch it themselves (a restarted actor too, while we hold it).
        keys: tuple[str, ...] = SHIPPED_KEYS
        if get_task(self.task).model_source == "transformers":  # -m may be a local folder
            keys = (*keys, "model")
        self._packed = [ray.put(pack_files(self.cfg, keys))]
        return dataset.map_batches(
            _Predict,
            batch_size=1,  # one unit: --batch-size images or one video
            batch_format="numpy",
            compute=ActorPoolStrategy(size=self.pool_size()),
            fn_constructor_args=(
                self.task,
                self.cfg,
                self._packed,
                __version__,
                self.keep_images,
                os.getcwd(),
            ),
            num_cpus=self.cfg.ray_cpus,
            num_gpus=self.cfg.ray_gpus,
        )

    def pool_size(self) -> int:
        """``--ray-actors``, or as many as the cluster's resources allow (at most one per unit)."""
        if self.cfg.ray_actors > 0:
            return self.cfg.ray_actors
        import ray

        resources = ray.cluster_resources()
        if self.cfg.ray_gpus > 0:
            fit = int(resources.get("GPU", 0) // self.cfg.ray_gpus)
        else:
            fit = int(resources.get("CPU", 1) // self.cfg.ray_cpus)
        return max(1, min(fit, len(self.units)))


def _iter_rows(dataset: Any) -> Iterator[dict[str, Any]]:
    """The dataset's rows as they are computed; a failed run becomes the error that caused it
    (a usage or weights error raised in an actor keeps its exit code)."""
    rows = iter(dataset.iter_rows())
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except CvTasksError:
            raise
        except Exception as exc:
            cause = _root_cause(exc)
            if isinstance(cause, CvTasksError):
                raise cause from None
            reason = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            raise ClusterError(f"the Ray run failed: {type(cause).__name__}: {reason}") from None
        yield row


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception behind Ray's wrappers (RayTaskError, UserCodeException)."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CvTasksError):
            return current
        inner = getattr(current, "cause", None) or current.__cause__ or current.__context__
        if not isinstance(inner, BaseException):
            break
        current = inner
    return current
