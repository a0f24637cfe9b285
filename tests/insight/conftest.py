from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sharpbench.matrix import ResponseMatrix

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "response-matrices"


@pytest.fixture(scope="session")
def mmlu_pro_small() -> ResponseMatrix:
    """The real MMLU-Pro matrix restricted to 1,500 random items, with item metadata."""
    from sharpbench.matrix import read_matrix

    if not (SHARED / "mmlu_pro_matrix.csv").exists():
        pytest.skip(f"shared data missing at {SHARED}")
    m = read_matrix(SHARED / "mmlu_pro_matrix.csv", items=SHARED / "mmlu_pro_items.jsonl")
    rng = np.random.default_rng(1)
    return m.select(items=np.sort(rng.choice(m.n_items, 1500, replace=False)))
