"""Item rankings for hard/discriminative subsets (MAGI method) and guesser detection.

A ranking gives every item a *keep score*: the higher, the later the item is
deleted during progressive deletion. The four rankings are

``mean``
    minus the mean score of the voter models (hard items are kept);
``ref-vs-others``
    the reference model's score minus the voters' mean score (items the
    reference solves and the voters miss are kept; the reference therefore
    scores unfairly well on the result and is flagged as such);
``irt-difficulty``
    2PL difficulty ``b = -d / a`` fitted on the voters (hard items kept);
``irt-discrimination``
    2PL slope ``a`` fitted on the voters (discriminating items kept).

Items with no voter answer (or, for ``ref-vs-others``, no reference answer)
get ``-inf`` and are deleted first.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from sharpbench.choices import HARD_RANKINGS as RANKINGS
from sharpbench.distill.errors import DistillError
from sharpbench.matrix import ResponseMatrix

__all__ = ["IRT_RANKINGS", "RANKINGS", "deletion_order", "detect_guessers", "keep_scores", "loo_keep_scores"]

IRT_RANKINGS = ("irt-difficulty", "irt-discrimination")

IrtFitter = Callable[[ResponseMatrix], pd.DataFrame]


def _voter_sums(values: np.ndarray, voters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sub = values[voters]
    obs = ~np.isnan(sub)
    return np.where(obs, sub, 0.0).sum(axis=0), obs.sum(axis=0).astype(float)


def _combine(method: str, sums: np.ndarray, counts: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    score = -mean if method == "mean" else ref - mean  # type: ignore[operator]
    return np.where(np.isnan(score), -np.inf, score)


def _irt_scores(method: str, matrix: ResponseMatrix, voters: np.ndarray, fitter: IrtFitter) -> np.ndarray:
    sub = matrix.select(models=voters)
    params = fitter(sub).reindex(list(matrix.items))
    a = params["a"].to_numpy(dtype=float)
    d = params["d"].to_numpy(dtype=float)
    if method == "irt-discrimination":
        out = a
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(a > 0, -d / a, np.nan)
        # items the fit left out (constant over voters): all wrong = hardest, all right = easiest
        p = sub.item_pvalues().to_numpy()
        out = np.where(np.isnan(a) & (p == 0), np.inf, out)
    return np.where(np.isnan(out), -np.inf, out)


def keep_scores(
    matrix: ResponseMatrix,
    method: str,
    voters: np.ndarray,
    reference: int | None = None,
    irt_fitter: IrtFitter | None = None,
) -> np.ndarray:
    """Keep score of every item (higher = kept longer).

    Parameters
    ----------
    matrix : ResponseMatrix (n_models, n_items)
    method : one of ``RANKINGS``
    voters : int ndarray of model positions forming the voter pool
    reference : position of the reference model (``ref-vs-others`` only)
    irt_fitter : callable returning a DataFrame with columns ``a, d`` indexed by item id
        (IRT rankings only)

    Returns
    -------
    ndarray (n_items,)
    """
    if method not in RANKINGS:
        raise DistillError(f"unknown ranking {method!r}; choose one of {', '.join(RANKINGS)}")
    voters = np.asarray(voters, dtype=int)
    if voters.size == 0:
        raise DistillError("the voter pool is empty: every model is the reference, excluded or a guesser")
    if method in IRT_RANKINGS:
        if irt_fitter is None:
            raise DistillError(f"ranking {method!r} needs an IRT fitter")
        return _irt_scores(method, matrix, voters, irt_fitter)
    ref = _reference_row(matrix, method, reference)
    sums, counts = _voter_sums(matrix.values, voters)
    return _combine(method, sums, counts, ref)


def loo_keep_scores(
    matrix: ResponseMatrix,
    method: str,
    voters: np.ndarray,
    reference: int | None = None,
    irt_fitter: IrtFitter | None = None,
) -> np.ndarray:
    """Keep scores recomputed with each voter left out of the pool.

    Returns
    -------
    ndarray (n_voters, n_items): row k is the ranking without ``voters[k]``.
    For the IRT rankings this refits the IRT model once per voter.
    """
    voters = np.asarray(voters, dtype=int)
    if voters.size < 2:
        raise DistillError("voter penalties need at least 2 voters")
    if method in IRT_RANKINGS:
        return np.stack(
            [keep_scores(matrix, method, np.delete(voters, k), reference, irt_fitter) for k in range(voters.size)]
        )
    ref = _reference_row(matrix, method, reference)
    sums, counts = _voter_sums(matrix.values, voters)
    rows = matrix.values[voters]
    obs = ~np.isnan(rows)
    loo_sums = sums[None, :] - np.where(obs, rows, 0.0)
    loo_counts = counts[None, :] - obs
    return _combine(method, loo_sums, loo_counts, None if ref is None else ref[None, :])


def _reference_row(matrix: ResponseMatrix, method: str, reference: int | None) -> np.ndarray | None:
    if method != "ref-vs-others":
        return None
    if reference is None:
        raise DistillError("ranking 'ref-vs-others' needs a reference model (--reference MODEL)")
    return matrix.values[reference]


def deletion_order(keep: np.ndarray) -> np.ndarray:
    """Item positions in deletion order (lowest keep score first; ties by position).

    ``keep`` may be (n_items,) or (n_rankings, n_items).
    """
    return np.argsort(keep, axis=-1, kind="stable")


def detect_guessers(
    matrix: ResponseMatrix,
    chance: np.ndarray,
    *,
    margin: float = 0.05,
    alpha: float = 0.01,
    max_corr: float = 0.1,
) -> pd.DataFrame:
    """Flag models whose answers look like random guessing.

    A model is a guesser when it is both *near chance* (accuracy less than
    ``margin`` above its chance baseline, or not significantly above it by a
    one-sided binomial z-test at level ``alpha``) and *flat* (the correlation
    between its correctness and the item easiness measured on the other models
    is below ``max_corr``: a guesser does as well on hard items as on easy ones).

    Returns
    -------
    DataFrame indexed by model: ``accuracy, chance, p_value, difficulty_corr,
    near_chance, flat, is_guesser``.
    """
    v = matrix.values
    chance = np.asarray(chance, dtype=float)
    if chance.shape != (matrix.n_items,):
        raise DistillError(f"chance has shape {chance.shape}, expected ({matrix.n_items},)")
    obs = ~np.isnan(v)
    x = np.where(obs, v, 0.0)
    n = obs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = x.sum(axis=1) / n
        base = (obs * chance).sum(axis=1) / n
        z = (acc - base) / np.sqrt(base * (1 - base) / n)
    p_value = stats.norm.sf(z)
    # easiness of each item among the *other* models
    tot, cnt = x.sum(axis=0), obs.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        others = (tot[None, :] - x) / (cnt[None, :] - obs)
    corr = np.full(matrix.n_models, np.nan)
    for m in range(matrix.n_models):
        ok = obs[m] & np.isfinite(others[m])
        if ok.sum() > 2 and np.std(v[m, ok]) > 0 and np.std(others[m, ok]) > 0:
            corr[m] = np.corrcoef(v[m, ok], others[m, ok])[0, 1]
    near = ((acc - base) < margin) | (p_value > alpha)
    flat = ~(corr >= max_corr)  # NaN correlation (constant answers) counts as flat
    return pd.DataFrame(
        {
            "accuracy": acc,
            "chance": base,
            "p_value": p_value,
            "difficulty_corr": corr,
            "near_chance": near,
            "flat": flat,
            "is_guesser": near & flat,
        },
        index=pd.Index(matrix.models, name="model"),
    )
