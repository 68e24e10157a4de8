"""Messages for people go to stderr, never stdout (stdout carries results only).

A process whose stderr nobody reads (a Ray actor) captures its messages instead and hands them
to the process that prints (:func:`capture`, :func:`emit`).
"""

from __future__ import annotations

import sys

_captured: list[str] | None = None


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr."""
    emit(f"warning: {message}")


def info(message: str) -> None:
    """Print an informational line on stderr."""
    emit(message)


def emit(line: str) -> None:
    """One line for stderr, or for the capture list when capturing."""
    if _captured is not None:
        _captured.append(line)
    else:
        print(line, file=sys.stderr)


def capture() -> list[str]:
    """From now on, collect this process's messages in the returned list (drain it as it
    fills) instead of printing them."""
    global _captured
    if _captured is None:
        _captured = []
    return _captured
