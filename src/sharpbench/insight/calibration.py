"""Calibration and distributional correctness from per-choice log-likelihoods.

Everything works on plain arrays: a ragged list of per-item choice
log-likelihoods (natural log, one array per item) and the gold index per item.
The model's belief over the options is the softmax of the (optionally
length-normalised) choice log-likelihoods, i.e. the distribution lm-eval's
``brier_score`` uses.

Metrics
-------
- ECE: top-label expected calibration error, ``sum_b (n_b / n) |acc_b - conf_b|``
  with ``n_bins`` equal-width bins on [0, 1] (``strategy="uniform"``, the
  default, 15 bins as in Guo et al. 2017) or equal-mass bins (``"quantile"``).
- Brier: multi-class Brier score ``mean_i sum_k (p_ik - y_ik)^2`` (range [0, 2]).
- DCS: Distributional Correctness Score (Burns, 2025, arXiv:2510.04302):
  ``(lc * p_correct - lw * p_wrong) * (1 - p_idk)`` per item, where ``p_idk``
  is the mass on an "I don't know" option when the benchmark offers one (the
  abstention anchor scores 0) and ``p_wrong`` the mass on the other wrong
  options. Range ``[-lw, lc]``; with ``lc = lw = 1`` and no abstention option
  it equals ``2 p_correct - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import softmax

from sharpbench.choices import CALIBRATION_BINNINGS
from sharpbench.insight.stats import InsightError

__all__ = [
    "brier_score",
    "calibration_from_frames",
    "calibration_summary",
    "choice_probabilities",
    "distributional_correctness",
    "expected_calibration_error",
    "reliability_table",
    "top_label",
]


def choice_probabilities(
    logliks: Sequence[np.ndarray], n_tokens: Sequence[np.ndarray] | None = None
) -> list[np.ndarray]:
    """Softmax over each item's choice log-likelihoods.

    Parameters
    ----------
    logliks : sequence of 1-D arrays
        Per item, the log-likelihood of each choice (length >= 2).
    n_tokens : sequence of 1-D arrays, optional
        Per item and choice, the continuation length; when given, log-likelihoods
        are divided by it first (per-token normalisation).
    """
    out = []
    for k, ll in enumerate(logliks):
        ll = np.asarray(ll, dtype=float)
        if ll.ndim != 1 or ll.size < 2:
            raise InsightError(f"item {k}: need a 1-D array of at least 2 choice log-likelihoods, got {ll.shape}")
        if not np.isfinite(ll).all():
            raise InsightError(f"item {k}: choice log-likelihoods must be finite")
        if n_tokens is not None:
            nt = np.asarray(n_tokens[k], dtype=float)
            if nt.shape != ll.shape or (nt <= 0).any():
                raise InsightError(f"item {k}: n_tokens must be positive and match the choices")
            ll = ll / nt
        out.append(softmax(ll))
    return out


def _gold(probs: Sequence[np.ndarray], gold: Sequence[int]) -> np.ndarray:
    g = np.asarray(gold)
    if g.shape != (len(probs),):
        raise InsightError(f"gold has shape {g.shape}, expected ({len(probs)},)")
    for k, (p, gi) in enumerate(zip(probs, g)):
        if not 0 <= gi < p.size:
            raise InsightError(f"item {k}: gold index {gi} outside 0..{p.size - 1}")
    return g.astype(int)


def top_label(probs: Sequence[np.ndarray], gold: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct): max probability per item and whether the argmax is the gold choice."""
    g = _gold(probs, gold)
    conf = np.array([p.max() for p in probs])
    correct = np.array([float(np.argmax(p) == gi) for p, gi in zip(probs, g)])
    return conf, correct


def _bin_edges(conf: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if n_bins < 1:
        raise InsightError("n_bins must be >= 1")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        edges = np.quantile(conf, np.linspace(0, 1, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
        return np.unique(edges)
    raise InsightError(f"unknown binning {strategy!r}; use one of {', '.join(CALIBRATION_BINNINGS)}")


def reliability_table(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15, strategy: str = "uniform"
) -> pd.DataFrame:
    """Reliability-diagram data: per bin ``bin_low, bin_high, n, confidence, accuracy`` (empty bins dropped).

    Bins are right-closed, ``(low, high]``, except the first, which includes 0.
    """
    conf = np.asarray(confidence, dtype=float)
    corr = np.asarray(correct, dtype=float)
    if conf.shape != corr.shape or conf.ndim != 1 or conf.size == 0:
        raise InsightError(f"confidence {conf.shape} and correct {corr.shape} must be equal-length non-empty 1-D")
    if (conf < 0).any() or (conf > 1).any():
        raise InsightError("confidences must lie in [0, 1]")
    edges = _bin_edges(conf, n_bins, strategy)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        m = idx == b
        if m.any():
            rows.append((edges[b], edges[b + 1], int(m.sum()), float(conf[m].mean()), float(corr[m].mean())))
    return pd.DataFrame(rows, columns=["bin_low", "bin_high", "n", "confidence", "accuracy"])


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15, strategy: str = "uniform"
) -> float:
    """Top-label ECE with the stated binning (see module docstring)."""
    t = reliability_table(confidence, correct, n_bins, strategy)
    return float((t["n"] * (t["accuracy"] - t["confidence"]).abs()).sum() / t["n"].sum())


def brier_score(probs: Sequence[np.ndarray], gold: Sequence[int]) -> float:
    """Multi-class Brier score averaged over items."""
    g = _gold(probs, gold)
    total = 0.0
    for p, gi in zip(probs, g):
        y = np.zeros_like(p)
        y[gi] = 1.0
        total += float(((p - y) ** 2).sum())
    return total / len(probs)


def distributional_correctness(
    probs: Sequence[np.ndarray],
    gold: Sequence[int],
    idk: Sequence[int] | None = None,
    *,
    lc: float = 1.0,
    lw: float = 1.0,
) -> np.ndarray:
    """Per-item Distributional Correctness Score (Burns, 2025).

    Parameters
    ----------
    idk : sequence of int, optional
        Per item, the index of the abstention ("I don't know") option, or -1
        when the item has none.
    lc, lw : float
        Loadings of correct and wrong mass; require ``lc >= lw >= 0``.
    """
    if not (lc >= lw >= 0):
        raise InsightError(f"DCS loadings need lc >= lw >= 0, got lc={lc}, lw={lw}")
    g = _gold(probs, gold)
    ik = np.full(len(probs), -1) if idk is None else np.asarray(idk, dtype=int)
    if ik.shape != (len(probs),):
        raise InsightError(f"idk has shape {ik.shape}, expected ({len(probs)},)")
    out = np.empty(len(probs))
    for k, (p, gi, ii) in enumerate(zip(probs, g, ik)):
        if ii == gi:
            raise InsightError(f"item {k}: the abstention option cannot be the gold answer")
        p_idk = p[ii] if 0 <= ii < p.size else 0.0
        p_c = p[gi]
        p_w = 1.0 - p_c - p_idk
        out[k] = (lc * p_c - lw * p_w) * (1.0 - p_idk)
    return out


def calibration_summary(
    probs: Sequence[np.ndarray],
    gold: Sequence[int],
    idk: Sequence[int] | None = None,
    *,
    n_bins: int = 15,
    strategy: str = "uniform",
) -> dict[str, object]:
    """Accuracy, ECE, Brier, mean DCS and the reliability table of one model's items."""
    conf, corr = top_label(probs, gold)
    dcs = distributional_correctness(probs, gold, idk)
    return {
        "n_items": len(probs),
        "accuracy": float(corr.mean()),
        "mean_confidence": float(conf.mean()),
        "ece": expected_calibration_error(conf, corr, n_bins, strategy),
        "brier": brier_score(probs, gold),
        "dcs": float(dcs.mean()),
        "binning": f"{n_bins} {strategy} bins on top-label confidence",
        "reliability": reliability_table(conf, corr, n_bins, strategy),
    }


def calibration_from_frames(
    choices: pd.DataFrame,
    items: pd.DataFrame,
    *,
    by: str = "run_id",
    length_normalise: bool = False,
    n_bins: int = 15,
    strategy: str = "uniform",
    idk_choice: int | None = None,
) -> dict[str, dict[str, object]]:
    """Calibration summaries per group from long tables.

    Parameters
    ----------
    choices : DataFrame
        ``by, item_id, choice, loglik`` (and ``n_tokens`` for length normalisation).
    items : DataFrame
        ``by, item_id, gold``.
    idk_choice : int, optional
        Index of the abstention option when the benchmark has one at a fixed position.
    """
    need_c = {by, "item_id", "choice", "loglik"} | ({"n_tokens"} if length_normalise else set())
    need_i = {by, "item_id", "gold"}
    if missing := need_c - set(choices.columns):
        raise InsightError(f"choices table lacks column(s) {sorted(missing)}")
    if missing := need_i - set(items.columns):
        raise InsightError(f"items table lacks column(s) {sorted(missing)}")
    if choices.empty:
        raise InsightError("no per-choice log-likelihoods: run `sharpbench eval` on a multiple-choice task first")
    gold = items.set_index([by, "item_id"])["gold"]
    out: dict[str, dict[str, object]] = {}
    for key, grp in choices.sort_values([by, "item_id", "choice"]).groupby(by, sort=True):
        ll, nt, gl = [], [], []
        for item_id, g in grp.groupby("item_id", sort=False):
            if (key, item_id) not in gold.index or len(g) < 2:
                continue
            ll.append(g["loglik"].to_numpy(float))
            if length_normalise:
                nt.append(np.maximum(g["n_tokens"].fillna(1).to_numpy(float), 1))
            gl.append(int(gold.loc[(key, item_id)]))
        if not ll:
            continue
        probs = choice_probabilities(ll, nt if length_normalise else None)
        idk = None if idk_choice is None else [idk_choice if idk_choice < p.size else -1 for p in probs]
        out[str(key)] = calibration_summary(probs, gl, idk, n_bins=n_bins, strategy=strategy)
    if not out:
        raise InsightError("no item has both choice log-likelihoods and a gold index")
    return out
