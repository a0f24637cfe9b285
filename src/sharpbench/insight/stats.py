"""Small statistical helpers shared by the insight analyses.

Binomial confidence intervals, paired / unpaired tests of two proportions and
multiple-comparison corrections. Pure functions on numpy arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from sharpbench.choices import P_CORRECTIONS
from sharpbench.errors import InputError

__all__ = [
    "InsightError",
    "adjust_pvalues",
    "mcnemar_test",
    "two_proportion_test",
    "wilson_interval",
]


class InsightError(InputError, ValueError):
    """Input unfit for an insight analysis; the message says what to change."""


def wilson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion.

    Parameters
    ----------
    successes, n : array_like
        Number of correct answers and of answered items (broadcastable).
        Fractional successes (partial credit) are accepted.
    confidence : float
        Two-sided coverage, in (0, 1).

    Returns
    -------
    (low, high) : arrays of the broadcast shape; NaN where ``n == 0``.
    """
    if not 0 < confidence < 1:
        raise InsightError(f"confidence must lie in (0, 1), got {confidence}")
    k = np.asarray(successes, dtype=float)
    n_arr = np.asarray(n, dtype=float)
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n_arr
        denom = 1 + z**2 / n_arr
        centre = (p + z**2 / (2 * n_arr)) / denom
        half = z * np.sqrt(p * (1 - p) / n_arr + z**2 / (4 * n_arr**2)) / denom
    low = np.where(n_arr > 0, np.clip(centre - half, 0, 1), np.nan)
    high = np.where(n_arr > 0, np.clip(centre + half, 0, 1), np.nan)
    return low, high


def mcnemar_test(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar test for two models answering the same items.

    Parameters
    ----------
    a, b : ndarray of shape (n_items,)
        0/1 correctness of the two models on the same items (no NaN).

    Returns
    -------
    (p_value, n_a_only, n_b_only): two-sided exact binomial p-value on the
    discordant pairs, and the discordant counts.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise InsightError(f"mcnemar_test needs two 1-D arrays of equal length, got {a.shape} and {b.shape}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise InsightError("mcnemar_test needs paired answers: drop items either model did not answer")
    a_only = int(np.sum((a >= 0.5) & (b < 0.5)))
    b_only = int(np.sum((b >= 0.5) & (a < 0.5)))
    n = a_only + b_only
    if n == 0:
        return 1.0, 0, 0
    p = float(stats.binomtest(a_only, n, 0.5).pvalue)
    return p, a_only, b_only


def two_proportion_test(k1: float, n1: float, k2: float, n2: float) -> float:
    """Two-sided z test of equal proportions for independent samples (pooled variance)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    return float(2 * stats.norm.sf(abs(z)))


def adjust_pvalues(pvalues: np.ndarray, method: str = "holm") -> np.ndarray:
    """Multiple-comparison adjusted p-values.

    Parameters
    ----------
    pvalues : ndarray of shape (m,)
    method : {"holm", "bh", "bonferroni"}
        Holm's step-down family-wise control, Benjamini-Hochberg false
        discovery rate, or plain Bonferroni.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise InsightError(f"pvalues must be 1-D, got shape {p.shape}")
    if p.size == 0:
        return p
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise InsightError("p-values must lie in [0, 1] with no NaN")
    m = p.size
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    if method == "bh":
        return stats.false_discovery_control(p, method="bh")
    if method == "holm":
        order = np.argsort(p)
        adj_sorted = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out = np.empty(m)
        out[order] = np.minimum(adj_sorted, 1.0)
        return out
    raise InsightError(f"unknown correction {method!r}; use one of {', '.join(P_CORRECTIONS)}")
