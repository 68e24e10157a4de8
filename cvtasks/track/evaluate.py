"""MOTChallenge evaluation of one source's tracks with `trackers.eval` (TrackEval's metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvtasks.log import warn


def find_ground_truth(spec: str, stem: str, single: bool) -> Path | None:
    """A file (one source), or inside a folder ``<stem>/gt/gt.txt``, ``<stem>/gt.txt`` or
    ``<stem>.txt`` (the MOTChallenge layouts)."""
    root = Path(spec)
    if root.is_file():
        return root if single else None
    for candidate in (root / stem / "gt" / "gt.txt", root / stem / "gt.txt", root / f"{stem}.txt"):
        if candidate.is_file():
            return candidate
    return None


def evaluate_source(spec: str, source: str, rows: Path, single: bool) -> dict[str, Any]:
    """HOTA, MOTA, IDF1, ID switches (and their parts) of the rows written for ``source``."""
    stem = rows.stem
    truth = find_ground_truth(spec, stem, single)
    if truth is None:
        warn(f"--eval-gt: no ground truth for {source} in {spec} (looked for {stem})")
        return {"error": f"no ground truth for {stem}"}
    if rows.stat().st_size == 0:
        return {"error": "no tracks to evaluate", "ground_truth": str(truth)}
    from trackers.eval import evaluate_mot_sequence

    try:
        result = evaluate_mot_sequence(truth, rows, metrics=["CLEAR", "HOTA", "Identity"])
    except (ValueError, OSError) as exc:
        return {"error": f"cannot evaluate against {truth}: {exc}", "ground_truth": str(truth)}
    assert result.CLEAR is not None and result.HOTA is not None and result.Identity is not None
    return {
        "ground_truth": str(truth),
        "HOTA": round(float(result.HOTA.HOTA), 6),
        "DetA": round(float(result.HOTA.DetA), 6),
        "AssA": round(float(result.HOTA.AssA), 6),
        "MOTA": round(float(result.CLEAR.MOTA), 6),
        "MOTP": round(float(result.CLEAR.MOTP), 6),
        "IDF1": round(float(result.Identity.IDF1), 6),
        "IDSW": int(result.CLEAR.IDSW),
        "FP": int(result.CLEAR.CLR_FP),
        "FN": int(result.CLEAR.CLR_FN),
        "Frag": int(result.CLEAR.Frag),
    }
