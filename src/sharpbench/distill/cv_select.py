"""Item selection that minimises the cross-validated error of the full-score prediction.

Greedy forward selection: starting from no item, add the item whose inclusion
gives the lowest K-fold (over models) mean absolute error of a ridge regression
from the selected items' answers to the full score. Each step is exact and
costs ``O(s * K * n)`` for ``s`` selected items, ``K`` candidate items and ``n``
models: adding one column to a ridge fit is a rank-one (Schur complement) update
of the current solution, so all candidates are scored in a few matrix products.

This is the selection rule of ``distill tiny --method cv``; it needs the training
models' full scores (the matrix row means when the whole benchmark is given).
"""

from __future__ import annotations

import numpy as np

from sharpbench.distill.errors import DistillError

__all__ = ["greedy_cv_items"]


def _ridge_alpha(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import RidgeCV

    return float(RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(x, y).alpha_)


def greedy_cv_items(
    answers: np.ndarray,
    scores: np.ndarray,
    n_items: int,
    *,
    folds: int = 5,
    seed: int = 0,
    alpha: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy forward selection of ``n_items`` columns minimising the K-fold MAE of a ridge prediction.

    Parameters
    ----------
    answers : (n_models, n_all) training answers, NaN = missing (imputed by the fold's column mean)
    scores : (n_models,) full scores
    n_items : number of items to select (1 <= n_items <= n_all)
    folds : K of the K-fold over models
    alpha : ridge penalty (default: RidgeCV on all items)

    Returns
    -------
    positions : (n_items,) selected columns, in selection order
    cv_mae : (n_items,) the K-fold MAE after each step
    """
    from sklearn.model_selection import KFold

    x = np.asarray(answers, dtype=float)
    y = np.asarray(scores, dtype=float)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise DistillError(f"answers must be (n_models, n_items) and scores (n_models,), got {x.shape}, {y.shape}")
    n, k_all = x.shape
    if not 1 <= n_items <= k_all:
        raise DistillError(f"cannot select {n_items} of {k_all} items")
    if n < 2 * max(folds, 2):
        raise DistillError(f"cross-validated selection needs at least {2 * max(folds, 2)} models, got {n}")
    parts = []
    for tr, te in KFold(folds, shuffle=True, random_state=seed).split(x):
        mu = np.nanmean(x[tr], axis=0)
        mu = np.where(np.isnan(mu), 0.0, mu)
        xtr = np.where(np.isnan(x[tr]), 0.0, x[tr] - mu)  # centred; missing = column mean
        xte = np.where(np.isnan(x[te]), 0.0, x[te] - mu)
        ybar = float(y[tr].mean())
        parts.append({"xtr": xtr, "xte": xte, "ytr": y[tr] - ybar, "yte": y[te] - ybar,
                      "diag": (xtr**2).sum(axis=0), "b": xtr.T @ (y[tr] - ybar), "rows": []})
    if alpha is None:
        alpha = _ridge_alpha(np.where(np.isnan(x), np.nanmean(x, axis=0), x), y)
    chosen: list[int] = []
    curve = []
    for _ in range(n_items):
        err = np.zeros(k_all)
        for p in parts:
            err += _step_errors(p, chosen, alpha)
        err[chosen] = np.inf
        j = int(np.argmin(err))
        chosen.append(j)
        curve.append(err[j] / n)
        for p in parts:  # one more row of the Gram matrix for the next step
            p["rows"].append(p["xtr"][:, j] @ p["xtr"])
    return np.asarray(chosen, dtype=int), np.asarray(curve)


def _step_errors(p: dict, chosen: list[int], alpha: float) -> np.ndarray:
    """Sum of absolute held-out errors of the ridge fit on ``chosen + [j]``, for every candidate ``j``."""
    xte, b = p["xte"], p["b"]
    k = p["diag"] + alpha  # (K,) Schur complement, before the chosen items' part
    if chosen:
        g = np.vstack(p["rows"])  # (s, K): G[S, :]
        m = np.linalg.inv(g[:, chosen] + alpha * np.eye(len(chosen)))  # (s, s)
        w_s = m @ b[chosen]  # current solution
        u = m @ g  # (s, K)
        k = k - (g * u).sum(axis=0)
        w_j = (b - g.T @ w_s) / k
        base = xte[:, chosen] @ w_s  # (n_te,)
        pred = base[:, None] + (xte - xte[:, chosen] @ u) * w_j[None, :]
    else:
        pred = xte * (b / k)[None, :]
    return np.abs(pred - p["yte"][:, None]).sum(axis=0)
