"""`--resume` by source, for the stages that need whole inputs (a video's verdict, a face's
track, an evaluation over every image): an input is skipped only when its results are
complete, the records of any other are taken out of results.jsonl before it runs again, so
that nothing is written twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cvtasks.io.outdir import drop_changed, keep_records, read_done
from cvtasks.io.sinks import RESULTS_FILE
from cvtasks.log import info
from cvtasks.stages import Stage


def _records_by_source(path: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                found.setdefault(str(record["source"]), []).append(record)
            except (ValueError, KeyError, TypeError):
                continue
    return found


def resume_by_source(out: Path, stage: Stage) -> None:
    """Narrow ``stage.items`` to what is left and drop the records of what runs again."""
    drop_changed(out, read_done(out))  # a torn last line is cut; changed inputs lose records
    path = out / RESULTS_FILE
    by_source = _records_by_source(path)
    if stage.resume_by == "source":
        finished = {
            item.source for item in stage.items
            if stage.finished(item, by_source.get(item.source, []))
        }  # fmt: skip
    else:
        finished = set()
    todo = [item for item in stage.items if item.source not in finished]
    again = {item.source for item in todo} & set(by_source)
    if again:
        keep_records(path, lambda source: source not in again)
    if stage.resume_by == "rerun":
        info(f"--resume: this command needs every input's results: all {len(todo)} run again")
    elif finished or again:
        info(
            f"--resume: {len(finished)} input(s) finished, {len(todo)} to go"
            + (f" ({len(again)} of them started: their records are replaced)" if again else "")
        )
    stage.items = todo
