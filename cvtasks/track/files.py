"""What `cvtasks track -o OUT` writes besides the records: ``mot/<source>.txt`` (MOTChallenge
results), ``tracks.jsonl`` (one line per finished track) and ``analytics.json`` (per source)."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from cvtasks.io.atomic import atomic_write_text, safe_join
from cvtasks.io.sinks import dumps
from cvtasks.io.sources import InputItem
from cvtasks.types import Frame, Outcome

TRACKS_FILE = "tracks.jsonl"
ANALYTICS_FILE = "analytics.json"


def source_stem(item: InputItem) -> str:
    """A file name for a source's MOT rows: the video's stem, or the sequence's name (for the
    MOTChallenge ``<sequence>/img1`` layout, the sequence folder's)."""
    path = PurePosixPath(item.rel)
    if item.kind == "sequence":  # rel names the sequence (see expand_sequences)
        return path.name or "sequence"
    return path.stem or "source"


class TrackFiles:
    """The track outputs under ``--out`` (a sink: it writes, it never tracks)."""

    def __init__(self, out: Path, resumed: list[dict[str, Any]] | None = None) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.sources: list[dict[str, Any]] = list(resumed or [])
        mode = "a" if resumed else "w"
        self._tracks = (out / TRACKS_FILE).open(mode, encoding="utf-8")

    def mot_path(self, stem: str) -> Path:
        path = safe_join(self.out, f"mot/{stem}.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add_track(self, source: str, summary: dict[str, Any]) -> None:
        self._tracks.write(dumps({"source": source, **summary}) + "\n")
        self._tracks.flush()

    def add_source(self, entry: dict[str, Any]) -> None:
        self.sources = [s for s in self.sources if s["source"] != entry["source"]] + [entry]
        self._write_analytics()

    def _write_analytics(self) -> None:
        text = json.dumps({"sources": self.sources}, indent=2, ensure_ascii=False)
        atomic_write_text(self.out / ANALYTICS_FILE, text + "\n")

    # the sink protocol of the run loop
    def write(self, frame: Frame, outcome: Outcome, record: dict[str, Any] | None) -> None:
        """Records are written by the other sinks; the rows are written as sources finish."""

    def close(self) -> None:
        self._tracks.close()
        self._write_analytics()

    def abort(self) -> None:
        self.close()  # an interrupted run keeps what was tracked so far
