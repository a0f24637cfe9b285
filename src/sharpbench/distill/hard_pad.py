"""Offset padding: re-add deleted items to cancel voter penalties and lift scores above chance.

A voter model whose answers helped pick the subset is "burned": items it got
right are preferentially deleted, so it scores lower than it would had it not
voted. Padding re-adds, for each burned voter, previously deleted items that it
answered correctly, in number proportional to its penalty. Candidates come from
a window of the deletion order (``lo``..``hi`` as fractions of the deleted
items, 0 = deleted first, 1 = deleted last, i.e. closest to the cut); inside
the window the items deleted last (the best-ranked of the deleted) come first.

``lift_above_chance`` pads the same way for the models below the subset's
chance baseline (MAGI's "no model below random" objective), repeating until
none is below or the window holds nothing more they answered correctly.
"""

from __future__ import annotations

import math

import numpy as np

from sharpbench.distill.common import subset_scores
from sharpbench.distill.errors import DistillError

__all__ = ["items_needed", "lift_above_chance", "pad_subset"]


def items_needed(score: float, gain: float, n_items: int, scale: float = 1.0) -> int:
    """How many correctly answered items to add to lift ``score`` by ``gain`` on ``n_items`` items.

    Solves ``(score * n + k) / (n + k) = score + gain`` for ``k`` and multiplies by ``scale``.
    """
    if not np.isfinite(score) or not np.isfinite(gain) or gain <= 0:
        return 0
    room = max(1.0 - score - gain, 0.05)
    return math.ceil(scale * gain * n_items / room)


def pad_subset(
    values: np.ndarray,
    keep: np.ndarray,
    order: np.ndarray,
    lifts: dict[int, float],
    *,
    lo: float = 0.0,
    hi: float = 1.0,
    scale: float = 1.0,
    priority: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[int, int]]:
    """Re-add deleted items to lift given models' scores.

    Parameters
    ----------
    values : ndarray (n_models, n_items), NaN = missing
    keep : bool ndarray (n_items,), the subset before padding
    order : int ndarray (n_items,), deletion order of the ranking
    lifts : {model position: score gain wanted} (e.g. voter penalties, or the
        gap to the chance baseline)
    lo, hi : candidate window over the deleted items, fractions in [0, 1]
    scale : multiplier on the number of items added per model
    priority : optional (n_items,) cost; inside the window, lower cost is re-added first
        (ties keep the deletion-recency order)

    Returns
    -------
    (padded mask (n_items,), {model position: items added})
    """
    values = np.asarray(values, dtype=float)
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (values.shape[1],) or order.shape != keep.shape:
        raise DistillError("keep mask and deletion order must both have one entry per item")
    if not 0.0 <= lo < hi <= 1.0:
        raise DistillError(f"padding window must satisfy 0 <= lo < hi <= 1, got ({lo}, {hi})")
    deleted = order[~keep[order]]
    window = deleted[math.floor(lo * deleted.size) : math.ceil(hi * deleted.size)]
    window = window[::-1]  # best-ranked deleted items first
    obs = ~np.isnan(values)
    mask = keep.copy()
    n = int(keep.sum())
    added: dict[int, int] = {}
    for m, gain in sorted(lifts.items(), key=lambda kv: -kv[1] if np.isfinite(kv[1]) else 0):
        row = values[m]
        sel = mask & obs[m]
        score = float(row[sel].mean()) if sel.any() else float("nan")
        k = items_needed(score, gain, n, scale)
        if k == 0:
            continue
        cands = window[(row[window] == 1) & ~mask[window]]
        if priority is not None:
            cands = cands[np.argsort(priority[cands], kind="stable")]
        pick = cands[:k]
        mask[pick] = True
        added[m] = int(pick.size)
    return mask, added


def lift_above_chance(
    values: np.ndarray,
    keep: np.ndarray,
    order: np.ndarray,
    chance: np.ndarray,
    models: np.ndarray,
    *,
    lo: float = 0.0,
    hi: float = 1.0,
    scale: float = 1.0,
    margin: float = 0.005,
    max_rounds: int = 50,
) -> tuple[np.ndarray, dict[int, int], dict[int, float]]:
    """Re-add deleted items until none of ``models`` scores below the subset's chance baseline.

    The baseline of a subset is the mean of the per-item chance rates over its
    items. Every round pads each model still below it (``pad_subset``, target
    ``margin`` above the baseline); re-added items move the baseline and the
    other scores, hence the rounds. Stops when no model is below, or when a
    round finds nothing to add (the window holds no more deleted items that the
    models below answered correctly).

    Parameters
    ----------
    values : ndarray (n_models, n_items), NaN = missing
    keep : bool ndarray (n_items,), the subset before lifting
    order : int ndarray (n_items,), deletion order of the ranking
    chance : ndarray (n_items,), random-guess success rate of every item (1 / n_options)
    models : int ndarray, positions of the models that must not be below chance
    lo, hi, scale : padding window and count multiplier, as in ``pad_subset``
    margin : lift target above the baseline
    max_rounds : upper bound on the padding rounds

    Returns
    -------
    (lifted mask (n_items,), {model position: items added}, {model position: baseline minus
    score} for the models still below the baseline, empty when the objective is met)
    """
    chance = np.asarray(chance, dtype=float)
    if chance.shape != np.shape(keep):
        raise DistillError(f"chance has shape {chance.shape}, expected one rate per item {np.shape(keep)}")
    mask = np.asarray(keep, dtype=bool).copy()
    models = np.asarray(models, dtype=int)
    added: dict[int, int] = {}

    def shortfall(m: np.ndarray) -> dict[int, float]:
        scores = subset_scores(values, m)
        base = float(chance[m].mean())
        return {int(j): base - float(scores[j]) for j in models if scores[j] < base}

    below = shortfall(mask)
    for _ in range(max_rounds):
        if not below:
            break
        mask, more = pad_subset(
            values, mask, order, {m: gap + margin for m, gap in below.items()}, lo=lo, hi=hi, scale=scale
        )
        if not any(more.values()):
            break
        for m, k in more.items():
            added[m] = added.get(m, 0) + k
        below = shortfall(mask)
    return mask, {m: k for m, k in added.items() if k}, below
