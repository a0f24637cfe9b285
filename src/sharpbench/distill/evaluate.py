"""Honest validation of tiny subsets: k-fold over models, against random subsets of the same size.

In every fold the held-out models are never used to fit IRT or to pick items:
the subset and the item parameters come from the training models only, then
the held-out models' full scores are predicted from their answers on the subset
and compared with their true full scores (mean over observed items).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sharpbench.distill.common import full_scores
from sharpbench.distill.errors import DistillError
from sharpbench.distill.estimators import ESTIMATORS, estimate_scores
from sharpbench.distill.irt_bridge import fit_item_params
from sharpbench.distill.predictor import MIN_MODELS_PREDICT, ScorePredictor, default_folds
from sharpbench.distill.tiny_fit import MIN_MODELS_IRT, build_tiny, inner_item_fits, reselector
from sharpbench.matrix import ResponseMatrix

__all__ = ["EVAL_ESTIMATORS", "EvalResult", "evaluate_tiny"]

IRT_ESTIMATORS = ("irt", "pirt", "gpirt", "auto")
EVAL_ESTIMATORS = (*ESTIMATORS, "auto")
"""``auto``: :class:`ScorePredictor`, the estimator chosen by cross-validation on each fold's training models."""


@dataclass
class EvalResult:
    """Per-prediction records and the summary table."""

    predictions: pd.DataFrame  # seed, rep, fold, model, method, estimator, score, truth
    n_items: int
    folds: str

    def table(self) -> pd.DataFrame:
        """MAE / RMSE (points) and Kendall tau per method x estimator, mean (sd) over seeds."""
        p = self.predictions.assign(err=lambda t: t["score"] - t["truth"])
        per_rep = p.groupby(["method", "estimator", "seed", "rep"]).apply(_metrics, include_groups=False)
        per_seed = per_rep.groupby(["method", "estimator", "seed"]).mean().reset_index()
        agg = per_seed.groupby(["method", "estimator"]).agg(
            mae=("mae", "mean"), mae_sd=("mae", "std"), rmse=("rmse", "mean"), tau=("tau", "mean"),
            seeds=("seed", "nunique"),
        )
        # one factor changed at a time: the selection against random items with the same estimator,
        # the estimator against the plain weighted mean on the same items
        methods = agg.index.get_level_values("method")
        ests = agg.index.get_level_values("estimator")
        agg["mae_vs_random"] = agg["mae"].to_numpy() / _lookup(agg["mae"], ["random"] * len(agg), ests)
        agg["mae_vs_weighted"] = agg["mae"].to_numpy() / _lookup(agg["mae"], methods, ["weighted"] * len(agg))
        return agg.sort_values("mae").reset_index()

    def to_markdown(self) -> str:
        t = self.table()
        lines = [
            "| method | estimator | MAE (pts) | RMSE (pts) | Kendall tau | MAE / random items (same estimator) "
            "| MAE / weighted (same items) | seeds |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in t.itertuples():
            sd = "" if not np.isfinite(r.mae_sd) else f" ± {r.mae_sd:.2f}"
            lines.append(
                f"| {r.method} | {r.estimator} | {r.mae:.2f}{sd} | {r.rmse:.2f} | {r.tau:.3f} | "
                f"{r.mae_vs_random:.2f} | {r.mae_vs_weighted:.2f} | {r.seeds} |"
            )
        return "\n".join(lines)

    def to_artifact(self) -> dict[str, Any]:
        return {
            "kind": "distill_tiny_eval",
            "n_items": self.n_items,
            "folds": self.folds,
            "table": self.table().to_dict(orient="records"),
            "markdown": self.to_markdown(),
        }


def _lookup(series: pd.Series, methods, estimators) -> np.ndarray:
    """``series[(method, estimator)]`` for each pair, NaN where absent."""
    return np.array([series.get((m, e), np.nan) for m, e in zip(methods, estimators)], dtype=float)


def _run_fold(f, tr, te, *, matrix, truth, methods, estimators, seeds, random_repeats, lambda_folds, embedding,
              text_embeddings, n_items, use_irt) -> list[pd.DataFrame]:
    train = matrix.select(models=tr)
    params = fit_item_params(train) if use_irt else None
    wants_folds = "gpirt" in estimators or "auto" in estimators
    fits = inner_item_fits(train, lambda_folds, 0) if use_irt and wants_folds and lambda_folds >= 2 else None
    # the estimator choice uses its own (finer) folds; item parameters refitted once per fold, shared by subsets
    auto_fits = inner_item_fits(train, default_folds(len(tr), True), 0) if use_irt and "auto" in estimators else None
    train_truth = truth[tr]
    pos = {it: i for i, it in enumerate(matrix.items)}
    rows = []
    for seed in seeds:
        for method in methods:
            reps = [seed] if method != "random" else [seed * 1000 + r for r in range(random_repeats)]
            base, _, emb = method.partition(":")  # "anchor:correctness" picks the embedding per method
            for rs in reps:
                sub = build_tiny(
                    train, n_items, base, seed=rs, irt=use_irt,
                    lambda_folds=lambda_folds if fits is not None else 0, embedding=emb or embedding,
                    text_embeddings=text_embeddings, item_params=params, inner_fits=fits,
                )
                cols = np.array([pos[i] for i in sub.items])
                ests = tuple(e for e in estimators if e not in ("auto", "gpirt") or (e == "gpirt" and sub.lam is not None))
                est = estimate_scores(sub, matrix.values[np.ix_(te, cols)], ests,
                                      models=[matrix.models[i] for i in te]) if ests else pd.DataFrame()
                est["truth"] = np.tile(truth[te], len(ests))
                if "auto" in estimators:
                    reselect = reselector(train, n_items, base, seed=rs, irt=use_irt, embedding=emb or embedding,
                                          text_embeddings=text_embeddings)
                    auto = _auto_rows(sub, train, train_truth, cols, te, matrix, truth, auto_fits, reselect)
                    est = pd.concat([est, auto], ignore_index=True)
                est["seed"], est["rep"], est["fold"], est["method"] = seed, rs, f, method
                rows.append(est)
    return rows


def _auto_rows(sub, train, train_truth, cols, te, matrix, truth, auto_fits, reselect) -> pd.DataFrame:
    """The cross-validated estimator choice (selection repeated in each inner fold), on training models only."""
    kw: dict = {"full_matrix": train.values, "reselect": reselect, "fold_params": auto_fits}
    if sub.item_params is not None:
        kw |= {"full_params": sub.item_params, "subset_pos": cols, "weights": sub.weights}
    pred = ScorePredictor().fit(train.values[:, cols], train_truth, **kw).predict(matrix.values[np.ix_(te, cols)])
    return pred.assign(model=[matrix.models[i] for i in te], estimator="auto", truth=truth[te])[
        ["model", "estimator", "score", "ci_low", "ci_high", "truth"]]


def _metrics(g: pd.DataFrame) -> pd.Series:
    tau = stats.kendalltau(g["score"], g["truth"]).statistic if len(g) > 1 else np.nan
    return pd.Series(
        {"mae": 100 * g["err"].abs().mean(), "rmse": 100 * np.sqrt((g["err"] ** 2).mean()), "tau": tau}
    )


def evaluate_tiny(
    matrix: ResponseMatrix,
    *,
    n_items: int = 100,
    methods: Sequence[str] = ("anchor", "irt-info", "stratified", "random"),
    estimators: Sequence[str] = EVAL_ESTIMATORS,
    folds: int | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    random_repeats: int = 10,
    lambda_folds: int = 3,
    embedding: str = "correctness",
    text_embeddings: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
    n_jobs: int = 1,
) -> EvalResult:
    """K-fold (``folds=None``: leave-one-model-out) validation of tiny subsets.

    ``random`` is always evaluated with ``random_repeats`` extra seeds per seed
    so that the random baseline is an average over many random subsets. Item
    parameters (and the inner fits for the gp-IRT lambda, whose inner split is
    fixed) are fitted once per fold and shared by all seeds and methods.
    ``n_jobs`` > 1 runs folds in parallel processes (joblib). A method may name
    its anchor embedding, e.g. ``anchor:correctness``.
    """
    from sklearn.model_selection import KFold, LeaveOneOut

    matrix.require_binary()
    use_irt = any(e in IRT_ESTIMATORS for e in estimators)
    min_models = (MIN_MODELS_IRT if use_irt else 2) + 1
    if "auto" in estimators:
        min_models = max(min_models, MIN_MODELS_PREDICT + 1)
    unknown = [e for e in estimators if e not in EVAL_ESTIMATORS]
    if unknown:
        raise DistillError(f"unknown estimator(s) {unknown}; choose from {', '.join(EVAL_ESTIMATORS)}")
    if matrix.n_models < min_models:
        raise DistillError(f"evaluation needs at least {min_models} models, the matrix has {matrix.n_models}")
    if not 1 <= n_items <= matrix.n_items:
        raise DistillError(f"--n-items must be between 1 and {matrix.n_items}")
    truth = full_scores(matrix)
    methods = list(dict.fromkeys(list(methods) + ["random"]))
    splitter = LeaveOneOut() if folds is None else KFold(folds, shuffle=True, random_state=0)
    splits = list(splitter.split(np.arange(matrix.n_models)))
    job = {"matrix": matrix, "truth": truth, "methods": methods, "estimators": tuple(estimators), "seeds": list(seeds),
               "random_repeats": random_repeats, "lambda_folds": lambda_folds, "embedding": embedding,
               "text_embeddings": text_embeddings, "n_items": n_items, "use_irt": use_irt}
    if n_jobs == 1:
        rows = []
        for f, (tr, te) in enumerate(splits):
            rows.extend(_run_fold(f, tr, te, **job))
            if progress is not None:
                progress(f"fold {f + 1}/{len(splits)}")
    else:
        from joblib import Parallel, delayed

        parts = Parallel(n_jobs=n_jobs, verbose=5 if progress is not None else 0)(
            delayed(_run_fold)(f, tr, te, **job) for f, (tr, te) in enumerate(splits)
        )
        rows = [r for part in parts for r in part]
    preds = pd.concat(rows, ignore_index=True)
    return EvalResult(preds, n_items, "leave-one-model-out" if folds is None else f"{folds}-fold")
