"""Shared helpers for the distillation tools: item features, scores on subsets, chance baselines.

The full-benchmark score of a model is the plain mean of its observed item
scores (missing cells are skipped), the same figure as
``ResponseMatrix.model_accuracy``. A subset score is the same mean over the
subset's observed items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sharpbench.distill.errors import DistillError
from sharpbench.matrix import ResponseMatrix

__all__ = [
    "chance_rates",
    "describe_chance",
    "full_scores",
    "item_features",
    "require_models",
    "subset_scores",
    "top_n_std",
]


def item_features(table: pd.DataFrame) -> pd.DataFrame:
    """The item columns the distillation tools use, from an item table read by
    :func:`sharpbench.matrix.read_item_table`: ``subject``, ``n_choices`` and ``text``.

    Tables in the MMLU-Pro layout (``question, options, category``) map to
    ``subject`` (the category), ``n_choices`` (number of options) and ``text``
    (question plus options); columns with those names are kept as they are.
    """
    frame = table.copy()
    if "subject" not in frame.columns and "category" in frame.columns:
        frame["subject"] = frame["category"]
    if "options" in frame.columns:
        listed = (list, tuple, np.ndarray)  # a Parquet table gives arrays
        if "n_choices" not in frame.columns:
            frame["n_choices"] = frame["options"].map(lambda o: len(o) if isinstance(o, listed) else np.nan)
        if "text" not in frame.columns and "question" in frame.columns:
            frame["text"] = [
                str(q) + "\n" + "\n".join(map(str, o)) if isinstance(o, listed) else str(q)
                for q, o in zip(frame["question"], frame["options"])
            ]
    elif "text" not in frame.columns and "question" in frame.columns:
        frame["text"] = frame["question"]
    keep = [c for c in ("subject", "n_choices", "text") if c in frame.columns]
    return frame[keep]


def chance_rates(matrix: ResponseMatrix, default_choices: int | None = 4) -> np.ndarray:
    """Random-guess success rate per item, ``1 / n_choices``.

    Uses ``item_meta['n_choices']``; items without it use ``default_choices``.
    Raises when neither is available.
    """
    n = np.full(matrix.n_items, np.nan)
    if "n_choices" in matrix.item_meta.columns:
        n = pd.to_numeric(matrix.item_meta["n_choices"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(n).any():
        if default_choices is None:
            raise DistillError(
                "the number of choices is unknown for some items: attach item metadata with "
                "n_choices (--item-meta) or pass --n-choices"
            )
        n = np.where(np.isnan(n), float(default_choices), n)
    if (n < 1).any():
        raise DistillError("n_choices must be >= 1 for every item")
    return 1.0 / n


def describe_chance(matrix: ResponseMatrix, default_choices: int | None = 4) -> str:
    """Where ``chance_rates(matrix, default_choices)`` gets each item's rate, in one sentence."""
    known = 0
    if "n_choices" in matrix.item_meta.columns:
        known = int(pd.to_numeric(matrix.item_meta["n_choices"], errors="coerce").notna().sum())
    text = f"chance = 1/n_options per item from the item metadata for {known:,} of {matrix.n_items:,} items"
    if known == matrix.n_items:
        return text
    if known == 0:
        text = f"chance = 1/{default_choices} assumed for all {matrix.n_items:,} items (no n_options in the metadata)"
        return text
    return f"{text}; 1/{default_choices} assumed for the other {matrix.n_items - known:,} items"


def subset_scores(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean observed score of every model over the items where ``mask`` is True.

    Parameters
    ----------
    values : ndarray (n_models, n_items) with NaN for missing cells
    mask : bool ndarray (n_items,) or (n_variants, n_items)

    Returns
    -------
    ndarray (n_models,) or (n_variants, n_models); NaN where a model has no
    observed item in the subset.
    """
    values = np.asarray(values, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape[-1] != values.shape[1]:
        raise DistillError(f"mask has {mask.shape[-1]} items, matrix has {values.shape[1]}")
    obs = ~np.isnan(values)
    filled = np.where(obs, values, 0.0)
    m = mask.astype(float)
    num = m @ filled.T
    den = m @ obs.T.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def full_scores(matrix: ResponseMatrix) -> np.ndarray:
    """Full-benchmark score of every model (mean over observed items)."""
    return subset_scores(matrix.values, np.ones(matrix.n_items, dtype=bool))


def require_models(matrix: ResponseMatrix, minimum: int, purpose: str) -> None:
    """Raise a clear error when the matrix has fewer than ``minimum`` models."""
    if matrix.n_models < minimum:
        raise DistillError(
            f"{purpose} needs at least {minimum} models, the matrix has {matrix.n_models}"
        )


def top_n_std(scores: np.ndarray, top: Sequence[int] | np.ndarray) -> np.ndarray:
    """Standard deviation (ddof=0) of the scores of the ``top`` models.

    ``scores`` is (n_models,) or (n_steps, n_models); returns a scalar array or (n_steps,).
    """
    s = np.asarray(scores, dtype=float)[..., np.asarray(top, dtype=int)]
    return np.nanstd(s, axis=-1)
