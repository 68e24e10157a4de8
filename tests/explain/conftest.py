"""Fixtures shared by the explain tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from composites import Box, make_composites
from toy_cnn import TinyCNN, train_toy


@pytest.fixture(scope="session")
def trained() -> TinyCNN:
    """The toy CNN, trained once for the session; tests that change it work on a copy."""
    return train_toy()


@pytest.fixture(scope="session")
def composites(tmp_path_factory) -> dict[str, list[tuple[Path, Box]]]:
    """The cat and the cup pasted at five known places each (tests/composites.py)."""
    return make_composites(tmp_path_factory.mktemp("composites"))
