"""The version of cvtasks (one place; Ray workers compare theirs with the driver's)."""

__version__ = "0.1.0"
