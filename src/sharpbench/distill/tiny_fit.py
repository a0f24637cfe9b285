"""End-to-end tiny-subset building: IRT fit, selection, and the gp-IRT lambda by inner cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sharpbench.distill.common import full_scores
from sharpbench.distill.errors import DistillError
from sharpbench.distill.estimators import estimate_scores, fit_lambda
from sharpbench.distill.irt_bridge import abilities, fit_item_params
from sharpbench.distill.predictor import MIN_MODELS_PREDICT, ScorePredictor
from sharpbench.distill.tiny import MIN_MODELS_TINY, TinySubset, encode_train, select_tiny
from sharpbench.matrix import ResponseMatrix

__all__ = ["MIN_MODELS_IRT", "attach_predictor", "build_tiny", "inner_item_fits", "reselector"]

MIN_MODELS_IRT = 5
"""Fewest training models for IRT estimators with a cross-validated gp-IRT lambda (>= 2 inner folds of 2+)."""


def build_tiny(
    matrix: ResponseMatrix,
    n_items: int = 100,
    method: str = "anchor",
    *,
    seed: int = 0,
    irt: bool = True,
    lambda_folds: int = 3,
    embedding: str = "correctness",
    balance: bool = True,
    text_embeddings: np.ndarray | None = None,
    item_params: pd.DataFrame | None = None,
    inner_fits: list[tuple[np.ndarray, pd.DataFrame]] | None = None,
    fit_predictor: bool = False,
    scores: np.ndarray | None = None,
) -> TinySubset:
    """Select a tiny subset and fit what its estimators need.

    Parameters
    ----------
    matrix : training matrix (binary; NaN skipped)
    irt : fit 2PL item parameters on ``matrix`` (needed by the irt/pirt/gpirt estimators)
    lambda_folds : inner folds over the training models for the gp-IRT lambda
        (0 = leave lambda unset; gp-IRT then refuses to run)
    item_params, inner_fits : precomputed fits to reuse (``inner_fits`` from ``inner_item_fits``)
    fit_predictor : choose the full-score estimator by cross-validation (:class:`ScorePredictor`) and
        keep the training models' subset answers in the subset, so that ``predict`` can refit it
        (needs ``MIN_MODELS_PREDICT`` models)
    scores : (n_models,) full scores when ``matrix`` is not the whole benchmark (metabench's setting:
        a subset of items with the leaderboard's full scores). The IRT estimators of the whole
        benchmark then do not apply; selection and the regression estimators use these scores.
    """
    if irt and matrix.n_models < MIN_MODELS_IRT:
        raise DistillError(
            f"IRT estimators need at least {MIN_MODELS_IRT} training models (the matrix has "
            f"{matrix.n_models}); use --no-irt for the weighted estimator alone "
            f"(method {method!r} needs {MIN_MODELS_TINY[method]})"
        )
    params = item_params if item_params is not None else (fit_item_params(matrix) if irt else None)
    fits = inner_fits
    theta = None
    if params is not None and method == "irt-info":
        theta, _ = abilities(matrix.values, params["a"].to_numpy(), params["d"].to_numpy())
    subset = select_tiny(
        matrix,
        n_items,
        method,
        seed=seed,
        balance=balance,
        embedding=embedding if irt else "correctness",
        item_params=params,
        abilities=theta,
        text_embeddings=text_embeddings,
        scores=scores,
    )
    if scores is not None:
        subset.item_params, subset.lam = None, None
        subset.info["scores"] = "given: the matrix is not the whole benchmark, IRT estimators do not apply"
    elif irt and method == "irt-info":
        # the equal-weight mean of the most informative items is not a representative sample of the
        # benchmark, so gp-IRT gives it no weight (gp-IRT = p-IRT) instead of trusting a noisy CV lambda
        subset.lam = 0.0
        subset.info["lambda_note"] = "irt-info items are not representative: gp-IRT uses p-IRT alone"
    elif irt and lambda_folds >= 2:
        fits = fits if fits is not None else inner_item_fits(matrix, lambda_folds, seed)
        subset.lam = _cv_lambda(matrix, subset, fits)
        subset.info["lambda_folds"] = lambda_folds
    if fit_predictor:
        reselect = reselector(matrix, n_items, method, seed=seed, irt=irt, embedding=embedding, balance=balance,
                              text_embeddings=text_embeddings, scores=scores)
        attach_predictor(matrix, subset, reselect=reselect, scores=scores)
    return subset


def reselector(matrix: ResponseMatrix, n_items: int, method: str, **settings):
    """``reselect(rows, params)`` for :meth:`ScorePredictor.fit`: the same selection on a subset of models.

    Returns the selected items' positions in ``matrix`` and their weights.
    """
    pos = {it: i for i, it in enumerate(matrix.items)}
    irt = settings.pop("irt", True)
    scores = settings.pop("scores", None)

    def reselect(rows: np.ndarray, params: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
        sub = build_tiny(matrix.select(models=rows), n_items, method, irt=irt, lambda_folds=0,
                         item_params=params, scores=None if scores is None else np.asarray(scores)[rows], **settings)
        return np.array([pos[i] for i in sub.items]), sub.weights

    return reselect


def attach_predictor(matrix: ResponseMatrix, subset: TinySubset, reselect=None, scores: np.ndarray | None = None,
                     **options) -> ScorePredictor:
    """Fit a :class:`ScorePredictor` on the training models' subset answers and store it in ``subset``.

    With item parameters in the subset the IRT estimators compete too, each fold's
    parameters refitted without its held-out models; ``reselect`` (see :func:`reselector`)
    repeats the subset selection in each fold.
    """
    truth = full_scores(matrix) if scores is None else np.asarray(scores, dtype=float)
    cols = _positions(matrix, subset)
    answers = matrix.values[:, cols]
    if matrix.n_models < MIN_MODELS_PREDICT:
        raise DistillError(
            f"choosing the estimator by cross-validation needs at least {MIN_MODELS_PREDICT} training models, "
            f"the matrix has {matrix.n_models}"
        )
    kw: dict = {"full_matrix": matrix.values, "reselect": reselect}
    if subset.item_params is not None:
        kw |= {"full_params": subset.item_params, "subset_pos": cols, "weights": subset.weights}
    pred = ScorePredictor(**options).fit(answers, truth, **kw)
    subset.predictor = pred.to_artifact()
    subset.train = encode_train(list(matrix.models), answers, truth)
    return pred


def _positions(matrix: ResponseMatrix, subset: TinySubset) -> np.ndarray:
    pos = {it: i for i, it in enumerate(matrix.items)}
    return np.array([pos[i] for i in subset.items])


def inner_item_fits(matrix: ResponseMatrix, folds: int, seed: int) -> list[tuple[np.ndarray, pd.DataFrame]]:
    """Item parameters refitted without each inner fold of models: ``[(held-out rows, params)]``."""
    from sklearn.model_selection import KFold

    k = max(2, min(folds, matrix.n_models // 2))
    out = []
    for tr, te in KFold(k, shuffle=True, random_state=seed).split(np.arange(matrix.n_models)):
        out.append((te, fit_item_params(matrix.select(models=tr))))
    return out


def _cv_lambda(matrix: ResponseMatrix, subset: TinySubset, fits: list[tuple[np.ndarray, pd.DataFrame]]) -> float:
    """Compare weighted vs p-IRT errors on inner held-out models (item parameters fitted without them)."""
    truth = full_scores(matrix)
    cols = _positions(matrix, subset)
    err_w, err_p = [], []
    for te, params in fits:
        inner = TinySubset(subset.method, subset.items, subset.weights, subset.all_items, params)
        est = estimate_scores(inner, matrix.values[np.ix_(te, cols)], ("weighted", "pirt"))
        w = est.loc[est["estimator"] == "weighted", "score"].to_numpy()
        p = est.loc[est["estimator"] == "pirt", "score"].to_numpy()
        err_w.append(w - truth[te])
        err_p.append(p - truth[te])
    return fit_lambda(np.concatenate(err_w), np.concatenate(err_p))
