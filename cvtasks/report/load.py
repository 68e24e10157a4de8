"""Reading an --out folder for the report: records, failures, config and the task's summary
files. Never a model; a torn last line is skipped with a warning."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from cvtasks.errors import UsageError
from cvtasks.log import warn


@dataclass
class RunFolder:
    """What a run left in its --out folder."""

    out: Path
    records: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    config: dict[str, Any]
    config_text: str
    written: str  # when results.jsonl was last written (UTC)
    extras: dict[str, Any] = field(default_factory=dict)  # analytics.json, metrics.json

    @property
    def task(self) -> str:
        found = self.config.get("task") or next((r.get("task") for r in self.records), None)
        return str(found or "unknown")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON lines; a torn last line (an interrupted run) is skipped with a warning, any other
    bad line is a usage error naming it."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):
                warn(f"{path}: the last line is torn (an interrupted run?); skipped")
                continue
            raise UsageError(f"{path}:{number}: not a JSON record") from None
        if isinstance(record, dict):
            found.append(record)
    return found


def load_run(out: str | Path) -> RunFolder:
    """The records and files of ``out`` (exit 2 when it holds no results.jsonl)."""
    folder = Path(out)
    results = folder / "results.jsonl"
    if not results.is_file():
        raise UsageError(
            f"{folder} has no results.jsonl: give the --out folder of a cvtasks run "
            "(for example `cvtasks classify photos/ -o out`, then `cvtasks report out`)"
        )
    config_text = ""
    config: dict[str, Any] = {}
    if (folder / "config.yaml").is_file():
        config_text = (folder / "config.yaml").read_text(encoding="utf-8", errors="replace")
        try:
            loaded = yaml.safe_load(config_text)
            config = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            warn(f"{folder / 'config.yaml'} is not valid YAML; shown as text")
    extras = {}
    for name in ("analytics.json", "metrics.json"):
        if (folder / name).is_file():
            try:
                extras[name] = json.loads((folder / name).read_text(encoding="utf-8"))
            except ValueError:
                warn(f"{folder / name} is not valid JSON; its summary is left out")
    stamp = datetime.fromtimestamp(results.stat().st_mtime, tz=timezone.utc)
    return RunFolder(
        folder,
        read_jsonl(results),
        read_jsonl(folder / "errors.jsonl"),
        config,
        config_text,
        stamp.strftime("%Y-%m-%d %H:%M UTC"),
        extras,
    )
