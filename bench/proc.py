"""Running a cvtasks process for the bench while sampling its memory."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path


def run_sampling_rss(cmd: list[str], every_s: float = 0.25) -> tuple[str, list[float]]:
    """Run ``cmd`` (stdout discarded) and return its stderr and its RSS (MB) every ``every_s``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[float] = []

    def sample() -> None:
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                break
            rss = next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS")), 0)
            if rss:  # a process on its way out has no VmRSS line
                samples.append(rss / 1024)
            time.sleep(every_s)

    watcher = threading.Thread(target=sample)
    watcher.start()
    _, stderr = proc.communicate()
    watcher.join()
    return stderr, samples
