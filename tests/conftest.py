"""Shared test fixtures: paths to the repository and the shared data beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``shared/`` data folder beside the repository (CI clones it there too)."""
    if not SHARED.is_dir():
        pytest.fail(f"shared data folder not found at {SHARED}")
    return SHARED


def pytest_collection_modifyitems(session, config, items):
    """Server tests first (stable order otherwise): with ``-n 2 --dist loadfile`` the long, mostly
    waiting server file then runs beside the rest of the suite instead of after it."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("server") else 1)
