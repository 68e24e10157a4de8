"""State kept in ``--out``: the resolved config and what ``--resume`` may skip."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from cvtasks.config import BaseConfig, result_affecting
from cvtasks.config_build import dump_config
from cvtasks.errors import UsageError
from cvtasks.io.atomic import atomic_write_text
from cvtasks.io.sinks import CONFIG_FILE, INPUTS_FILE, RESULTS_FILE, input_stamp
from cvtasks.safe_yaml import load_yaml_file
from cvtasks.version import __version__

FrameKey = tuple[str, "int | None"]


def write_config(out: Path, task: str, cfg: BaseConfig, note: str | None = None) -> None:
    """Write the resolved config (every key, commented) as ``config.yaml``, atomically; ``note``
    (which weights and preprocessing ran) goes into the header."""
    out.mkdir(parents=True, exist_ok=True)
    header = f"Resolved config of this run (cvtasks {__version__}); rerun with `cvtasks run` on it."
    if note:
        header += f"\n{note}"
    atomic_write_text(out / CONFIG_FILE, dump_config(cfg, task, header=header))


def check_resume_compatible(out: Path, task: str, cfg: BaseConfig) -> None:
    """Refuse ``--resume`` when the earlier run used another task or result-affecting options."""
    path = out / CONFIG_FILE
    if not path.is_file():
        return
    previous = load_yaml_file(path)
    if previous.get("task") != task:
        raise UsageError(
            f"--resume: {out} holds results of task '{previous.get('task')}', not '{task}'; "
            "use another --out"
        )
    changed = [
        f"{key}: {previous.get(key)!r} -> {value!r}"
        for key, value in result_affecting(cfg).items()
        if key in previous and previous[key] != value
    ]
    if changed:
        raise UsageError(
            f"--resume: options that change results differ from the run in {out} "
            f"({'; '.join(changed)}); use another --out, or run without --resume to start over"
        )


def check_not_overwriting(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to replace an earlier run's results silently: name --resume and --overwrite."""
    path = out / RESULTS_FILE
    if resume or overwrite or not path.is_file():
        return
    with path.open("rb") as handle:
        count = sum(1 for line in handle if line.strip())
    if count:
        raise UsageError(
            f"{out} already holds {count} result(s) of an earlier run ({path}): pass --resume "
            "to keep them and add what is missing, or --overwrite to replace them"
        )


def read_done(out: Path) -> set[FrameKey]:
    """Frame keys already in results.jsonl; a torn last line (after a kill) is cut off."""
    path = out / RESULTS_FILE
    done: set[FrameKey] = set()
    if not path.is_file():
        return done
    good_end = 0
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                record = json.loads(raw)
                key = (record["source"], record["frame"])
            except (ValueError, KeyError, TypeError):
                break
            done.add(key)
            good_end += len(raw)
    if good_end < path.stat().st_size:
        with path.open("r+b") as handle:
            handle.truncate(good_end)
            handle.flush()
            os.fsync(handle.fileno())
    return done


def _read_stamps(out: Path) -> dict[str, dict[str, int]]:
    """What each processed input was (size, mtime) when its results were written."""
    stamps: dict[str, dict[str, int]] = {}
    path = out / INPUTS_FILE
    if not path.is_file():
        return stamps
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(raw)
            stamps[str(entry["source"])] = {k: int(entry[k]) for k in ("size", "mtime_ns")}
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line after a kill
    return stamps


def drop_changed(out: Path, done: set[FrameKey]) -> tuple[set[FrameKey], list[str]]:
    """``--resume`` goes by path, size and modification time: inputs changed (or replaced)
    since their results were written lose those results, which are taken out of
    results.jsonl, and are processed again. Returns what is still done and what changed."""
    stamps = _read_stamps(out)
    changed = sorted(
        {source for source, _ in done if source in stamps and input_stamp(source) != stamps[source]}
    )
    gone = set(changed)
    # The manifest is rewritten every time, so that a line torn by a kill is not continued.
    for name in (INPUTS_FILE, RESULTS_FILE) if changed else (INPUTS_FILE,):
        keep_records(out / name, lambda source: source not in gone)
    return {key for key in done if key[0] not in gone}, changed


def keep_records(path: Path, keep: Callable[[str], bool]) -> None:
    """Rewrite a JSONL file of records (atomically, only if a line goes) keeping the lines
    whose source ``keep`` accepts; torn and foreign lines go too."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if (source := _source_of(line)) is not None and keep(source)]
    if len(kept) < len(lines):
        atomic_write_text(path, "".join(kept))


def _source_of(line: str) -> str | None:
    """The source of a JSONL line; None for a torn or foreign line (dropped on rewrite)."""
    try:
        return str(json.loads(line)["source"]) if line.endswith("\n") else None
    except (ValueError, KeyError, TypeError):
        return None
