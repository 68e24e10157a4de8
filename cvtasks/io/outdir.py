"""State kept in ``--out``: the resolved config and what ``--resume`` may skip."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cvtasks import __version__
from cvtasks.config import BaseConfig, dump_config, load_yaml_file, result_affecting
from cvtasks.errors import UsageError
from cvtasks.io.atomic import atomic_write_text
from cvtasks.io.sinks import CONFIG_FILE, RESULTS_FILE

FrameKey = tuple[str, "int | None"]


def write_config(out: Path, task: str, cfg: BaseConfig) -> None:
    """Write the resolved config (every key, commented) as ``config.yaml``, atomically."""
    out.mkdir(parents=True, exist_ok=True)
    header = f"Resolved config of this run (cvtasks {__version__}); rerun with `cvtasks run` on it."
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
