"""Run one task end to end: inputs -> predictor -> engine -> sinks, with progress on stderr.

This is what the CLI commands and ``cvtasks run job.yaml`` call; it returns a summary and
leaves the exit code to the caller.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from cvtasks.config import InferenceConfig
from cvtasks.engine import Engines, RunStats
from cvtasks.engines.local import load_predictor, local_engine, name_the_model
from cvtasks.errors import OutputError, UsageError
from cvtasks.io.lock import out_lock
from cvtasks.io.outdir import (
    check_not_overwriting,
    check_resume_compatible,
    drop_changed,
    read_done,
    write_config,
)
from cvtasks.io.sinks import OutDirSink, StdoutSink
from cvtasks.io.sources import InputItem, expand_inputs
from cvtasks.log import warn
from cvtasks.tasks.base import Predictor
from cvtasks.tasks.spec import TaskSpec
from cvtasks.types import Failure, make_record


@dataclass
class RunSummary:
    """What happened in one run (the CLI turns it into an exit code)."""

    stats: RunStats
    inputs: int
    load_s: float
    wall_s: float
    stopped_early: bool = False  # stdout closed and nothing else to write


def default_format(stream: TextIO) -> str:
    """``table`` for a person at a terminal, ``jsonl`` for pipes and files."""
    try:
        return "table" if stream.isatty() else "jsonl"
    except (AttributeError, ValueError):
        return "jsonl"


def usage_line(spec: TaskSpec) -> str:
    """The command's synopsis, for errors about missing arguments."""
    positional = "".join(f" {name.upper()}" for name in spec.positional)
    return f"usage: cvtasks {spec.name}{positional} [OPTIONS] INPUTS..."


def check_run_options(spec: TaskSpec, cfg: InferenceConfig) -> None:
    """Usage errors that need no file system: missing inputs, output options without --out."""
    if not cfg.inputs:
        raise UsageError(
            f"no inputs given: pass images, folders, globs, @list.txt, '-' (paths on stdin) or "
            f"videos\n{usage_line(spec)}   (see cvtasks {spec.name} --help)"
        )
    if cfg.out is None:
        for key in ("save_images", "save_txt", "report"):
            if getattr(cfg, key, False):
                flag = "--" + key.replace("_", "-")
                raise UsageError(f"{flag} writes files under --out: pass -o DIR as well")


def collect_inputs(
    cfg: InferenceConfig, stdin: TextIO | None = None, spec: TaskSpec | None = None
) -> list[InputItem]:
    """Expand ``cfg.inputs`` (usage error before any model loads), excluding ``--out``: files
    for most tasks, one source per input for tracking."""
    exclude = Path(cfg.out) if cfg.out else None
    expand = spec.expand_function() if spec is not None else expand_inputs
    items: list[InputItem] = expand(cfg.inputs, stdin=stdin, exclude=exclude)
    return items


def build_engine(
    predictor: Predictor,
    items: list[InputItem],
    cfg: InferenceConfig,
    *,
    keep_images: bool,
    done: Collection[Any] = frozenset(),
    task: str = "",
) -> Engines:
    """The engine configured from ``cfg``: the local generator, or with ``--engine ray`` Ray Data
    actors running it (``task`` rebuilds the predictor there)."""
    if cfg.engine == "ray":
        from cvtasks.engines.ray_data import RayEngine

        return RayEngine(task, predictor, items, cfg, keep_images=keep_images, done=set(done))
    return local_engine(predictor, items, cfg, keep_images=keep_images, done=done)


def run_task(
    spec: TaskSpec,
    cfg: InferenceConfig,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> RunSummary:
    """Run ``spec`` over ``cfg.inputs``, writing stdout and ``--out`` as configured."""
    t_start = time.perf_counter()
    out_stream = stdout if stdout is not None else sys.stdout
    console = Console(file=stderr if stderr is not None else sys.stderr)
    check_run_options(spec, cfg)
    items = collect_inputs(cfg, stdin, spec)
    out = Path(cfg.out) if cfg.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    with out_lock(out, wait=cfg.wait_lock) if out is not None else contextlib.nullcontext():
        return _run_locked(spec, cfg, items, out, out_stream, console, t_start)


def _run_locked(
    spec: TaskSpec,
    cfg: InferenceConfig,
    items: list[InputItem],
    out: Path | None,
    out_stream: TextIO,
    console: Console,
    t_start: float,
) -> RunSummary:
    """The run itself, while this process holds the lock of ``--out``."""
    done: set[Any] = set()
    if out is not None:
        check_not_overwriting(out, cfg.resume, cfg.overwrite)
    if out is not None and cfg.resume:
        name_the_model(cfg, tell=False)  # -w runs/X or an exported file: compare the model it names
        check_resume_compatible(out, spec.name, cfg)
    stage = spec.make_stage(cfg, out, items)  # tracking: checks its options before the model
    if stage is not None and out is not None and cfg.resume and not stage.resumed_itself:
        from cvtasks.io.resume import resume_by_source

        resume_by_source(out, stage)
    if stage is not None:
        items = stage.items  # with --resume, the sources not finished yet
    elif out is not None and cfg.resume:
        done, changed = drop_changed(out, read_done(out))
        if changed:
            warn(
                f"--resume: {len(changed)} input(s) changed since their results were written "
                f"(size or modification time), processed again: {', '.join(changed[:3])}"
                + (" ..." if len(changed) > 3 else "")
            )
    if cfg.engine == "ray":
        from cvtasks.engines.cluster import check_run

        check_run(cfg, items)
    predictor = load_predictor(spec, cfg)
    if stage is not None:
        stage.predictor = predictor
    fmt = cfg.format or default_format(out_stream)
    stdout_sink = StdoutSink(fmt, spec.name, predictor.model_name, out_stream)
    records_out = stage is None or stage.prints_records  # else stdout carries a report
    out_sink = None
    if out is not None:
        with _writing(out):
            write_config(out, spec.name, cfg, note=predictor.preprocessing_note())
            out_sink = OutDirSink(
                out, save_images=cfg.save_images, append=cfg.resume, vid_stride=cfg.vid_stride
            )
    keep_images = (cfg.save_images and out is not None) or bool(stage and stage.needs_images)
    engine = build_engine(predictor, items, cfg, keep_images=keep_images, done=done, task=spec.name)
    load_s = time.perf_counter() - t_start  # model loaded (and a Ray cluster joined)
    stream = stage.run(iter(engine)) if stage is not None else iter(engine)
    # The --out files first: whatever reached stdout is already persisted.
    extra = stage.sinks() if stage is not None else []
    sinks = [s for s in (out_sink, *extra, stdout_sink if records_out else None) if s is not None]
    stopped_early = False
    try:
        with _progress(console, len(items), enabled=not cfg.quiet) as advance:
            current: str | None = None
            for frame, outcome in stream:
                if frame.source != current:
                    if current is not None:
                        advance()
                    current = frame.source
                if isinstance(outcome, Failure):
                    where = frame.source if frame.index is None else f"{frame.source}#{frame.index}"
                    console.print(
                        f"[red]error[/red]: {escape(where)}: {escape(outcome.error)}",
                        highlight=False,
                        soft_wrap=True,
                    )
                with _writing(out):
                    record = None
                    if not isinstance(outcome, Failure):
                        predictor.observe(outcome)
                        files = out_sink.save_files(frame, outcome) if out_sink is not None else {}
                        record = make_record(frame, spec.name, predictor.model_name, outcome, files)
                    for sink in sinks:
                        sink.write(frame, outcome, record)
                if stdout_sink.closed and out_sink is None:
                    stopped_early = True
                    break
            if current is not None:
                advance()
    except BaseException:
        with contextlib.suppress(Exception):  # stop readers and their threads now
            getattr(stream, "close", lambda: None)()
        if stage is not None:  # what was tracked so far is summarised and kept
            with contextlib.suppress(Exception):
                stage.finish()
        for sink in sinks:
            sink.abort()
        raise
    with _writing(out):
        lines = stage.finish() if stage is not None else []
        for sink in sinks:
            sink.close()
        lines += predictor.finalize(out)
    if stage is not None:
        engine.stats.failed += stage.failures
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    if out is not None and cfg.report:
        from cvtasks.report.page import build_report

        with _writing(out):
            console.print(f"report: {build_report(out)}", highlight=False, soft_wrap=True)
    text = stage.report(fmt) if stage is not None else None
    if text is not None:
        out_stream.write(text)
        out_stream.flush()
    summary = RunSummary(
        engine.stats, len(items), load_s, time.perf_counter() - t_start, stopped_early
    )
    if not cfg.quiet:
        note = predictor.preprocessing_note()
        if note:
            console.print(escape(note), highlight=False, soft_wrap=True)
        shown = f"{spec.parent} {spec.kind}" if spec.parent else spec.name  # eval detect
        console.print(format_timing(shown, summary), highlight=False, soft_wrap=True)
    report = predictor.final_report()
    if report:
        console.print(report, highlight=False, soft_wrap=True)
    return summary


def format_timing(task: str, summary: RunSummary) -> str:
    """One line of throughput and per-stage milliseconds for stderr."""
    stats = summary.stats
    ms = stats.per_frame_ms()
    rate = stats.processed / max(summary.wall_s - summary.load_s, 1e-9)
    parts = [
        f"{task}: {stats.processed} done, {stats.failed} failed"
        + (f", {stats.skipped} skipped (resume)" if stats.skipped else "")
        + (f", {stats.dropped} dropped (live, inference behind)" if stats.dropped else "")
        + f" in {summary.wall_s:.2f} s"
        + f" ({_three_digits(rate)}/s after {summary.load_s:.2f} s setup)",
        "per image: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items()),
    ]
    return " | ".join(parts)


def _three_digits(value: float) -> str:
    """``value`` with three significant digits and no exponent: 0.335, 26.8, 1234."""
    if value <= 0:
        return "0"
    decimals = min(4, max(0, 2 - math.floor(math.log10(value))))
    return f"{value:.{decimals}f}"


@contextmanager
def _writing(out: Path | None) -> Iterator[None]:
    """OS errors while writing results (disk full, permissions) become OutputError (exit 4)."""
    try:
        yield
    except OSError as exc:
        where = f"under --out {out}" if out is not None else "to stdout"
        raise OutputError(f"cannot write results {where}: {exc.strerror or exc}") from None


@contextmanager
def _progress(console: Console, total: int, *, enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr when it is a terminal; otherwise a no-op."""
    if not enabled or not console.is_terminal:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task_id = progress.add_task("inputs", total=total)
        yield lambda: progress.advance(task_id)
