"""The ``probe`` method: a linear read-out of the model's hidden state at the answer position, scored held out.

Each answer option of an item is one row whose features are the model's hidden
state right after reading that option (:func:`sharpbench.models.hf.hidden.answer_states`);
its label is 1 for the gold option and 0 otherwise.  A logistic regression on
standardized features (scikit-learn ``make_pipeline(StandardScaler(),
LogisticRegression(C))``) scores every row, and an item's predicted answer is
the option with the largest decision value.  Items may have different numbers
of options.

Honest numbers: the layer (and ``C``, when a grid is given) is chosen by
cross-validation over the *training* items only (folds grouped by item,
item-level accuracy), the probe is refit on all training items at that
choice, and only then are the held-out items predicted.  :func:`probe_held_out` repeats this over random half splits, each
used both ways, so every item gets one held-out prediction per split.

This module imports only numpy and scikit-learn at load time; the model side
(torch) is imported by :func:`run_probe` when it is called.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sharpbench.elicit.errors import ElicitError

MAX_ITER = 1000
C_GRID = (0.001, 0.01, 0.1, 1.0)
"""A grid for ``C=``: with ~100 training items and hundreds of hidden dimensions strong regularization
helps (SmolLM2-135M, 200 arc_easy items, 5 splits: C=1 0.381, C=0.01 0.454, this grid by CV 0.445)."""

__all__ = [
    "C_GRID",
    "MAX_ITER",
    "ProbeResult",
    "fit_predict",
    "min_items",
    "probe_held_out",
    "probe_note",
    "run_probe",
]


@dataclass
class ProbeResult:
    """Held-out accuracy of the linear probe over repeated half splits.

    Attributes
    ----------
    correct : numpy.ndarray, shape (n_items,)
        Per item, the fraction of splits in which its held-out prediction was right.
    accuracy : float
        ``correct.mean()``.
    layers_chosen : dict
        Layer -> how many fits (two per split) chose it by cross-validation;
        keys are the labels given as ``layers`` (e.g. ``hidden_states`` indices)
        or positions along the layer axis.
    n_splits : int
    pred : numpy.ndarray, shape (n_splits, n_items)
        Each split's held-out predicted option per item.
    not_converged : int
        Logistic-regression fits that stopped at ``max_iter`` (their probe is
        still used; many of them on separable data are harmless).
    C_chosen : dict
        Regularization value -> how many fits chose it (one key when ``C`` is a number).
    """

    correct: np.ndarray
    accuracy: float
    layers_chosen: dict[Any, int]
    n_splits: int
    pred: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    not_converged: int = 0
    C_chosen: dict[float, int] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return int(self.correct.shape[0])

    @property
    def best_layer(self) -> Any:
        """The layer chosen most often (ties: the first in layer order)."""
        return max(self.layers_chosen.items(), key=lambda kv: kv[1])[0] if self.layers_chosen else None


def min_items(cv: int = 3) -> int:
    """Fewest items :func:`probe_held_out` takes: each half needs ``2 * cv`` items (two per CV fold)."""
    return 4 * int(cv)


class _Rows:
    """Items flattened to option rows: features per layer, labels, and each item's row range."""

    def __init__(self, states: Any, gold: Any) -> None:
        items = list(states) if not isinstance(states, np.ndarray) else [states[i] for i in range(states.shape[0])]
        gold = np.asarray(gold)
        if gold.ndim != 1 or len(gold) != len(items):
            raise ElicitError(f"gold must have one entry per item: {len(items)} items, gold of shape {gold.shape}")
        if len(items) == 0:
            raise ElicitError("no items: the probe needs hidden states of at least one item")
        if not np.issubdtype(gold.dtype, np.integer):
            raise ElicitError(f"gold must hold option indices (integers), got dtype {gold.dtype}")
        arrays = [np.asarray(a) for a in items]
        for i, a in enumerate(arrays):
            if a.ndim != 3:
                raise ElicitError(
                    f"item {i}: states must have shape (n_options, n_layers, hidden_size), got {a.shape}"
                )
        first = arrays[0].shape[1:]
        for i, a in enumerate(arrays):
            if a.shape[1:] != first:
                raise ElicitError(
                    f"item {i}: states of shape {a.shape} do not match item 0's (n_layers, hidden_size) = {first}"
                )
            if a.shape[0] < 2:
                raise ElicitError(f"item {i}: {a.shape[0]} option(s); the probe needs at least 2 per item")
            if not 0 <= gold[i] < a.shape[0]:
                raise ElicitError(f"item {i}: gold {gold[i]} out of range for {a.shape[0]} options")
        self.n_items = len(arrays)
        self.n_layers, self.hidden = int(first[0]), int(first[1])
        if self.n_layers < 1 or self.hidden < 1:
            raise ElicitError(f"states have an empty axis: (n_layers, hidden_size) = {first}")
        counts = np.array([a.shape[0] for a in arrays])
        self.start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.count = counts
        self.x = np.concatenate(arrays, axis=0).astype(np.float64, copy=False)  # (rows, layers, hidden)
        if not np.isfinite(self.x).all():
            raise ElicitError("states hold NaN or inf values")
        self.gold = gold.astype(np.int64)
        self.y = np.zeros(len(self.x), dtype=np.int64)
        self.y[self.start + self.gold] = 1

    def rows(self, items: np.ndarray) -> np.ndarray:
        """Row indices of ``items`` (in item order, options in order)."""
        if len(items) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(self.start[i], self.start[i] + self.count[i]) for i in items])

    def predict(self, scores: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per item, the option with the largest score (``scores`` over :meth:`rows` of ``items``)."""
        out = np.empty(len(items), dtype=np.int64)
        off = 0
        for k, i in enumerate(items):
            n = int(self.count[i])
            out[k] = int(np.argmax(scores[off:off + n]))
            off += n
        return out


def _fit(rows: _Rows, items: np.ndarray, layer: int, C: float, seed: int, stats: Counter):
    """Pipeline fitted on the option rows of ``items`` at ``layer``."""
    r = rows.rows(items)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(rows.x[r, layer], rows.y[r])
    stats["not_converged"] += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return model


def _score(model, rows: _Rows, items: np.ndarray, layer: int) -> np.ndarray:
    return model.decision_function(rows.x[rows.rows(items), layer])


def _as_index(name: str, idx: Any, n: int) -> np.ndarray:
    a = np.asarray(idx)
    if a.dtype == bool:
        if a.shape != (n,):
            raise ElicitError(f"{name}: a boolean mask must have one entry per item ({n}), got shape {a.shape}")
        a = np.flatnonzero(a)
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise ElicitError(f"{name} must be a 1-d array of item indices, got shape {a.shape} dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ElicitError(f"{name}: item indices must lie in [0, {n}), got {a.min()}..{a.max()}")
    if len(np.unique(a)) != len(a):
        raise ElicitError(f"{name}: an item index is repeated")
    return a


def _cv_choice(rows: _Rows, train: np.ndarray, candidates: list[tuple[int, float]], cv: int, seed: int,
               stats: Counter) -> tuple[int, float]:
    """The (layer, C) candidate with the best ``cv``-fold item-level accuracy over ``train`` (folds grouped by item).

    Ties on accuracy go to the larger mean log-probability of the gold option
    (softmax over an item's decision values), then to the earlier candidate.
    """
    rng = np.random.default_rng(seed)
    folds = np.array_split(rng.permutation(train), cv)
    acc = np.zeros(len(candidates))
    logp = np.zeros(len(candidates))
    for k, (layer, C) in enumerate(candidates):
        for f in range(cv):
            val = folds[f]
            fit_items = np.concatenate([folds[g] for g in range(cv) if g != f])
            model = _fit(rows, fit_items, layer, C, seed, stats)
            s = _score(model, rows, val, layer)
            acc[k] += np.sum(rows.predict(s, val) == rows.gold[val])
            off = 0
            for i in val:
                n = int(rows.count[i])
                z = s[off:off + n]
                z = z - z.max()
                logp[k] += z[rows.gold[i]] - np.log(np.exp(z).sum())
                off += n
    best = max(range(len(candidates)), key=lambda k: (acc[k], logp[k], -k))
    return candidates[best]


def _fit_predict(rows: _Rows, train: np.ndarray, test: np.ndarray, candidates: list[tuple[int, float]], cv: int,
                 seed: int, stats: Counter) -> tuple[int, float, np.ndarray]:
    if len(candidates) == 1:
        layer, C = candidates[0]
    else:
        layer, C = _cv_choice(rows, train, candidates, cv, seed, stats)
    model = _fit(rows, train, layer, C, seed, stats)
    return layer, C, rows.predict(_score(model, rows, test, layer), test)


def _check_settings(cv: int, C: float | Sequence[float]) -> list[float]:
    """Check ``cv`` and return the candidate values of ``C``."""
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ElicitError(f"cv must be an integer >= 2, got {cv!r}")
    values = [C] if np.isscalar(C) else list(C)
    if not values:
        raise ElicitError("C is empty: give a positive number or a list of them")
    out = []
    for c in values:
        try:
            c = float(c)
        except (TypeError, ValueError):
            raise ElicitError(f"C must be a positive number or a list of them, got {C!r}") from None
        if not np.isfinite(c) or c <= 0:
            raise ElicitError(f"C must be a positive number or a list of them, got {C!r}")
        if c in out:
            raise ElicitError(f"C: {c} is given twice")
        out.append(c)
    return out


def _candidates(layers_idx: Sequence[int] | None, n_layers: int) -> list[int]:
    if layers_idx is None:
        return list(range(n_layers))
    out = []
    for layer in layers_idx:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n_layers <= layer < n_layers:
            raise ElicitError(f"layers_idx: {layer!r} is not a position along the layer axis of length {n_layers}")
        if int(layer) % n_layers in out:
            raise ElicitError(f"layers_idx: layer position {int(layer) % n_layers} is given twice")
        out.append(int(layer) % n_layers)
    if not out:
        raise ElicitError("layers_idx is empty: give at least one layer position (or None for all)")
    return out


def fit_predict(
    states: Sequence[np.ndarray] | np.ndarray,
    gold: Sequence[int] | np.ndarray,
    train: Sequence[int] | np.ndarray,
    test: Sequence[int] | np.ndarray,
    *,
    layers_idx: Sequence[int] | None = None,
    cv: int = 3,
    C: float | Sequence[float] = 1.0,
    seed: int = 0,
) -> tuple[int, np.ndarray]:
    """Choose a layer on the training items, fit the probe there, predict the test items.

    Parameters
    ----------
    states : sequence of numpy.ndarray
        Per item, shape ``(n_options, n_layers, hidden_size)`` (options may
        differ between items; layers and hidden size may not).  A 4-d array
        ``(n_items, n_options, n_layers, hidden_size)`` is taken as well.
    gold : sequence of int, shape (n_items,)
        The correct option of each item.
    train, test : sequence of int (or boolean masks)
        Disjoint item indices.  ``gold`` of the test items is never read.
    layers_idx : sequence of int, optional
        Candidate positions along the layer axis (default: all).  With one
        candidate (and one ``C``) there is no cross-validation.
    cv : int
        Folds of the layer choice (over training items, grouped by item,
        scored by item-level accuracy).
    C : float or sequence of float
        Inverse regularization strength of the logistic regression; several
        values are chosen from by the same cross-validation as the layer
        (jointly, over training items only).
    seed : int
        Seed of the fold assignment.

    Returns
    -------
    layer_position : int
        The chosen position along the layer axis.
    pred_test : numpy.ndarray of int, shape (len(test),)
        Predicted option of each test item, in ``test`` order.

    Raises
    ------
    ElicitError
        Bad shapes, overlapping or out-of-range indices, or fewer than
        ``2 * cv`` training items when a layer is to be chosen (``cv`` with
        one candidate).
    """
    Cs = _check_settings(cv, C)
    rows = _Rows(states, gold)
    train_i = _as_index("train", train, rows.n_items)
    test_i = _as_index("test", test, rows.n_items)
    if np.intersect1d(train_i, test_i).size:
        raise ElicitError("train and test items overlap: held-out items must not be trained on")
    candidates = [(layer, c) for layer in _candidates(layers_idx, rows.n_layers) for c in Cs]
    need = 2 * cv if len(candidates) > 1 else 2
    if len(train_i) < need:
        raise ElicitError(
            f"too few training items: {len(train_i)}; the probe needs at least {need} "
            f"({'2 per cross-validation fold, cv=' + str(cv) if len(candidates) > 1 else 'to fit'})"
        )
    layer, _, pred = _fit_predict(rows, train_i, test_i, candidates, cv, int(seed), Counter())
    return layer, pred


def probe_held_out(
    states: Sequence[np.ndarray] | np.ndarray,
    gold: Sequence[int] | np.ndarray,
    *,
    n_splits: int = 10,
    seed: int = 0,
    cv: int = 3,
    C: float | Sequence[float] = 1.0,
    layers: Sequence[Any] | None = None,
    layers_idx: Sequence[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ProbeResult:
    """Held-out probe accuracy over ``n_splits`` random half splits, each used both ways.

    In each split the items are shuffled and cut into two halves; the probe is
    fit on one half (layer chosen by cross-validation inside it, see
    :func:`fit_predict`) and predicts the other, then the roles swap.  Every
    item thus gets one held-out prediction per split.

    Parameters
    ----------
    states, gold
        As :func:`fit_predict`.
    n_splits : int
        Random half splits.
    seed : int
        Seed of the splits (and of the folds inside them).
    cv, C
        As :func:`fit_predict`.
    layers : sequence, optional
        Labels of the layer axis (e.g. the ``hidden_states`` indices given to
        ``answer_states``), used as keys of :attr:`ProbeResult.layers_chosen`;
        default: positions along the axis.
    layers_idx : sequence of int, optional
        Candidate positions (default: all).
    progress : callable, optional
        Called with 1 after each fit (``2 * n_splits`` in all).

    Returns
    -------
    ProbeResult

    Raises
    ------
    ElicitError
        Fewer than :func:`min_items` items (``4 * cv``: two per fold in each
        half), bad shapes or settings.
    """
    Cs = _check_settings(cv, C)
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ElicitError(f"n_splits must be an integer >= 1, got {n_splits!r}")
    rows = _Rows(states, gold)
    need = min_items(cv)
    if rows.n_items < need:
        raise ElicitError(
            f"too few items for the held-out probe: {rows.n_items}; it needs at least {need} "
            f"(each half split into cv={cv} folds of at least 2 items)"
        )
    if layers is not None and len(layers) != rows.n_layers:
        raise ElicitError(f"layers: {len(layers)} labels for a layer axis of length {rows.n_layers}")
    labels = list(layers) if layers is not None else list(range(rows.n_layers))
    candidates = [(layer, c) for layer in _candidates(layers_idx, rows.n_layers) for c in Cs]
    rng = np.random.default_rng(seed)
    pred = np.full((n_splits, rows.n_items), -1, dtype=np.int64)
    chosen: Counter = Counter()
    chosen_C: Counter = Counter()
    stats: Counter = Counter()
    for s in range(n_splits):
        perm = rng.permutation(rows.n_items)
        half = rows.n_items // 2
        a, b = np.sort(perm[:half]), np.sort(perm[half:])
        for k, (train, test) in enumerate(((a, b), (b, a))):
            layer, c, p = _fit_predict(rows, train, test, candidates, cv, int(seed) + 2 * s + k, stats)
            pred[s, test] = p
            chosen[labels[layer]] += 1
            chosen_C[c] += 1
            if progress is not None:
                progress(1)
    correct = (pred == rows.gold[None, :]).mean(axis=0)
    order = {lab: i for i, lab in enumerate(labels)}
    layers_chosen = {lab: chosen[lab] for lab in sorted(chosen, key=order.__getitem__)}
    return ProbeResult(correct=correct, accuracy=float(correct.mean()), layers_chosen=layers_chosen,
                       n_splits=int(n_splits), pred=pred, not_converged=int(stats["not_converged"]),
                       C_chosen={c: chosen_C[c] for c in Cs if chosen_C[c]})


def probe_note(backend: Any) -> str | None:
    """Why the probe cannot run on ``backend`` (a note for the table), or ``None`` when it can."""
    from sharpbench.models.hf.hidden import supports_hidden_states

    if supports_hidden_states(backend):
        return None
    name = getattr(backend, "name", type(backend).__name__)
    return f"skipped: the {name} backend exposes no hidden states (the probe needs a local transformers model)"


def run_probe(
    backend: Any,
    items: Sequence[Any],
    *,
    layers: Sequence[int] | None = None,
    n_splits: int = 10,
    seed: int = 0,
    cv: int = 3,
    C: float | Sequence[float] = 1.0,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> ProbeResult:
    """Hidden states of ``items`` from ``backend``, then :func:`probe_held_out` over the chosen layers.

    ``layers`` are ``hidden_states`` indices (default: about 8 evenly spaced
    ones, the last included); :attr:`ProbeResult.layers_chosen` is keyed by
    them.  The item count is checked before the model runs.  ``progress`` gets
    the items whose states are done, then 1 per probe fit.

    Raises
    ------
    ElicitError
        Too few items (see :func:`min_items`).
    sharpbench.models.errors.CapabilityError
        The backend exposes no hidden states (see :func:`probe_note`).
    """
    from sharpbench.models.hf.hidden import answer_states, num_layers, resolve_layers

    if len(items) < min_items(cv):
        raise ElicitError(
            f"too few items for the held-out probe: {len(items)}; it needs at least {min_items(cv)} "
            f"(each half split into cv={cv} folds of at least 2 items)"
        )
    layer_idx = resolve_layers(layers, num_layers(backend))
    states = answer_states(backend, items, layers=layer_idx, batch_size=batch_size, progress=progress)
    gold = np.array([it.gold for it in items], dtype=np.int64)
    return probe_held_out(states, gold, n_splits=n_splits, seed=seed, cv=cv, C=C, layers=layer_idx,
                          progress=progress)
