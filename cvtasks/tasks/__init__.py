"""Shared task machinery: the predictor base, the task spec and the registry of families."""
