"""The numeric core of the elicitation study: held-out selection, majority votes, paired bootstrap intervals.

Every function is pure (numpy in, numpy out). Conventions: ``correct`` is an
``(n_arms, n_items)`` array of per-item scores in [0, 1] (1 = right; a
fraction where an arm is itself an average, e.g. a probe over its splits);
``weights`` is an ``(n_boot, n_items)`` array of item multiplicities (all ones
for the observed data, multinomial counts for a bootstrap resample).

Held-out selection (:func:`held_out_scores`) is the honest way to report "the
best prompt": choose the arm on one half of the items, score it on the other,
use each split both ways, average over repeated random splits. Choosing and
scoring on the same items is optimistic by construction (the in-sample best of
many noisy arms beats the truth).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sharpbench.elicit.errors import ElicitError

MIN_ITEMS = 10  # held-out selection needs two halves with a few items each


def _as_correct(correct: np.ndarray) -> np.ndarray:
    c = np.asarray(correct, dtype=float)
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2 or c.shape[0] == 0:
        raise ElicitError(f"correctness must be (n_arms, n_items), got shape {np.shape(correct)}")
    if np.isnan(c).any():
        raise ElicitError("correctness has missing values (an arm did not answer every item)")
    return c


def half_splits(n_items: int, n_splits: int, seed: int = 0) -> np.ndarray:
    """Random half splits as boolean masks.

    Returns
    -------
    ndarray of bool, shape (n_splits, n_items)
        ``True`` marks the first half (``n_items // 2`` items), ``False`` the second.
    """
    if n_items < MIN_ITEMS:
        raise ElicitError(f"held-out selection needs at least {MIN_ITEMS} items, got {n_items}; raise --limit")
    if n_splits < 1:
        raise ElicitError(f"n_splits must be >= 1, got {n_splits}")
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_splits, n_items), dtype=bool)
    for s in range(n_splits):
        masks[s, rng.permutation(n_items)[: n_items // 2]] = True
    return masks


def bootstrap_weights(n_items: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Item multiplicities of ``n_boot`` bootstrap resamples, shape (n_boot, n_items) (row sums = n_items)."""
    if n_boot < 1:
        raise ElicitError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_boot).astype(float)


def weighted_accuracy(correct: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Accuracy of every arm under every weighting: shape (n_arms, n_boot)."""
    c = _as_correct(correct)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    if w.shape[1] != c.shape[1]:
        raise ElicitError(f"weights cover {w.shape[1]} items, correctness {c.shape[1]}")
    return (c @ w.T) / w.sum(axis=1)[None, :]


def held_out_scores(correct: np.ndarray, weights: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Held-out score of "pick the best arm" under each weighting.

    Parameters
    ----------
    correct : ndarray, shape (n_arms, n_items)
    weights : ndarray, shape (n_boot, n_items)
    splits : ndarray of bool, shape (n_splits, n_items)
        From :func:`half_splits`; each split is used both ways.

    Returns
    -------
    ndarray, shape (n_boot,)
        Mean over the ``2 * n_splits`` selections of the chosen arm's accuracy
        on the half it was not chosen on. Ties go to the first arm (list the
        plain prompt first: a tie never counts as a gain).
    """
    c = _as_correct(correct)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    m = np.asarray(splits, dtype=bool)
    if w.shape[1] != c.shape[1] or m.shape[1] != c.shape[1]:
        raise ElicitError(f"weights {w.shape} / splits {m.shape} do not match {c.shape[1]} items")
    if c.shape[0] == 1:
        return weighted_accuracy(c, w)[0]
    cols = np.arange(w.shape[0])
    total = np.zeros(w.shape[0])
    for mask in m:
        acc = []
        for half in (mask, ~mask):
            wh = w * half[None, :]
            den = wh.sum(axis=1)
            acc.append((c @ wh.T) / np.where(den > 0, den, 1.0)[None, :])
        a, b = acc
        total += b[np.argmax(a, axis=0), cols] + a[np.argmax(b, axis=0), cols]
    return total / (2 * m.shape[0])


def answer_prior(gold: Sequence[str], splits: np.ndarray) -> np.ndarray:
    """Held-out score of a constant answer: the one most often right in one half, given to every item of the other.

    What a read-out that knows only the answer distribution scores (e.g. a probe
    that learns "option A is right more often" from the option's position): the
    baseline a probe must beat before it says the model knows the answers.

    Parameters
    ----------
    gold : sequence of str, length n_items
        Each item's right answer (in one canonical form, e.g. lower-case letters).
    splits : ndarray of bool, shape (n_splits, n_items)
        From :func:`half_splits`; each split is used both ways. Ties between
        answers go to the one first in sorted order.

    Returns
    -------
    ndarray, shape (n_items,)
        Per item, the fraction of splits in which the other half's most frequent
        answer was its answer.
    """
    g = list(gold)
    m = np.asarray(splits, dtype=bool)
    if m.ndim != 2 or m.shape[1] != len(g):
        raise ElicitError(f"splits of shape {m.shape} do not match {len(g)} items")
    if any(x is None for x in g):
        raise ElicitError("the answer prior needs every item's gold answer")
    codes, inverse = np.unique(np.asarray(g, dtype=object).astype(str), return_inverse=True)
    right = np.zeros(len(g))
    for mask in m:
        for train in (mask, ~mask):
            counts = np.bincount(inverse[train], minlength=len(codes))
            right[~train] += inverse[~train] == int(np.argmax(counts))  # argmax: the first of tied answers
    return right / m.shape[0]


def majority_vote(answers: Sequence[Sequence[str | None]], *, prefer: int = 0) -> list[str | None]:
    """Per-item most frequent answer over arms (missing answers do not vote).

    Parameters
    ----------
    answers : sequence of sequences, shape (n_arms, n_items)
        Canonical answers (see :func:`canonical`), ``None`` where nothing was extracted.
    prefer : int
        The arm whose answer wins a tie when it is among the tied answers;
        otherwise the tied answer given by the earliest arm wins.

    Returns
    -------
    list, length n_items
        ``None`` where no arm answered.
    """
    if not answers:
        raise ElicitError("a vote needs at least one arm")
    n = len(answers[0])
    if any(len(a) != n for a in answers):
        raise ElicitError("every arm must answer the same items")
    out: list[str | None] = []
    for j in range(n):
        col = [a[j] for a in answers]
        counts = Counter(x for x in col if x is not None)
        if not counts:
            out.append(None)
            continue
        top = max(counts.values())
        tied = {x for x, k in counts.items() if k == top}
        pref = col[prefer] if 0 <= prefer < len(col) else None
        out.append(pref if pref in tied else next(x for x in col if x in tied))
    return out


_PUNCT = str.maketrans("", "", string.punctuation)


def canonical(answer: str | None, *, ignore_case: bool = True, ignore_punctuation: bool = False,
              regexes_to_ignore: Sequence[str] = ()) -> str | None:
    """An answer as lm-eval's ``exact_match`` compares it (regexes removed, case and punctuation folded).

    Two answers with the same canonical form are the same answer for a vote;
    ``None`` stays ``None``.
    """
    if answer is None:
        return None
    s = str(answer)
    for pattern in regexes_to_ignore:
        s = re.sub(pattern, "", s)
    if ignore_case:
        s = s.lower()
    if ignore_punctuation:
        s = s.translate(_PUNCT)
    return s.strip()


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% bootstrap percentile interval."""

    value: float
    low: float
    high: float


def _interval(point: float, draws: np.ndarray, level: float = 0.95) -> Estimate:
    d = draws[np.isfinite(draws)]
    if d.size == 0:
        return Estimate(point, float("nan"), float("nan"))
    q = (1 - level) / 2
    return Estimate(float(point), float(np.quantile(d, q)), float(np.quantile(d, 1 - q)))


@dataclass
class CellStats:
    """Scores of every method of one model x task, paired over one bootstrap."""

    plain: Estimate
    methods: dict[str, Estimate]
    gains: dict[str, Estimate]  # method - plain
    elicited: Estimate
    elicited_gain: Estimate
    ratio: Estimate | None  # elicited / plain; None when plain is 0
    best_method: str
    comparisons: dict[tuple[str, str], Estimate]  # (a, b) -> a - b


def cell_stats(
    correct: Mapping[str, np.ndarray],
    methods: Mapping[str, Sequence[str]],
    *,
    plain: str = "plain",
    elicit_from: Sequence[str] | None = None,
    compare: Sequence[tuple[str, str]] = (),
    n_boot: int = 1000,
    n_splits: int = 50,
    n_splits_boot: int = 10,
    seed: int = 0,
) -> CellStats:
    """Honest scores of each method, the elicited maximum and paired differences, with intervals.

    Parameters
    ----------
    correct : mapping arm -> ndarray of shape (n_items,)
        Per-item scores of every arm on the same items.
    methods : mapping method -> arm names
        One arm: its accuracy. Several: the held-out best of them.
    plain : str
        The plain-prompt arm (the denominator of the ratio, the zero of every gain).
    elicit_from : sequence of str, optional
        Arms the elicited maximum chooses among (held out); default every arm.
        ``plain`` is always put first, so a tie never counts as a gain.
    compare : sequence of (a, b)
        Method pairs (or ``"elicited"``) whose paired difference a - b is estimated.
    n_boot, n_splits, n_splits_boot, seed
        Bootstrap resamples of items; random half splits for the point estimate
        and for each resample.

    Returns
    -------
    CellStats
    """
    if plain not in correct:
        raise ElicitError(f"no {plain!r} arm: the plain prompt is the baseline of every method")
    names = list(correct)
    n = len(np.asarray(correct[plain]))
    for a in names:
        if np.shape(correct[a]) != (n,):
            raise ElicitError(f"arm {a!r} has shape {np.shape(correct[a])}, expected ({n},)")
    for m, arms in methods.items():
        missing = [a for a in arms if a not in correct]
        if not arms or missing:
            raise ElicitError(f"method {m!r} names arms without results: {missing or 'none'}")
    ones = np.ones((1, n))
    boot = bootstrap_weights(n, n_boot, seed)
    split_pt = half_splits(n, n_splits, seed)
    split_bt = half_splits(n, n_splits_boot, seed + 1)

    def score(arms: Sequence[str]) -> tuple[float, np.ndarray]:
        c = np.stack([np.asarray(correct[a], dtype=float) for a in arms])
        return float(held_out_scores(c, ones, split_pt)[0]), held_out_scores(c, boot, split_bt)

    p_pt, p_bt = score([plain])
    est: dict[str, tuple[float, np.ndarray]] = {}
    for m, arms in methods.items():
        est[m] = score(list(arms))
    pool = [plain] + [a for a in (elicit_from if elicit_from is not None else names) if a != plain]
    est["elicited"] = score(pool)
    out_methods = {m: _interval(*v) for m, v in est.items() if m != "elicited"}
    gains = {m: _interval(v[0] - p_pt, v[1] - p_bt) for m, v in est.items() if m != "elicited"}
    e_pt, e_bt = est["elicited"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = None if p_pt == 0 else _interval(e_pt / p_pt, np.where(p_bt > 0, e_bt / p_bt, np.nan))
    comps = {}
    for a, b in compare:
        if a not in est or b not in est:
            raise ElicitError(f"cannot compare {a!r} with {b!r}: known {sorted(est)}")
        comps[(a, b)] = _interval(est[a][0] - est[b][0], est[a][1] - est[b][1])
    best = max(out_methods, key=lambda m: (out_methods[m].value, m == plain)) if out_methods else plain
    return CellStats(
        plain=_interval(p_pt, p_bt), methods=out_methods, gains=gains, elicited=_interval(e_pt, e_bt),
        elicited_gain=_interval(e_pt - p_pt, e_bt - p_bt), ratio=ratio, best_method=best, comparisons=comps,
    )
