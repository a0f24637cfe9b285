"""Helpers for the distillation tests: small simulated matrices and the MMLU-Pro paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sharpbench.irt.simulate import simulate
from sharpbench.matrix import ResponseMatrix

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()
MMLU_PRO = SHARED / "data" / "response-matrices" / "mmlu_pro_matrix.csv"
MMLU_PRO_ITEMS = SHARED / "data" / "response-matrices" / "mmlu_pro_items.jsonl"


def sim_matrix(
    n_models: int = 30, n_items: int = 300, seed: int = 0, guessers: int = 0, missing: float = 0.0, model: str = "2pl"
):
    """2PL (or 3PL with guessing 1/4) responses with 4 choices per item and 3 subjects;
    ``guessers`` extra rows answer at random."""
    y, truth = simulate(n_models, n_items, model=model, seed=seed, missing=missing, guess=0.25)
    rng = np.random.default_rng(seed + 1)
    models = [f"m{i:02d}" for i in range(n_models)]
    if guessers:
        g = (rng.random((guessers, n_items)) < 0.25).astype(float)
        y = np.vstack([y, g])
        models += [f"guesser{i}" for i in range(guessers)]
    items = [f"q{j:04d}" for j in range(n_items)]
    meta = pd.DataFrame(
        {"subject": [("alpha", "beta", "gamma")[j % 3] for j in range(n_items)], "n_choices": 4}, index=items
    )
    return ResponseMatrix(y, tuple(models), tuple(items), meta), truth
