"""Shared test fixtures: paths to the repository and the shared data beside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Under pytest-xdist (scripts/test.sh runs two workers on two cores) every worker computes on one
# thread: oversubscribed spinning thread pools (OpenMP, llama.cpp) slow everything down many times.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The packaged default model converted to an HF checkpoint (converted once per cache)."""
    from sharpbench.models import packaged

    try:
        return packaged.ensure_checkpoint("smollm2-135m")
    except packaged.ModelPackageMissingError as err:  # pragma: no cover - CI installs it
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def smollm2(smollm2_dir):
    from sharpbench.models import load_model

    return load_model(str(smollm2_dir), dtype="float32")


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
