"""cvtasks: computer-vision tasks from the command line and from Python.

``from cvtasks import predict`` is lazy: torch is imported on first use, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cvtasks.version import __version__

__all__ = ["__version__", "predict"]

if TYPE_CHECKING:
    from cvtasks.api import predict


def __getattr__(name: str) -> Any:
    if name == "predict":
        from cvtasks.api import predict

        return predict
    raise AttributeError(f"module 'cvtasks' has no attribute {name!r}")
