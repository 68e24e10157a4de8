"""Writing the report folder: index.html, report.js, report.css (copied from the package),
data.js (the run's data) and thumbs/. It opens from file:// and fetches nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from cvtasks.io.atomic import atomic_write_text
from cvtasks.log import info
from cvtasks.report.load import RunFolder, load_run
from cvtasks.report.summaries import item_of, summaries
from cvtasks.report.thumbs import make_thumbnails, relative

ASSETS = Path(__file__).parent / "assets"
PAGE_FILES = ("index.html", "report.js", "report.css")


def _items(run: RunFolder, report_dir: Path) -> list[dict[str, Any]]:
    items = []
    for i, record in enumerate(run.records):
        files = record.get("files") or {}
        extra = {
            k: v for k, v in record.items() if k in ("stats", "eval", "counts", "crop", "votes")
        }
        items.append(
            {
                "i": i,
                "source": str(record.get("source", "")),
                "frame": record.get("frame"),
                **item_of(record),
                "predictions": [
                    {k: v for k, v in p.items() if k not in ("mask", "polygons")}
                    for p in (record.get("predictions") or [])
                ],
                "files": files,
                "links": {k: relative(run.out / v, report_dir) for k, v in files.items()},
                "extra": extra or None,
                "thumb": None,
                "full": None,
                "error": None,
            }
        )
    return items


def _failures(run: RunFolder, start: int) -> list[dict[str, Any]]:
    return [
        {
            "i": start + k,
            "source": str(f.get("source", "")),
            "frame": f.get("frame"),
            "caption": "failed",
            "labels": [],
            "score": None,
            "predictions": [],
            "files": {},
            "links": {},
            "extra": None,
            "thumb": None,
            "full": None,
            "error": str(f.get("error", "")),
        }
        for k, f in enumerate(run.failures)
    ]


def _what_ran(config: dict[str, Any], records: list[dict[str, Any]]) -> tuple[str, str]:
    """The model and weights the header shows: what the records say ran. A run whose records
    name something else than the config's model (``track --detections``: no model at all)
    shows that, without the config's unused weights."""
    ran = next((str(r["model"]) for r in records if r.get("model")), None)
    configured = config.get("model")
    if ran is None or ran == configured:
        return str(ran or configured or "?"), str(config.get("weights", "?"))
    if ran.startswith("detections:"):
        return ran, "none: tracks of the detections in that file, no model ran"
    return ran, "?"


def build_report(out: str | Path, target: str | Path | None = None, thumb_size: int = 256) -> Path:
    """Write the report of the run in ``out`` into ``target`` (default ``out/report``)."""
    run = load_run(out)
    report_dir = Path(target) if target is not None else run.out / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    items = _items(run, report_dir)
    if len(items) > 500:
        info(f"report: making {len(items)} thumbnails ...")
    make_thumbnails(run.out, run.records, items, report_dir, thumb_size)
    items += _failures(run, len(items))
    config = run.config
    model, weights = _what_ran(config, run.records)
    data = {
        "header": {
            "task": run.task,
            "model": model,
            "weights": weights,
            "done": len(run.records),
            "failed": len(run.failures),
            "written": run.written,
            "out": str(run.out),
            "config_text": run.config_text,
        },
        "items": items,
        "summaries": summaries(run),
        "failures": [
            {"source": f.get("source"), "frame": f.get("frame"), "error": f.get("error")}
            for f in run.failures
        ],
    }
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")
    atomic_write_text(report_dir / "data.js", f"window.CVTASKS_REPORT = {payload};\n")
    for name in PAGE_FILES:
        shutil.copyfile(ASSETS / name, report_dir / name)
    return report_dir / "index.html"
