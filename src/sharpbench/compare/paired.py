"""Paired significance tests for two models scored on the same items.

Both models answer the same items, so their per-item scores are paired:
McNemar's exact test for 0/1 scores (only discordant items carry evidence),
a paired permutation test for continuous scores, and a paired bootstrap
confidence interval for the difference of means in both cases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from sharpbench.compare.errors import CompareError


@dataclass(frozen=True)
class PairedDelta:
    """Difference ``modified - base`` of a per-item metric over shared items.

    Attributes
    ----------
    metric : str
        Metric name (e.g. ``"acc_norm"``).
    n_items : int
        Number of paired items.
    base, modified : float
        Mean metric of each model.
    delta : float
        ``modified - base``.
    ci_low, ci_high : float
        Paired-bootstrap percentile confidence interval of ``delta``.
    p_value : float
        McNemar exact p-value (binary metrics) or paired permutation p-value.
    test : str
        ``"mcnemar-exact"`` or ``"paired-permutation"``.
    n_base_only, n_modified_only : int
        Discordant counts (binary metrics; 0 otherwise): items only the base
        (resp. only the modified model) got right.
    """

    metric: str
    n_items: int
    base: float
    modified: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    n_base_only: int = 0
    n_modified_only: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _check_pair(base: np.ndarray, modified: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(base, dtype=float)
    b = np.asarray(modified, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise CompareError(
            f"paired scores must be two 1-D arrays of equal length, got shapes {a.shape} and {b.shape}"
        )
    if a.size == 0:
        raise CompareError("no paired items: the two runs share no item ids")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise CompareError("paired scores contain NaN or inf; drop unanswered items first")
    return a, b


def is_binary(x: np.ndarray) -> bool:
    """True when every value is 0 or 1."""
    x = np.asarray(x, dtype=float)
    return bool(np.isin(x, (0.0, 1.0)).all())


def mcnemar_exact(base: np.ndarray, modified: np.ndarray) -> tuple[float, int, int]:
    """Exact (binomial) two-sided McNemar test on paired 0/1 outcomes.

    Parameters
    ----------
    base, modified : ndarray of shape (n_items,)
        0/1 correctness per item.

    Returns
    -------
    p_value : float
        Two-sided exact p-value; 1.0 when there is no discordant item.
    n_base_only : int
        Items correct for the base model only.
    n_modified_only : int
        Items correct for the modified model only.
    """
    a, b = _check_pair(base, modified)
    if not (is_binary(a) and is_binary(b)):
        raise CompareError("McNemar's test needs 0/1 scores; use paired_permutation_p for continuous metrics")
    n10 = int(((a == 1) & (b == 0)).sum())
    n01 = int(((a == 0) & (b == 1)).sum())
    if n10 + n01 == 0:
        return 1.0, n10, n01
    p = stats.binomtest(n10, n10 + n01, 0.5, alternative="two-sided").pvalue
    return float(min(1.0, p)), n10, n01


def paired_permutation_p(
    base: np.ndarray, modified: np.ndarray, *, n_resamples: int = 9999, seed: int = 0
) -> float:
    """Two-sided paired permutation (sign-flip) p-value for the mean difference."""
    a, b = _check_pair(base, modified)
    if np.allclose(a, b):
        return 1.0
    res = stats.permutation_test(
        (b, a),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=n_resamples,
        alternative="two-sided",
        vectorized=True,
        random_state=seed,
    )
    return float(res.pvalue)


def paired_bootstrap_ci(
    base: np.ndarray,
    modified: np.ndarray,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile CI of ``mean(modified - base)`` resampling items with replacement.

    ``base`` and ``modified`` are per-item scores of shape ``(n_items,)``; the
    other arguments and the result are those of :func:`bootstrap_mean_ci`.
    """
    a, b = _check_pair(base, modified)
    return bootstrap_mean_ci(b - a, n_boot=n_boot, level=level, seed=seed)


def bootstrap_mean_ci(
    x: np.ndarray, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``mean(x)``, resampling its entries with replacement.

    Parameters
    ----------
    x : ndarray of shape (n,)
    n_boot : int
        Number of bootstrap resamples.
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise CompareError(f"need a non-empty 1-D array, got shape {x.shape}")
    if not 0 < level < 1:
        raise CompareError(f"confidence level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_delta(
    metric: str,
    base: np.ndarray,
    modified: np.ndarray,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedDelta:
    """Mean difference with a bootstrap CI and the right paired test for the metric's type."""
    a, b = _check_pair(base, modified)
    lo, hi = paired_bootstrap_ci(a, b, n_boot=n_boot, level=level, seed=seed)
    if is_binary(a) and is_binary(b):
        p, n10, n01 = mcnemar_exact(a, b)
        test = "mcnemar-exact"
    else:
        p, n10, n01 = paired_permutation_p(a, b, seed=seed), 0, 0
        test = "paired-permutation"
    return PairedDelta(
        metric=metric,
        n_items=int(a.size),
        base=float(a.mean()),
        modified=float(b.mean()),
        delta=float(b.mean() - a.mean()),
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        test=test,
        n_base_only=n10,
        n_modified_only=n01,
    )
