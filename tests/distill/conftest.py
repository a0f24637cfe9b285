"""Fixtures for the distillation tests: small simulated matrices and an MMLU-Pro slice."""

from __future__ import annotations

import numpy as np
import pytest
from distill_helpers import MMLU_PRO, MMLU_PRO_ITEMS, sim_matrix

from sharpbench.distill.common import item_features
from sharpbench.matrix import ResponseMatrix, read_item_table, read_matrix


@pytest.fixture(scope="session")
def sim():
    return sim_matrix()


@pytest.fixture(scope="session")
def mmlu_slice() -> ResponseMatrix:
    """All 29 models on 1,500 random MMLU-Pro items (seeded), with subjects and n_choices."""
    if not MMLU_PRO.exists():
        pytest.fail(f"shared data not found at {MMLU_PRO}")
    m = read_matrix(MMLU_PRO, items=item_features(read_item_table(MMLU_PRO_ITEMS)))
    rng = np.random.default_rng(0)
    return m.select(items=np.sort(rng.choice(m.n_items, 1500, replace=False)))
