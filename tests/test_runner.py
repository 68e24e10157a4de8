"""The run summary line on stderr: counts, throughput with three significant digits, stages."""

from __future__ import annotations

import pytest

from cvtasks.engine import RunStats
from cvtasks.runner import RunSummary, format_timing


@pytest.mark.parametrize(
    ("processed", "seconds", "shown"),
    [(8, 23.87, "0.335/s"), (64, 2.385, "26.8/s"), (64, 0.5835, "110/s"), (0, 1.0, "0/s")],
)
def test_timing_line_keeps_three_significant_digits(processed, seconds, shown):
    stats = RunStats(processed=processed)
    stats.times.decode = 0.004 * processed
    summary = RunSummary(stats, processed, load_s=0.5, wall_s=0.5 + seconds, stopped_early=False)
    line = format_timing("classify", summary)
    assert f"({shown} after 0.50 s setup)" in line
    assert line.startswith(f"classify: {processed} done, 0 failed in ")
    assert ("decode 4.0 ms" if processed else "decode 0.0 ms") in line
