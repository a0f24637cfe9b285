"""Rank aggregation across benchmarks: mean score, Borda, Kemeny-Young and
Bradley-Terry on item-level pairwise comparisons.

``mean``, ``borda`` and ``kemeny`` read a models x benchmarks score table and
need every model scored on every benchmark. ``bradley-terry`` reads the item
level response matrix and works on sparse, incomplete data (ONEBench-style):
two models are compared only on items both answered, so models evaluated on
different subsets still get scores on one scale.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import optimize

from sharpbench.choices import RANK_METHODS as METHODS
from sharpbench.insight.stats import InsightError
from sharpbench.matrix import ResponseMatrix

__all__ = [
    "METHODS",
    "IncompleteDataError",
    "aggregate",
    "benchmark_scores",
    "borda",
    "bradley_terry",
    "kemeny",
    "kemeny_objective",
    "mean_score",
    "pairwise_wins",
    "ranks_from_scores",
]

COMPLETE_DATA_METHODS = ("mean", "borda", "kemeny")


class IncompleteDataError(InsightError):
    """A method that needs complete data was given a table with missing cells."""


def benchmark_scores(matrix: ResponseMatrix, benchmarks: pd.Series | None) -> pd.DataFrame:
    """Mean score per model and benchmark over observed items (NaN where a model answered none).

    ``benchmarks`` maps item id -> benchmark name; ``None`` = the whole matrix is one benchmark.
    """
    if benchmarks is None:
        labels = np.zeros(matrix.n_items, dtype=int)
        names = ["all"]
    else:
        b = benchmarks.copy()
        b.index = b.index.map(str)
        b = b.reindex(list(matrix.items))
        if b.isna().all():
            raise InsightError("no matrix item has a benchmark label; do the item ids match?")
        cat = pd.Categorical(b.astype("string"))
        labels, names = np.asarray(cat.codes), [str(c) for c in cat.categories]
    obs = matrix.observed
    filled = np.where(obs, matrix.values, 0.0)
    out = np.full((matrix.n_models, len(names)), np.nan)
    for j in range(len(names)):
        cols = labels == j
        n = obs[:, cols].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(n > 0, filled[:, cols].sum(axis=1) / n, np.nan)
    return pd.DataFrame(out, index=pd.Index(matrix.models, name="model"), columns=names)


def _require_complete(scores: pd.DataFrame, method: str) -> np.ndarray:
    v = scores.to_numpy(dtype=float)
    if v.ndim != 2 or v.shape[0] < 2:
        raise InsightError(f"{method} needs a models x benchmarks table with at least two models")
    miss = np.isnan(v)
    if miss.any():
        m = scores.index[miss.any(axis=1)].tolist()
        raise IncompleteDataError(
            f"{method} needs every model scored on every benchmark, but {int(miss.sum())} of {v.size} "
            f"model x benchmark cells are missing (models {m[:3]}{' ...' if len(m) > 3 else ''}); use "
            "--method bradley-terry, which compares models only on items both answered, or "
            "--on-missing switch to do so automatically"
        )
    return v


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """1 = best; ties get the average rank."""
    from scipy.stats import rankdata

    return rankdata(-np.asarray(scores, dtype=float), method="average")


def mean_score(scores: pd.DataFrame) -> pd.Series:
    """Macro-average score over benchmarks (each benchmark weighs the same)."""
    v = _require_complete(scores, "mean")
    return pd.Series(v.mean(axis=1), index=scores.index, name="mean")


def borda(scores: pd.DataFrame) -> pd.Series:
    """Borda count: per benchmark, one point per model beaten (half for a tie); averaged over benchmarks."""
    v = _require_complete(scores, "borda")
    gt = (v[:, None, :] > v[None, :, :]).sum(axis=1)
    eq = (v[:, None, :] == v[None, :, :]).sum(axis=1) - 1
    return pd.Series((gt + 0.5 * eq).mean(axis=1), index=scores.index, name="borda")


def _preference_matrix(v: np.ndarray) -> np.ndarray:
    """P[i, j] = number of benchmarks where model i beats j (ties count 1/2)."""
    gt = (v[:, None, :] > v[None, :, :]).sum(axis=2).astype(float)
    eq = (v[:, None, :] == v[None, :, :]).sum(axis=2).astype(float)
    p = gt + 0.5 * eq
    np.fill_diagonal(p, 0.0)
    return p


def kemeny_objective(order: np.ndarray, pref: np.ndarray) -> float:
    """Agreement of an order (best first) with the preferences: sum of P[i, j] over i placed before j."""
    pos = np.empty(len(order), dtype=int)
    pos[np.asarray(order)] = np.arange(len(order))
    before = pos[:, None] < pos[None, :]
    return float(pref[before].sum())


def _kemeny_exact(pref: np.ndarray) -> np.ndarray:
    """Dynamic programming over subsets (Held-Karp style), O(2^n n^2)."""
    n = pref.shape[0]
    full = (1 << n) - 1
    best = np.full(1 << n, -np.inf)
    choice = np.full(1 << n, -1, dtype=int)
    best[0] = 0.0
    # gain of placing i right after the models in `mask`: it is ranked below them,
    # so it collects P[i, j] for every j not yet placed.
    for mask in range(1 << n):
        if best[mask] == -np.inf:
            continue
        rest = [j for j in range(n) if not mask >> j & 1]
        for i in rest:
            gain = sum(pref[i, j] for j in rest if j != i)
            nm = mask | (1 << i)
            if best[mask] + gain > best[nm]:
                best[nm] = best[mask] + gain
                choice[nm] = i
    order, mask = [], full
    while mask:
        i = choice[mask]
        order.append(i)
        mask &= ~(1 << i)
    return np.array(order[::-1])


def _kemeny_local(pref: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Local search from ``start``: move single models to the best position until no move helps."""
    order = list(start)
    n = len(order)
    improved = True
    while improved:
        improved = False
        for k in range(n):
            m = order[k]
            rest = order[:k] + order[k + 1 :]
            # objective change of inserting m at each position, relative to the top
            gains = np.zeros(n)
            # placing m at position p: m beats everything after it
            above = np.array([pref[r, m] for r in rest])
            below = np.array([pref[m, r] for r in rest])
            total_below = below.sum()
            cum_above = np.concatenate([[0.0], np.cumsum(above)])
            cum_below = np.concatenate([[0.0], np.cumsum(below)])
            gains = cum_above + (total_below - cum_below)
            p = int(np.argmax(gains))
            if gains[p] > gains[k] + 1e-12:
                order = rest[:p] + [m] + rest[p:]
                improved = True
    return np.array(order)


def kemeny(scores: pd.DataFrame, exact_max: int = 10) -> pd.Series:
    """Kemeny-Young consensus ranking (minimises total Kendall distance to the benchmark rankings).

    Exact by dynamic programming for up to ``exact_max`` models; otherwise local
    search (single-model moves) from the better of the Borda and Copeland
    orders, a standard approximation that keeps the Kemeny objective at a local
    optimum. The returned score is ``n_models - position`` (higher = better).
    """
    v = _require_complete(scores, "kemeny")
    pref = _preference_matrix(v)
    n = v.shape[0]
    if n <= exact_max:
        order = _kemeny_exact(pref)
    else:
        starts = [
            np.argsort(-borda(scores).to_numpy(), kind="stable"),
            np.argsort(-(pref > pref.T).sum(axis=1), kind="stable"),
        ]
        cands = [_kemeny_local(pref, s) for s in starts]
        order = max(cands, key=lambda o: kemeny_objective(o, pref))
    out = np.empty(n)
    out[order] = n - np.arange(n)
    return pd.Series(out, index=scores.index, name="kemeny")


def pairwise_wins(matrix: ResponseMatrix) -> np.ndarray:
    """W[i, j] = items both answered where model i is right and j wrong (partial scores count fractionally)."""
    right = np.where(matrix.observed, matrix.values, 0.0)
    wrong = np.where(matrix.observed, 1.0 - matrix.values, 0.0)
    w = right @ wrong.T
    np.fill_diagonal(w, 0.0)
    return w


def bradley_terry(matrix: ResponseMatrix, l2: float = 1e-3) -> pd.Series:
    """Bradley-Terry strengths from item-level pairwise comparisons (log-odds scale, mean 0).

    Maximises ``sum_ij W_ij log sigmoid(s_i - s_j) - l2/2 * ||s||^2`` with
    L-BFGS; the small ridge keeps strengths finite for models that never lose
    and for comparison graphs that are not connected.
    """
    if matrix.n_models < 2:
        raise InsightError("bradley-terry needs at least two models")
    w = pairwise_wins(matrix)
    n_comp = w + w.T
    if n_comp.sum() == 0:
        raise InsightError("no pair of models disagrees on an item both answered; nothing to rank")
    return pd.Series(_bt_fit(w, l2), index=pd.Index(matrix.models, name="model"), name="bradley-terry")


def _bt_fit(w: np.ndarray, l2: float) -> np.ndarray:
    n = w.shape[0]
    scale = max(1.0, w.sum() / max(n * n, 1))

    def fun(s: np.ndarray) -> tuple[float, np.ndarray]:
        d = s[:, None] - s[None, :]
        logp = -np.logaddexp(0.0, -d)  # log sigmoid
        p = np.exp(logp)
        nll = -(w * logp).sum() / scale + 0.5 * l2 * (s @ s)
        g_mat = w * (1 - p)  # d/ds_i of w_ij log sig(s_i - s_j)
        grad = -(g_mat.sum(axis=1) - g_mat.sum(axis=0)) / scale + l2 * s
        return nll, grad

    res = optimize.minimize(fun, np.zeros(n), jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-9})
    s = res.x
    return s - s.mean()


def aggregate(
    matrix: ResponseMatrix,
    benchmarks: pd.Series | None,
    method: str,
    *,
    on_missing: str = "refuse",
) -> tuple[str, pd.Series]:
    """Scores (higher = better) per model by ``method``.

    ``on_missing="switch"`` falls back to Bradley-Terry when a complete-data
    method meets missing benchmark scores; ``"refuse"`` raises
    :class:`IncompleteDataError`. Returns ``(method actually used, scores)``.
    """
    if method not in METHODS:
        raise InsightError(f"unknown rank method {method!r}; choose one of {', '.join(METHODS)}")
    if on_missing not in ("refuse", "switch"):
        raise InsightError("on_missing must be 'refuse' or 'switch'")
    if method == "bradley-terry":
        return method, bradley_terry(matrix)
    table = benchmark_scores(matrix, benchmarks)
    if method in ("borda", "kemeny") and table.shape[1] < 2:
        raise InsightError(f"{method} aggregates rankings across benchmarks: give at least two (e.g. --by category)")
    try:
        fn = {"mean": mean_score, "borda": borda, "kemeny": kemeny}[method]
        return method, fn(table)
    except IncompleteDataError:
        if on_missing == "switch":
            return "bradley-terry", bradley_terry(matrix)
        raise


def kendall_distance_total(order_scores: np.ndarray, table: np.ndarray) -> int:
    """Total number of discordant pairs between a consensus score vector and each benchmark column."""
    total = 0
    for i, j in itertools.combinations(range(len(order_scores)), 2):
        c = np.sign(order_scores[i] - order_scores[j])
        total += int(np.sum(np.sign(table[i] - table[j]) * c < 0))
    return total
