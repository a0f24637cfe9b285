"""Thin bridge to :mod:`sharpbench.irt`: item parameters for every item, abilities, expected scores.

The IRT fit may leave out items that are constant over the fitted models (all
right or all wrong). Distillation needs parameters for every item, so such
items get the median slope and an intercept that reproduces a success rate of
``1 / (2 n)`` (all wrong) or ``1 - 1 / (2 n)`` (all right) at theta = 0, with
``n`` the number of models that answered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sharpbench.distill.errors import DistillError
from sharpbench.irt import TwoPL
from sharpbench.irt.ability import estimate_abilities
from sharpbench.matrix import ResponseMatrix

__all__ = ["abilities", "expected_scores", "fit_item_params"]


def fit_item_params(matrix: ResponseMatrix, *, tol: float = 1e-3, max_iter: int = 300) -> pd.DataFrame:
    """2PL slope ``a`` and intercept ``d`` for every item of ``matrix`` (index = item id).

    The EM tolerance is looser than the IRT default: rankings and score
    predictions do not move at the fourth decimal of the log-likelihood.
    """
    matrix.require_binary()
    if matrix.n_models < 3:
        raise DistillError(f"an IRT fit needs at least 3 models, got {matrix.n_models}")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # convergence warnings at the loose tolerance
        fit = TwoPL(tol=tol, max_iter=max_iter).fit(matrix)
    params = fit.items[["a", "d"]].reindex(list(matrix.items)).astype(float)
    missing = params["a"].isna().to_numpy()
    if missing.any():
        p = matrix.item_pvalues().to_numpy()
        n = matrix.observed.sum(axis=0)
        a_med = float(np.nanmedian(params["a"])) if (~missing).any() else 1.0
        eps = 1.0 / (2.0 * np.maximum(n, 1))
        pc = np.clip(np.nan_to_num(p, nan=0.5), eps, 1 - eps)
        params.loc[missing, "a"] = a_med
        params.loc[missing, "d"] = np.log(pc / (1 - pc))[missing]
    return params


def abilities(responses: np.ndarray, a: np.ndarray, d: np.ndarray, method: str = "map") -> tuple[np.ndarray, np.ndarray]:
    """Ability and its standard error for each row of ``responses`` (n, n_items) with NaN."""
    responses = np.asarray(responses, dtype=float)
    if responses.ndim != 2 or responses.shape[1] != np.size(a):
        raise DistillError(f"responses shape {responses.shape} does not match {np.size(a)} items")
    theta, se = estimate_abilities(responses, np.asarray(a, float), np.asarray(d, float), method=method)
    return np.asarray(theta, dtype=float), np.asarray(se, dtype=float)


def expected_scores(theta: np.ndarray, a: np.ndarray, d: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Mean 2PL success probability over the items, for each theta: (n_theta,)."""
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    out = np.empty(theta.size)
    for s in range(0, theta.size, chunk):
        z = np.multiply.outer(theta[s : s + chunk], a) + d
        out[s : s + chunk] = (0.5 * (1.0 + np.tanh(0.5 * z))).mean(axis=1)
    return out
