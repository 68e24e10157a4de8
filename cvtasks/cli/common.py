"""Error-to-exit-code mapping and signal handling shared by every command."""

from __future__ import annotations

import functools
import signal
import sys
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn, TypeVar

import typer

from cvtasks.config import BaseConfig
from cvtasks.errors import (
    EXIT_INTERRUPTED,
    EXIT_ITEM_FAILURES,
    EXIT_OK,
    EXIT_TERMINATED,
    CvTasksError,
)
from cvtasks.tasks.spec import TaskSpec

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives, so cleanup runs as for Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def install_signal_handlers() -> None:
    """SIGTERM unwinds like Ctrl-C (temp files removed) and exits 143."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    print(f"warning: {message}", file=sys.stderr)


def install_warning_format() -> None:
    """Warnings as one ``warning: ...`` line on stderr, without source locations."""
    warnings.showwarning = _show_warning


def run_and_exit(spec: TaskSpec, cfg: BaseConfig) -> NoReturn:
    """Run a task and exit 1 when some inputs failed, 0 otherwise."""
    summary = spec.run_function()(spec, cfg, stdin=sys.stdin)
    raise typer.Exit(EXIT_ITEM_FAILURES if summary.stats.failed else EXIT_OK)


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn CvTasksError, Ctrl-C and SIGTERM into a message on stderr and the right exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CvTasksError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None
        except Terminated:
            raise fail("terminated", EXIT_TERMINATED) from None

    return wrapper  # type: ignore[return-value]
