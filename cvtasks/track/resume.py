"""`cvtasks track --resume` goes by source: a tracker cannot start in the middle of a video, so
sources finished earlier (in ``analytics.json``) are skipped, and the records of a source that
was interrupted are removed before it is tracked again from its first frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cvtasks.io.outdir import keep_records
from cvtasks.io.sinks import RESULTS_FILE
from cvtasks.io.sources import InputItem
from cvtasks.log import info
from cvtasks.track.config import TrackConfig
from cvtasks.track.files import ANALYTICS_FILE, TRACKS_FILE
from cvtasks.track.stage import TrackStage


def finished_sources(out: Path) -> list[dict[str, Any]]:
    """The per-source entries of an earlier run's ``analytics.json`` (empty if none)."""
    try:
        data = json.loads((out / ANALYTICS_FILE).read_text(encoding="utf-8"))
        return [entry for entry in data["sources"] if isinstance(entry, dict) and "source" in entry]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def make_track_stage(cfg: TrackConfig, out: Path | None, items: list[InputItem]) -> TrackStage:
    """The tracking stage; with ``--resume``, only for the sources not finished in ``out``."""
    if out is None or not cfg.resume:
        return TrackStage(cfg, out, items)
    finished = {e["source"]: e for e in finished_sources(out)}
    done = [e for src, e in finished.items() if any(i.source == src for i in items)]
    todo = [item for item in items if item.source not in finished]
    keep = {e["source"] for e in done}
    for name in (RESULTS_FILE, TRACKS_FILE):
        keep_records(out / name, lambda source: source in keep)
    if done:
        info(f"--resume: {len(done)} source(s) already tracked, {len(todo)} to go")
    return TrackStage(cfg, out, todo, resumed=done, all_items=items)
