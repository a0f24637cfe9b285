"""Full-score estimators from the answers to a tiny subset (tinyBenchmarks' family).

For a model with answers ``y`` on the subset S of a benchmark of N items:

``weighted``  ``sum_i w_i y_i`` (anchor / stratum weights, renormalised over the
              answered items); CI from the weighted sampling variance.
``irt``       ability ``theta`` by MAP on S with the 2PL item parameters, then the
              expected full score ``mean_j P_j(theta)`` over all N items; CI maps
              ``theta -/+ z se`` through that monotone curve.
``pirt``      p-IRT: ``lam_p * mean(y) + (1 - lam_p) * mean_{j not in S} P_j(theta)``
              with ``lam_p = |S| / N`` (observed answers where we have them, the
              IRT prediction elsewhere).
``gpirt``     gp-IRT: ``lam * weighted + (1 - lam) * pirt``; ``lam`` is chosen by
              cross-validation over training models (``fit_lambda``).
              Its CI mixes the two intervals with the same weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from sharpbench.choices import TINY_ESTIMATORS as ESTIMATORS
from sharpbench.distill.errors import DistillError
from sharpbench.distill.irt_bridge import abilities, expected_scores
from sharpbench.distill.tiny import TinySubset

__all__ = ["ESTIMATORS", "estimate_scores", "fit_lambda", "weighted_estimate"]


def weighted_estimate(y: np.ndarray, w: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Weighted score and its standard error for each row of ``y`` (n, k), NaN = missing.

    Returns (score (n,), se (n,)).
    """
    y = np.asarray(y, dtype=float)
    obs = ~np.isnan(y)
    ww = np.where(obs, w[None, :], 0.0)
    tot = ww.sum(axis=1)
    if (tot <= 0).any():
        bad = int(np.flatnonzero(tot <= 0)[0])
        raise DistillError(f"row {bad} has no answered subset item: cannot estimate its score")
    ww = ww / tot[:, None]
    score = (ww * np.nan_to_num(y)).sum(axis=1)
    k = obs.sum(axis=1)
    resid = np.where(obs, y - score[:, None], 0.0)
    var = (ww**2 * resid**2).sum(axis=1) * k / np.maximum(k - 1, 1)
    # a floor from the binomial variance keeps all-right / all-wrong rows from a zero-width CI
    floor = (ww**2).sum(axis=1) * np.clip(score, 1 / (k + 2), 1 - 1 / (k + 2)) * (1 - np.clip(score, 1 / (k + 2), 1 - 1 / (k + 2)))
    return score, np.sqrt(np.maximum(var, floor))


def _subset_positions(subset: TinySubset) -> np.ndarray:
    pos = {it: i for i, it in enumerate(subset.all_items)}
    return np.array([pos[i] for i in subset.items], dtype=int)


def estimate_scores(
    subset: TinySubset,
    responses: np.ndarray,
    estimators: tuple[str, ...] | list[str] = ESTIMATORS,
    *,
    confidence: float = 0.95,
    models: list[str] | None = None,
) -> pd.DataFrame:
    """Estimate full scores of new models from their subset answers.

    Parameters
    ----------
    subset : TinySubset (IRT estimators need ``subset.item_params``; gp-IRT needs ``subset.lam``)
    responses : (n_models, n_subset) answers in ``subset.items`` order, NaN = not answered
    estimators : any of ``ESTIMATORS``

    Returns
    -------
    Long DataFrame ``model, estimator, score, ci_low, ci_high``.
    """
    y = np.asarray(responses, dtype=float)
    if y.ndim != 2 or y.shape[1] != subset.n_items:
        raise DistillError(f"responses must be (n_models, {subset.n_items}), got {y.shape}")
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        raise DistillError(f"unknown estimator(s) {unknown}; choose from {', '.join(ESTIMATORS)}")
    models = models or [f"model_{i}" for i in range(y.shape[0])]
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    w_score, w_se = weighted_estimate(y, subset.weights, z)
    out["weighted"] = (w_score, w_score - z * w_se, w_score + z * w_se)
    if any(e in estimators for e in ("irt", "pirt", "gpirt")):
        if subset.item_params is None:
            raise DistillError("IRT estimators need item parameters: select the subset with IRT available")
        a = subset.item_params["a"].to_numpy(dtype=float)
        d = subset.item_params["d"].to_numpy(dtype=float)
        pos = _subset_positions(subset)
        theta, se = abilities(y, a[pos], d[pos])
        se = np.where(np.isfinite(se), se, 1.0)
        grid = np.stack([theta, theta - z * se, theta + z * se])  # (3, n)
        full = expected_scores(grid.ravel(), a, d).reshape(3, -1)
        out["irt"] = (full[0], np.minimum(full[1], full[2]), np.maximum(full[1], full[2]))
        unseen = np.ones(a.size, dtype=bool)
        unseen[pos] = False
        lam_p = pos.size / a.size
        rest = expected_scores(grid.ravel(), a[unseen], d[unseen]).reshape(3, -1) if unseen.any() else np.zeros((3, y.shape[0]))
        seen_mean = np.nanmean(y, axis=1)
        p_parts = lam_p * seen_mean[None, :] + (1 - lam_p) * rest
        out["pirt"] = (p_parts[0], np.minimum(p_parts[1], p_parts[2]), np.maximum(p_parts[1], p_parts[2]))
        if "gpirt" in estimators:
            if subset.lam is None:
                raise DistillError("gp-IRT needs a fitted lambda (fit_lambda); select with --estimator gpirt")
            lam = float(subset.lam)
            out["gpirt"] = tuple(lam * np.asarray(wv) + (1 - lam) * np.asarray(pv) for wv, pv in zip(out["weighted"], out["pirt"]))  # type: ignore[assignment]
    rows = []
    for e in estimators:
        s, lo, hi = out[e]
        rows.append(pd.DataFrame({"model": models, "estimator": e, "score": s,
                                  "ci_low": np.clip(lo, 0, 1), "ci_high": np.clip(hi, 0, 1)}))
    return pd.concat(rows, ignore_index=True)


def fit_lambda(errors_weighted: np.ndarray, errors_pirt: np.ndarray) -> float:
    """gp-IRT mixing weight chosen by cross-validation.

    ``errors_*`` are the two estimators' errors (prediction - truth) on the same
    held-out models (item parameters fitted without them). The blend's error on
    a model is ``lam * e_w + (1 - lam) * e_p`` exactly, so ``lam`` is the grid
    value (steps of 0.01) with the smallest mean absolute blended error.

    The two errors are strongly correlated (both estimators read the same
    answers), so the inverse-variance rule ``mse_p / (mse_p + mse_w)`` that
    assumes independent errors over-weights the weighted estimator; the grid
    search needs no such assumption. Ties go to the smaller ``lam`` (p-IRT).
    """
    ew = np.asarray(errors_weighted, float)
    ep = np.asarray(errors_pirt, float)
    if ew.shape != ep.shape or ew.ndim != 1:
        raise DistillError(f"error arrays must be 1-D and of one length, got {ew.shape} and {ep.shape}")
    ok = np.isfinite(ew) & np.isfinite(ep)
    if not ok.any():
        raise DistillError("no held-out model has both estimates: cannot fit the gp-IRT lambda")
    grid = np.round(np.linspace(0.0, 1.0, 101), 2)
    mae = np.abs(grid[:, None] * ew[ok][None, :] + (1 - grid[:, None]) * ep[ok][None, :]).mean(axis=1)
    return float(grid[int(np.argmin(mae))])
