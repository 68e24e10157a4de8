"""One writer per ``--out`` folder: an OS lock held for the whole life of a run.

``fcntl.flock`` on ``OUT/.cvtasks.lock``: the kernel releases it when the process ends, however
it ends (``kill -9`` included), so a lock is never stale. The holder's pid is written into the
file so that a second run can name it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cvtasks.errors import OutputError, UsageError

LOCK_FILE = ".cvtasks.lock"
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}


def _holder(handle: IO[str]) -> str:
    """The pid written by the run that holds the lock ("unknown" while it is being written)."""
    with contextlib.suppress(OSError, ValueError):
        handle.seek(0)
        text = handle.read().strip()
        if text.isdigit():
            return text
    return "unknown"


def _open(out: Path) -> IO[str]:
    try:
        out.mkdir(parents=True, exist_ok=True)
        return (out / LOCK_FILE).open("a+", encoding="utf-8")
    except OSError as exc:
        blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise OutputError(
                f"cannot create the output folder {out}: {blocker} is a file, not a folder"
            ) from None
        raise OutputError(
            f"cannot lock the output folder {out}: {exc.strerror or exc} (is it read-only?)"
        ) from None


@contextlib.contextmanager
def out_lock(out: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold the lock of ``out`` for the duration of the block.

    Another run holding it: :class:`UsageError` (exit 2) naming the folder and its pid, or, with
    ``wait``, block until it is released. A read-only folder or a filesystem without locks:
    :class:`OutputError` (exit 4).
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; runs are not serialised there
        yield
        return
    handle = _open(out)
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(handle)
            if not wait:
                raise UsageError(
                    f"--out {out} is in use by another cvtasks run (pid {pid}); wait for it to "
                    "finish, choose another --out, or pass --wait-lock to wait"
                ) from None
            print(f"waiting for --out {out}, in use by pid {pid} ...", file=sys.stderr)
            started = time.monotonic()
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            print(f"--out {out} free after {time.monotonic() - started:.1f} s", file=sys.stderr)
        except OSError as exc:
            reason = (
                "the filesystem does not support file locks"
                if exc.errno in _UNSUPPORTED
                else exc.strerror or str(exc)
            )
            raise OutputError(f"cannot lock the output folder {out}: {reason}") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        except OSError as exc:
            raise OutputError(f"cannot write to the output folder {out}: {exc.strerror}") from None
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock
