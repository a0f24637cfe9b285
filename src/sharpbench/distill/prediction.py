"""``sharpbench predict``: full-score predictions from a tiny-subset file or from earlier models' answers.

Both paths end in :class:`~sharpbench.distill.predictor.ScorePredictor` (the estimator
chosen by cross-validation) unless a tinyBenchmarks estimator is named explicitly.
Input problems that lose nothing (missing subset items, extra columns, scores for
models without answers) are reported as notes; everything else is a ``DistillError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.distill.errors import DistillError
from sharpbench.distill.estimators import ESTIMATORS, estimate_scores
from sharpbench.distill.predictor import ScorePredictor, read_scores
from sharpbench.distill.tiny import TinySubset

__all__ = ["PredictionResult", "predict_from_subset", "predict_from_train"]


@dataclass
class PredictionResult:
    """Predictions ``model, estimator, score, ci_low, ci_high`` in ``unit``, the CV table and notes."""

    predictions: pd.DataFrame
    unit: str = "fraction"
    cv: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chosen: str | None = None  # what ``auto`` stands for, e.g. ``0.95*svr-rbf-4 + 0.05*ridge-irt``


def _align(items: list[str], new: pd.DataFrame, notes: list[str]) -> np.ndarray:
    """``new`` answers in ``items`` order (NaN where a new model lacks an item); notes what does not match."""
    present = [c for c in items if c in new.columns]
    if not present:
        raise DistillError(
            f"the new answers share no item with the training subset (subset items e.g. {items[:3]}, "
            f"answer columns e.g. {list(new.columns)[:3]}); use --items-as-rows if rows are items"
        )
    missing = len(items) - len(present)
    if missing:
        notes.append(f"{missing} of {len(items)} subset items are not in the new answers: counted as unanswered")
    known = set(items)
    extra = [c for c in new.columns if c not in known]
    if extra:
        notes.append(f"{len(extra)} answer column(s) are not subset items and are ignored (e.g. {extra[:3]})")
    values = new.reindex(columns=items).apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    part = np.isnan(values).any(axis=1) & ~np.isnan(values).all(axis=1)
    if part.any() and not missing:
        notes.append(f"{int(part.sum())} new model(s) left some subset items unanswered: predicted from the rest")
    return values


def _frame(models: list[str], label: str, table: pd.DataFrame, scale: float) -> pd.DataFrame:
    return pd.DataFrame({"model": models, "estimator": label, "score": table["score"].to_numpy() * scale,
                         "ci_low": table["ci_low"].to_numpy() * scale, "ci_high": table["ci_high"].to_numpy() * scale})


def _cv_records(pred: ScorePredictor, scale: float) -> list[dict[str, Any]]:
    cv = pred.cv_table_.copy()
    cv["mae"] = cv["mae"] * scale
    cv["rmse"] = cv["rmse"] * scale
    return [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in cv.to_dict("records")]


def predict_from_train(train: pd.DataFrame, scores: pd.Series, new: pd.DataFrame, confidence: float = 0.95,
                       unit: str = "auto") -> PredictionResult:
    """metabench's setting: earlier models' subset answers ``train`` and full ``scores`` -> new models' scores.

    Parameters
    ----------
    train : answers, index = models, columns = subset items (0/1, NaN = missing)
    scores : full scores indexed by model, fractions or percent (``unit``)
    new : new models' answers, columns matched to ``train``'s by item id
    """
    notes: list[str] = []
    unscored = [m for m in train.index if m not in scores.index]
    if unscored:
        raise DistillError(f"no full score for {len(unscored)} training model(s), e.g. {unscored[:3]}")
    extra = len(set(scores.index) - set(train.index))
    if extra:
        notes.append(f"{extra} scored model(s) have no training answers and are ignored")
    y, read = read_scores(scores.reindex(train.index), unit)
    notes.append(f"full scores read as {read}" + (" (detected from their range)" if unit == "auto" else ""))
    unit = read
    items = list(train.columns)
    x = train.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    pred = ScorePredictor(confidence=confidence).fit(x, y)
    table = pred.predict(_align(items, new, notes))
    scale = 100.0 if unit == "percent" else 1.0
    return PredictionResult(_frame(list(new.index), "auto", table, scale), unit, _cv_records(pred, scale), notes,
                            pred.label)


def predict_from_subset(path: str | Path, new: pd.DataFrame, estimator: str = "auto",
                        confidence: float = 0.95) -> PredictionResult:
    """Predictions from a ``distill tiny`` subset file: ``auto`` (its CV choice), a named estimator, or ``all``."""
    sub = TinySubset.load(path)
    notes: list[str] = []
    answers = _align(sub.items, new, notes)
    if np.isnan(answers).all(axis=1).any():
        bad = new.index[np.isnan(answers).all(axis=1)][0]
        raise DistillError(f"model {bad!r} answered none of the subset items")
    choices = ("auto", "all", *ESTIMATORS)
    if estimator not in choices:
        raise DistillError(f"unknown estimator {estimator!r}; choose from {', '.join(choices)}")
    frames, cv, chosen = [], [], None
    if estimator in ("auto", "all"):
        if sub.predictor is None or sub.train is None:
            if estimator == "auto":
                raise DistillError(
                    f"{path} holds no cross-validated estimator choice (written by an older sharpbench, or from "
                    "fewer than 10 models): recreate it with `sharpbench distill tiny`, or name an estimator "
                    "(--estimator pirt)"
                )
            notes.append("the subset file holds no cross-validated choice: 'auto' left out")
        else:
            pred = _from_subset(sub, confidence)
            frames.append(_frame(list(new.index), "auto", pred.predict(answers), 1.0))
            cv, chosen = _cv_records(pred, 1.0), pred.label
    named: tuple[str, ...] = ESTIMATORS if estimator == "all" else (() if estimator == "auto" else (estimator,))
    if sub.item_params is None and any(e != "weighted" for e in named):
        if estimator != "all":
            raise DistillError("this subset has no item parameters (made with --no-irt): only 'weighted' works")
        named = ("weighted",)
    if "gpirt" in named and sub.lam is None:
        if estimator != "all":
            raise DistillError("this subset has no fitted gp-IRT lambda (made with --lambda-folds 0)")
        named = tuple(e for e in named if e != "gpirt")
    if named:
        est = estimate_scores(sub, answers, named, confidence=confidence, models=list(new.index))
        frames.append(est[["model", "estimator", "score", "ci_low", "ci_high"]])
    return PredictionResult(pd.concat(frames, ignore_index=True), "fraction", cv, notes, chosen)


def _from_subset(sub: TinySubset, confidence: float) -> ScorePredictor:
    _models, answers, scores = sub.train_data()
    kw: dict[str, Any] = {}
    if sub.item_params is not None:
        pos = {it: i for i, it in enumerate(sub.all_items)}
        kw = {"full_params": sub.item_params, "subset_pos": np.array([pos[i] for i in sub.items]),
              "weights": sub.weights}
    return ScorePredictor.from_artifact(sub.predictor, answers, scores, confidence=confidence, **kw)
