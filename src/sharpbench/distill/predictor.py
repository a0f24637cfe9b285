"""Full-score prediction from subset answers, with the estimator chosen by cross-validation.

A model answered a subset of a benchmark's items; earlier ("training") models
answered the same subset and their full-benchmark scores are known. Which
estimator predicts best depends on the regime: with a few dozen training models
the IRT estimators of tinyBenchmarks (p-IRT, which needs the item parameters of
the *whole* benchmark) are hard to beat; with thousands of leaderboard models,
direct regression on the answer pattern wins, and a kernel regression wins by a
wide margin because many leaderboard models are fine-tunes and merges of each
other (their answer patterns are near neighbours). ``ScorePredictor`` measures
instead of assuming:

1. every candidate below gets out-of-fold (OOF) predictions on the training
   models (K-fold over models; item parameters refitted inside each fold);
2. the simplest candidate (``SIMPLICITY``) whose OOF mean absolute error is within
   one standard error of the lowest (the paired SE of the difference: Breiman's
   one-standard-error rule) is chosen; with a few dozen models the errors are
   noisy and the rule keeps the low-variance IRT estimators, with thousands it
   picks the best. The choice is then shrunk
   toward the best candidate of another family (kernel, linear, IRT):
   ``w * best + (1 - w) * other`` with ``w`` on a grid,
   kept only if it lowers the cross-fitted OOF error (each fold's ``w`` chosen on
   the other folds), so the figure shown for the final predictor is not the one
   its weight was tuned on;
3. the interval is the final predictor's OOF residual quantiles (split-conformal
   style), so its coverage is an empirical, checkable claim.

Candidates
----------
``mean-cubic``      cubic polynomial of the subset mean (baseline)
``ridge``           ridge regression on the item answers (baseline)
``ridge-irt``       ridge on the answers plus spline bases of the subset mean and the 2PL ability
``ability-spline``  2PL ability by MAP, then a spline regression to the full score (metabench's GAM idea)
``svr-rbf-<g>``     support-vector regression with an RBF kernel on the answers, ``gamma = g / n_items``
``weighted``, ``irt``, ``pirt``, ``gpirt``  tinyBenchmarks' estimators (only with full-benchmark item
                    parameters; gp-IRT's weight fitted on the training models)

Costs: see ``benchmarks/predict_scale.py`` (Part 4). The kernel candidates train on
a random sample of at most ``max_kernel_models`` models and ``_KERNEL_CELLS``
answer cells, the subset's 2PL on at most ``_IRT_MODELS`` models; everything else
is linear in the number of models.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.distill.errors import DistillError
from sharpbench.distill.irt_bridge import abilities, fit_item_params
from sharpbench.matrix import ResponseMatrix

__all__ = [
    "BASELINES",
    "MIN_MODELS_PREDICT",
    "LooRidge",
    "ScorePredictor",
    "default_candidates",
    "default_folds",
    "read_scores",
]

MIN_MODELS_PREDICT = 10
"""Fewest training models: K-fold choice needs at least two folds of five held-out models."""

BASELINES = ("mean-cubic", "ridge")
REGRESSION = ("mean-cubic", "ridge", "ridge-irt", "ability-spline", "svr-rbf-2", "svr-rbf-4", "svr-rbf-8")
IRT_FAMILY = ("weighted", "irt", "pirt", "gpirt")
SIMPLICITY = ("pirt", "irt", "weighted", "gpirt", "mean-cubic", "ability-spline", "ridge-irt", "ridge",
              "svr-rbf-2", "svr-rbf-4", "svr-rbf-8")
"""Order of preference among estimators whose CV errors are within one standard error of the best:
fewest parameters fitted on the training scores first (the IRT family fits none)."""
_ALPHAS = np.logspace(-3, 4, 15)


def _family(name: str) -> str:
    """Estimator family: the blend shrinks toward the best estimator of another family."""
    if name.startswith("svr-"):
        return "kernel"
    return "irt" if name in IRT_FAMILY or name == "ability-spline" else "linear"

_BLEND_GRID = np.linspace(0.0, 1.0, 21)
_KERNEL_CELLS = 2_000_000
"""The kernel candidates train on at most this many answer cells (models x items), at most ``max_kernel_models``."""
_IRT_MODELS = 5000
"""The 2PL of the subset items is fitted on at most this many training models (a random sample)."""


def default_candidates(has_full_params: bool) -> tuple[str, ...]:
    """Candidates tried by default: the regression family, plus the IRT family when full item parameters exist."""
    return REGRESSION + (IRT_FAMILY if has_full_params else ())


def read_scores(scores: pd.Series | np.ndarray, unit: str = "auto") -> tuple[np.ndarray, str]:
    """Full scores as fractions, and the unit they were read in (``fraction`` or ``percent``).

    ``unit="auto"`` reads scores in [0, 1] as fractions and scores in [0, 100]
    with any value above 1 as percent; anything else is an error.
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.size == 0:
        raise DistillError("full scores must be a non-empty 1-D list of numbers")
    if np.isnan(s).any():
        raise DistillError(f"{int(np.isnan(s).sum())} full score(s) are missing or not numbers")
    if unit not in ("auto", "fraction", "percent"):
        raise DistillError(f"unknown score unit {unit!r}; use auto, fraction or percent")
    lo, hi = float(s.min()), float(s.max())
    if unit == "auto":
        if lo >= 0 and hi <= 1:
            unit = "fraction"
        elif lo >= 0 and hi <= 100:
            unit = "percent"
        else:
            raise DistillError(f"full scores range from {lo:g} to {hi:g}: expected fractions in [0, 1] or percent in [0, 100]")
    top = 1.0 if unit == "fraction" else 100.0
    if lo < 0 or hi > top:
        raise DistillError(f"full scores range from {lo:g} to {hi:g}, outside [0, {top:g}] for {unit}")
    return s / top, unit


# --------------------------------------------------------------------- features
@dataclass
class _Context:
    """What candidates may use for one set of models: answers, and IRT quantities fitted on training models."""

    answers: np.ndarray  # (n, k) with NaN
    col_means: np.ndarray  # (k,) training column means (imputation)
    a: np.ndarray  # (k,) 2PL slopes of the subset items
    d: np.ndarray  # (k,)
    full_params: pd.DataFrame | None = None  # a, d of every benchmark item (IRT family)
    subset_pos: np.ndarray | None = None  # positions of the subset items in full_params
    weights: np.ndarray | None = None  # estimator weights of the subset items (weighted)
    _theta: np.ndarray | None = field(default=None, repr=False)

    @property
    def imputed(self) -> np.ndarray:
        return np.where(np.isnan(self.answers), self.col_means[None, :], self.answers)

    @property
    def mean(self) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(self.answers, axis=1)

    @property
    def theta(self) -> np.ndarray:
        if self._theta is None:
            self._theta, _ = abilities(self.answers, self.a, self.d)
        return self._theta

    def with_answers(self, answers: np.ndarray) -> _Context:
        return _Context(answers, self.col_means, self.a, self.d, self.full_params, self.subset_pos, self.weights)


def _col_means(answers: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmean(answers, axis=0)
    overall = float(np.nanmean(answers)) if np.isfinite(answers).any() else 0.5
    return np.where(np.isnan(m), overall, m)


def _subset_params(answers: np.ndarray, full_params: pd.DataFrame | None, subset_pos: np.ndarray | None):
    """2PL (a, d) of the subset items: from the full-benchmark fit when given, else fitted on ``answers``."""
    if full_params is not None and subset_pos is not None:
        return full_params["a"].to_numpy(float)[subset_pos], full_params["d"].to_numpy(float)[subset_pos]
    if answers.shape[0] > _IRT_MODELS:
        answers = answers[np.random.default_rng(0).choice(answers.shape[0], _IRT_MODELS, replace=False)]
    p = fit_item_params(_as_matrix(answers))
    return p["a"].to_numpy(float), p["d"].to_numpy(float)


def _spline(x: np.ndarray, fitted=None):
    from sklearn.preprocessing import SplineTransformer

    x = np.asarray(x, float)[:, None]
    if fitted is None:
        fitted = SplineTransformer(n_knots=6, degree=3, extrapolation="linear").fit(x)
    return fitted.transform(x), fitted


# --------------------------------------------------------------------- candidates
class _Candidate:
    """fit(ctx, y) on training models, predict(ctx) for others; scores are fractions."""

    name = ""

    def fit(self, ctx: _Context, y: np.ndarray) -> _Candidate:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, ctx: _Context) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class _MeanCubic(_Candidate):
    name = "mean-cubic"

    def fit(self, ctx, y):
        self.coef = np.polyfit(ctx.mean, y, 3)
        return self

    def predict(self, ctx):
        return np.polyval(self.coef, ctx.mean)


class LooRidge:
    """Ridge regression with the penalty chosen by its exact leave-one-out error (closed form).

    The criterion of scikit-learn's ``RidgeCV`` default, computed from one eigendecomposition
    of the smaller Gram matrix (``O(n p min(n, p))``), so 50,000 models x 1,000 items fit in
    seconds. ``fit(x, y)``: x (n, p), y (n,); ``predict(x)``; ``alpha_``, ``coef_``, ``intercept_``.
    """

    def __init__(self, alphas: np.ndarray = _ALPHAS) -> None:
        self.alphas = np.asarray(alphas, dtype=float)

    def fit(self, x: np.ndarray, y: np.ndarray) -> LooRidge:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        n, p = x.shape
        mx, my = x.mean(axis=0), float(y.mean())
        xc, yc = x - mx, y - my
        if n >= p:
            lam, v = np.linalg.eigh(xc.T @ xc)
            q = xc @ v  # (n, p): hat matrix = q diag(1 / (lam + alpha)) q^T
        else:
            lam, u = np.linalg.eigh(xc @ xc.T)
            q = u * np.sqrt(np.maximum(lam, 0.0))
        lam = np.maximum(lam, 0.0)
        qy, q2 = q.T @ yc, q**2
        best = (np.inf, float(self.alphas[0]))
        for alpha in self.alphas:
            w = 1.0 / (lam + alpha)
            h = 1.0 / n + q2 @ w
            loo = (yc - q @ (w * qy)) / np.maximum(1.0 - h, 1e-12)
            best = min(best, (float(np.mean(loo**2)), float(alpha)))
        self.alpha_ = best[1]
        w = 1.0 / (lam + self.alpha_)
        if n >= p:
            self.coef_ = v @ (w * qy)
        else:
            self.coef_ = xc.T @ (u @ (w * (u.T @ yc)))
        self.intercept_ = my - float(mx @ self.coef_)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float) @ self.coef_ + self.intercept_


class _Ridge(_Candidate):
    name = "ridge"

    def _x(self, ctx):
        return ctx.imputed

    def fit(self, ctx, y):
        self.model = LooRidge().fit(self._x(ctx), y)
        return self

    def predict(self, ctx):
        return self.model.predict(self._x(ctx))


class _RidgeIrt(_Ridge):
    name = "ridge-irt"

    def fit(self, ctx, y):
        _, self.sm = _spline(ctx.mean)
        _, self.st = _spline(ctx.theta)
        return super().fit(ctx, y)

    def _x(self, ctx):
        return np.hstack([ctx.imputed, _spline(ctx.mean, self.sm)[0], _spline(ctx.theta, self.st)[0]])


class _AbilitySpline(_Candidate):
    name = "ability-spline"

    def fit(self, ctx, y):
        x, self.st = _spline(ctx.theta)
        self.model = LooRidge().fit(x, y)
        return self

    def predict(self, ctx):
        return self.model.predict(_spline(ctx.theta, self.st)[0])


class _Svr(_Candidate):
    def __init__(self, g: float, max_models: int, seed: int) -> None:
        self.g, self.max_models, self.seed = g, max_models, seed
        self.name = f"svr-rbf-{g:g}"

    def fit(self, ctx, y):
        from sklearn.svm import SVR

        x = ctx.imputed
        # libsvm's training cost grows with models^2 x items: cap the cells it sees
        cap = int(min(self.max_models, max(1000, _KERNEL_CELLS // x.shape[1])))
        if x.shape[0] > cap:
            keep = np.random.default_rng(self.seed).choice(x.shape[0], cap, replace=False)
            x, y = x[keep], y[keep]
        self.mu, self.sd = float(y.mean()), float(y.std()) or 1.0
        # targets in standard units: C and epsilon then mean the same on every benchmark
        self.gamma = self.g / x.shape[1]
        # the RBF kernel from matrix products (BLAS), handed to libsvm precomputed: equal to its own
        # kernel to rounding, several times faster
        model = SVR(kernel="precomputed", C=3.0, epsilon=0.01).fit(self._kernel(x, x), (y - self.mu) / self.sd)
        self.sv = x[model.support_]
        self.coef = model.dual_coef_.ravel()
        self.b = float(model.intercept_[0])
        return self

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # float32 products: answers are 0/1 (or item means), the squared distances need no more digits
        a32, b32 = a.astype(np.float32), b.astype(np.float32)
        d2 = (a32**2).sum(axis=1)[:, None] + (b32**2).sum(axis=1)[None, :] - 2.0 * a32 @ b32.T
        return np.exp(-self.gamma * np.maximum(d2, 0.0)).astype(float)

    def predict(self, ctx, chunk: int = 4096):
        x = ctx.imputed
        out = np.empty(x.shape[0])
        for s in range(0, x.shape[0], chunk):
            out[s : s + chunk] = self._kernel(x[s : s + chunk], self.sv) @ self.coef + self.b
        return out * self.sd + self.mu


class _IrtFamily(_Candidate):
    """tinyBenchmarks' weighted / IRT / p-IRT estimators (nothing fitted on scores), and gp-IRT.

    gp-IRT's mixing weight of weighted and p-IRT is fitted on the training models
    (:func:`~sharpbench.distill.estimators.fit_lambda`): neither part is fitted on
    scores, so their errors on the training models are out-of-sample errors.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.lam = None

    def _estimate(self, ctx, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        from sharpbench.distill.estimators import estimate_scores
        from sharpbench.distill.tiny import TinySubset

        params, pos = ctx.full_params, ctx.subset_pos
        ids = [str(i) for i in range(len(params))]
        w = ctx.weights if ctx.weights is not None else np.full(pos.size, 1.0 / pos.size)
        sub = TinySubset("given", [ids[p] for p in pos], w, ids, params.set_axis(ids, axis=0))
        est = estimate_scores(sub, ctx.answers, names)
        return {n: est.loc[est["estimator"] == n, "score"].to_numpy() for n in names}

    def fit(self, ctx, y):
        if self.name == "gpirt":
            from sharpbench.distill.estimators import fit_lambda

            e = self._estimate(ctx, ("weighted", "pirt"))
            self.lam = fit_lambda(e["weighted"] - y, e["pirt"] - y)
        return self

    def predict(self, ctx):
        if self.name == "gpirt":
            e = self._estimate(ctx, ("weighted", "pirt"))
            return self.lam * e["weighted"] + (1 - self.lam) * e["pirt"]
        return self._estimate(ctx, (self.name,))[self.name]


def _make(name: str, max_kernel_models: int, seed: int) -> _Candidate:
    if name.startswith("svr-rbf-"):
        return _Svr(float(name.removeprefix("svr-rbf-")), max_kernel_models, seed)
    table = {"mean-cubic": _MeanCubic, "ridge": _Ridge, "ridge-irt": _RidgeIrt, "ability-spline": _AbilitySpline}
    if name in table:
        return table[name]()
    if name in IRT_FAMILY:
        return _IrtFamily(name)
    raise DistillError(f"unknown estimator {name!r}; choose from {', '.join(REGRESSION + IRT_FAMILY)}")


# --------------------------------------------------------------------- the predictor
def _mae(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(p - y)))


def _rmse(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((p - y) ** 2)))


def _best_blend(p1: np.ndarray, p2: np.ndarray, y: np.ndarray) -> float:
    errs = [_mae(w * p1 + (1 - w) * p2, y) for w in _BLEND_GRID]
    return float(_BLEND_GRID[int(np.argmin(errs))])


def _cross_fitted_blend(p1: np.ndarray, p2: np.ndarray, y: np.ndarray, held: np.ndarray, fold_params) -> np.ndarray:
    """Blended out-of-fold predictions, each fold's weight chosen on the other folds (an honest CV error)."""
    out = p1.copy()
    for te, _ in fold_params:
        rest = np.setdiff1d(held, te)
        w = _best_blend(p1[rest], p2[rest], y[rest])
        out[te] = w * p1[te] + (1 - w) * p2[te]
    return out


@dataclass
class ScorePredictor:
    """Predict full-benchmark scores from subset answers; the estimator is chosen by K-fold CV.

    Parameters
    ----------
    candidates : estimator names (default: :func:`default_candidates`)
    folds : K for the K-fold over training models; ``None`` = :func:`default_folds`
    confidence : nominal coverage of the prediction intervals
    blend : shrink the chosen estimator toward the best one of another family when that lowers the CV error
    max_kernel_models : the SVR candidates train on at most this many models (random sample)
    max_cv_models : the estimator choice cross-validates on at most this many models (random sample;
        without the whole-benchmark matrix); the chosen estimators are then fitted on all of them
    seed : fold split and subsampling seed

    Attributes (after ``fit``)
    --------------------------
    cv_table_ : DataFrame ``estimator, mae, rmse, role`` in score fractions (role: baseline / candidate / final)
    chosen_ : list of the one or two estimators used, ``weights_`` their blend weights
    residual_quantiles_ : (low, high) OOF residual quantiles used for intervals
    """

    candidates: Sequence[str] | None = None
    folds: int | None = None
    confidence: float = 0.95
    blend: bool = True
    max_kernel_models: int = 6000
    max_cv_models: int = 10000
    seed: int = 0

    def fit(
        self,
        answers: np.ndarray,
        scores: np.ndarray,
        *,
        full_params: pd.DataFrame | None = None,
        subset_pos: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        full_matrix: np.ndarray | None = None,
        fold_params: list[tuple[np.ndarray, pd.DataFrame]] | None = None,
        reselect: Callable[[np.ndarray, pd.DataFrame | None], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> ScorePredictor:
        """Fit on training models.

        Parameters
        ----------
        answers : (n_models, k) subset answers of the training models, NaN = missing
        scores : (n_models,) their full scores as fractions (see :func:`read_scores`)
        full_params : 2PL ``a, d`` of every benchmark item, fitted on the training models (IRT family)
        subset_pos : (k,) positions of the subset items in ``full_params``
        weights : (k,) estimator weights of the subset items (``weighted``; default equal)
        full_matrix : (n_models, n_all) training answers on the whole benchmark: item parameters are
            refitted without each fold's held-out models (honest CV for the IRT family)
        fold_params : precomputed ``[(held-out rows, params)]`` fits to use as the folds instead
        reselect : ``reselect(train_rows, fold_params) -> (positions in full_matrix, weights)`` repeats the
            subset selection on each fold's training models. When the subset was selected on these same
            models, plain CV is optimistic for the estimators that read the answers directly (the items
            were chosen to represent the held-out models too): on MMLU-Pro's 29 models an anchor subset
            made the subset-mean cubic look 2x better than p-IRT in CV and lose to it on new models.
            Needs ``full_matrix``.
        """
        x = np.asarray(answers, dtype=float)
        y = np.asarray(scores, dtype=float)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise DistillError(f"answers must be (n_models, n_items) and scores (n_models,), got {x.shape} and {y.shape}")
        if x.shape[0] < MIN_MODELS_PREDICT:
            raise DistillError(
                f"score prediction needs at least {MIN_MODELS_PREDICT} training models with full scores "
                f"(cross-validated estimator choice), got {x.shape[0]}"
            )
        if np.isnan(x).all(axis=0).any():
            j = int(np.flatnonzero(np.isnan(x).all(axis=0))[0])
            raise DistillError(f"subset item at position {j} has no training answer")
        if (y < 0).any() or (y > 1).any() or np.isnan(y).any():
            raise DistillError("training scores must be fractions in [0, 1] (see read_scores)")
        has_full = full_params is not None and subset_pos is not None
        names = list(self.candidates or default_candidates(has_full))
        if not has_full and any(n in IRT_FAMILY for n in names):
            raise DistillError("the weighted/irt/pirt/gpirt estimators need item parameters of the whole benchmark")
        if reselect is not None and full_matrix is None:
            raise DistillError("re-selecting the subset in each fold needs the training models' full answers")
        xc, yc = x, y
        if fold_params is None and full_matrix is None and x.shape[0] > self.max_cv_models:
            # the choice needs no 50,000 models: cross-validate on a random sample, fit the final on all
            keep = np.sort(np.random.default_rng(self.seed).choice(x.shape[0], self.max_cv_models, replace=False))
            xc, yc = x[keep], y[keep]
        if fold_params is None:
            from sklearn.model_selection import KFold

            k = self.folds or default_folds(xc.shape[0], reselect is not None)
            splits = [te for _, te in KFold(k, shuffle=True, random_state=self.seed).split(xc)]
            fold_params = [(te, None) for te in splits]  # type: ignore[misc]
        oof = self._out_of_fold(names, xc, yc, fold_params, full_params=full_params, subset_pos=subset_pos,
                                weights=weights, full_matrix=full_matrix, reselect=reselect)
        held = np.concatenate([te for te, _ in fold_params])
        table = pd.DataFrame([{"estimator": n, "mae": _mae(oof[n][held], yc[held]), "rmse": _rmse(oof[n][held], yc[held]),
                               "role": "baseline" if n in BASELINES else "candidate"} for n in names])
        table = table.sort_values("mae", kind="stable").reset_index(drop=True)
        best = _one_se_choice({n: oof[n][held] for n in names}, yc[held])
        table["role"] = np.where(table["estimator"] == best, "chosen", table["role"])
        self.chosen_, self.weights_ = [best], [1.0]
        final_oof = oof[best]
        others = [n for n in table["estimator"] if _family(n) != _family(best)]
        if self.blend and others:
            second = str(others[0])
            w = _best_blend(oof[best][held], oof[second][held], yc[held])
            blended = _cross_fitted_blend(oof[best], oof[second], yc, held, fold_params)
            if w < 1.0 and _mae(blended[held], yc[held]) < _mae(final_oof[held], yc[held]):
                self.chosen_, self.weights_ = ([best, second], [w, 1.0 - w]) if w > 0 else ([second], [1.0])
                final_oof = blended
        label = self.label
        table = pd.concat([table, pd.DataFrame([{
            "estimator": label, "mae": _mae(final_oof[held], yc[held]), "rmse": _rmse(final_oof[held], yc[held]),
            "role": "final"}])], ignore_index=True)
        self.cv_table_ = table
        self.residuals_ = yc[held] - final_oof[held]
        self.residual_quantiles_ = _conformal(self.residuals_, self.confidence)
        # the final estimators are refitted on every training model
        self._ctx = self._context(x, full_params, subset_pos, weights, refit_subset=not has_full)
        self._fitted = [_make(n, self.max_kernel_models, self.seed).fit(self._ctx, y) for n in self.chosen_]
        self.n_train_, self.n_items_ = x.shape
        return self

    def _out_of_fold(self, names, x, y, fold_params, *, full_params, subset_pos, weights, full_matrix,
                     reselect) -> dict[str, np.ndarray]:
        """Each candidate's predictions for each fold's held-out models, fitted on the fold's other models."""
        has_full = full_params is not None and subset_pos is not None
        oof = {n: np.full(y.size, np.nan) for n in names}
        for te, params in fold_params:
            tr = np.setdiff1d(np.arange(y.size), te)
            if params is None and full_matrix is not None and has_full:
                params = fit_item_params(_as_matrix(full_matrix[tr]))
            xf, pos_f, w_f = x, subset_pos, weights
            if reselect is not None:
                pos_f, w_f = reselect(tr, params)
                xf = np.asarray(full_matrix, dtype=float)[:, pos_f]
            ctx_tr = self._context(xf[tr], params if params is not None else full_params, pos_f, w_f,
                                   refit_subset=not has_full)
            ctx_te = ctx_tr.with_answers(xf[te])
            for n in names:
                oof[n][te] = _make(n, self.max_kernel_models, self.seed).fit(ctx_tr, y[tr]).predict(ctx_te)
        return oof

    @classmethod
    def from_artifact(
        cls,
        artifact: dict[str, Any],
        answers: np.ndarray,
        scores: np.ndarray,
        *,
        full_params: pd.DataFrame | None = None,
        subset_pos: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        confidence: float | None = None,
    ) -> ScorePredictor:
        """Rebuild a fitted predictor from ``to_artifact`` and the same training data (no new CV).

        The chosen estimators are refitted on ``answers``/``scores`` (deterministic); the
        blend weights, CV table and out-of-fold residuals come from the artifact, and the
        interval is recomputed from those residuals at ``confidence`` (default: the artifact's).
        """
        try:
            conf = float(artifact["confidence"]) if confidence is None else float(confidence)
            self = cls(candidates=list(artifact["chosen"]), confidence=conf)
            self.chosen_ = list(artifact["chosen"])
            self.weights_ = [float(w) for w in artifact["weights"]]
            self.residuals_ = np.asarray(artifact["residuals"], dtype=float)
            self.cv_table_ = pd.DataFrame(artifact["cv"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DistillError(f"malformed predictor record in the subset file ({exc})") from exc
        self.residual_quantiles_ = _conformal(self.residuals_, conf)
        x = np.asarray(answers, dtype=float)
        has_full = full_params is not None and subset_pos is not None
        self._ctx = self._context(x, full_params, subset_pos, weights, refit_subset=not has_full)
        y = np.asarray(scores, dtype=float)
        self._fitted = [_make(n, self.max_kernel_models, self.seed).fit(self._ctx, y) for n in self.chosen_]
        self.n_train_, self.n_items_ = x.shape
        return self

    @staticmethod
    def _context(x, params, subset_pos, weights, *, refit_subset: bool) -> _Context:
        a, d = _subset_params(x, None if refit_subset else params, subset_pos)
        return _Context(x, _col_means(x), a, d, params, subset_pos, weights)

    @property
    def label(self) -> str:
        """Name of the final predictor, e.g. ``svr-rbf-4`` or ``0.70*svr-rbf-4 + 0.30*ridge-irt``."""
        if len(self.chosen_) == 1:
            return self.chosen_[0]
        return " + ".join(f"{w:.2f}*{n}" for n, w in zip(self.chosen_, self.weights_))

    def predict(self, answers: np.ndarray) -> pd.DataFrame:
        """Predicted full scores (fractions) with intervals: DataFrame ``score, ci_low, ci_high``.

        ``answers`` is (n_new, k) in the training subset's item order; NaN = not answered.
        """
        if not hasattr(self, "_fitted"):
            raise DistillError("the predictor is not fitted")
        x = np.asarray(answers, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_items_:
            raise DistillError(f"answers must be (n_models, {self.n_items_}), got {x.shape}")
        empty = np.isnan(x).all(axis=1)
        if empty.any():
            raise DistillError(f"row {int(np.flatnonzero(empty)[0])} answered none of the subset items")
        ctx = self._ctx.with_answers(x)
        pred = sum(w * m.predict(ctx) for w, m in zip(self.weights_, self._fitted))
        lo, hi = self.residual_quantiles_
        return pd.DataFrame({"score": np.clip(pred, 0, 1), "ci_low": np.clip(pred + lo, 0, 1),
                             "ci_high": np.clip(pred + hi, 0, 1)})

    def to_artifact(self) -> dict[str, Any]:
        """What the fit chose and why (JSON-ready)."""
        return {
            "estimator": self.label,
            "chosen": self.chosen_,
            "weights": [round(w, 4) for w in self.weights_],
            "residual_quantiles": [round(float(q), 6) for q in self.residual_quantiles_],
            "residuals": np.round(self.residuals_, 6).tolist(),
            "confidence": self.confidence,
            "n_train": int(self.n_train_),
            "cv": self.cv_table_.round(6).to_dict(orient="records"),
        }


def default_folds(n_models: int, reselect: bool = False) -> int:
    """K of the K-fold choice: leave-one-out up to 30 models, 10 folds up to 500, then 5.

    Folds that repeat the subset selection (``reselect``) cost a selection each: at most 5.
    """
    k = n_models if n_models <= 30 else (10 if n_models <= 500 else 5)
    return min(k, 5) if reselect else k


def _one_se_choice(oof: dict[str, np.ndarray], y: np.ndarray) -> str:
    """The simplest estimator whose mean absolute error is within one paired SE of the lowest."""
    err = {n: np.abs(p - y) for n, p in oof.items()}
    best = min(err, key=lambda n: float(err[n].mean()))
    order = [n for n in SIMPLICITY if n in err] + [n for n in err if n not in SIMPLICITY]
    for n in order:
        diff = err[n] - err[best]
        se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
        if diff.mean() <= se:
            return n
    return best


def _conformal(resid: np.ndarray, confidence: float) -> tuple[float, float]:
    """Residual quantiles with the split-conformal finite-sample correction (equal tails)."""
    n = resid.size
    alpha = 1.0 - confidence
    r = np.sort(resid)
    k_lo = max(int(math.floor((n + 1) * alpha / 2)) - 1, 0)
    k_hi = min(int(math.ceil((n + 1) * (1 - alpha / 2))) - 1, n - 1)
    return float(r[k_lo]), float(r[k_hi])


def _as_matrix(values: np.ndarray) -> ResponseMatrix:
    frame = pd.DataFrame(values, index=[f"m{i}" for i in range(values.shape[0])],
                         columns=[f"i{j}" for j in range(values.shape[1])])
    return ResponseMatrix.from_frame(frame)
