"""Fixtures shared by the explain tests."""

from __future__ import annotations

import pytest
from toy_cnn import TinyCNN, train_toy


@pytest.fixture(scope="session")
def trained() -> TinyCNN:
    """The toy CNN, trained once for the session; tests that change it work on a copy."""
    return train_toy()
