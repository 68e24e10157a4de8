"""Exception hierarchy; each class carries the process exit code it maps to (CONVENTIONS.md)."""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_ITEM_FAILURES = 1
EXIT_USAGE = 2
EXIT_WEIGHTS = 3
EXIT_OUTPUT = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class CvTasksError(Exception):
    """Base class for errors that end a run with a specific exit code."""

    exit_code = EXIT_USAGE


class UsageError(CvTasksError):
    """Bad option, missing input path, unknown model: the user must change the command."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """Invalid YAML or config value; the message names the key."""


class WeightsError(CvTasksError):
    """Weights cannot be used: unavailable offline, corrupt, unsafe or for another architecture."""

    exit_code = EXIT_WEIGHTS


class WeightsUnavailableError(WeightsError):
    """Weights are not cached and cannot be downloaded."""


class OutputError(CvTasksError):
    """Results cannot be written (disk full, permissions, closed stream other than a pipe)."""

    exit_code = EXIT_OUTPUT


class ItemError(Exception):
    """One input failed (unreadable, corrupt, too large); the run carries on with the others."""


class ClusterError(UsageError):
    """``--engine ray``: the cluster cannot be reached, or it failed the run (exit 2)."""


def listed(items: Iterable[object], first: int = 8) -> str:
    """``a, b, c`` for messages, capped: the first few, then ``… and N more``."""
    values = [str(item) for item in items]
    if len(values) <= first:
        return ", ".join(values)
    return ", ".join(values[:first]) + f" … and {len(values) - first} more"
