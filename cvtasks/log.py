"""Messages for people go to stderr, never stdout (stdout carries results only)."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def info(message: str) -> None:
    """Print an informational line on stderr."""
    print(message, file=sys.stderr)
