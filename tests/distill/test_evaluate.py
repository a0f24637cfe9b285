from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distill_helpers import sim_matrix

from sharpbench.distill.errors import DistillError
from sharpbench.distill.evaluate import evaluate_tiny


def test_kfold_never_uses_held_out_models_and_beats_random():
    m, _ = sim_matrix(36, 240, seed=21)
    res = evaluate_tiny(m, n_items=30, methods=["irt-info"], folds=4, seeds=[0], random_repeats=4, lambda_folds=2)
    p = res.predictions
    # every model predicted exactly once per (method, estimator, rep)
    counts = p.groupby(["method", "estimator", "rep"])["model"].nunique()
    assert (counts == 36).all()
    t = res.table().set_index(["method", "estimator"])
    assert t.loc[("random", "weighted"), "mae_vs_random"] == pytest.approx(1.0)
    # unidimensional simulated data: IRT can only approach the information bound, so the gain is modest
    best_irt = min(t.loc[("irt-info", e), "mae"] for e in ("irt", "pirt", "gpirt"))
    assert best_irt < 0.9 * t.loc[("random", "weighted"), "mae"]
    assert t.loc[("irt-info", "irt"), "tau"] > 0.7
    md = res.to_markdown()
    assert md.startswith("| method | estimator |") and "random | weighted" in md


def test_held_out_models_are_not_in_training(monkeypatch):
    import sharpbench.distill.evaluate as ev

    seen: list[set[str]] = []
    real = ev.fit_item_params

    def spy(matrix):
        seen.append(set(matrix.models))
        return real(matrix)

    monkeypatch.setattr(ev, "fit_item_params", spy)
    m, _ = sim_matrix(12, 60, seed=2)
    res = evaluate_tiny(m, n_items=10, methods=["random"], estimators=["weighted", "irt"], folds=3, seeds=[0],
                        random_repeats=1, lambda_folds=0)
    for fold, models in zip(sorted(res.predictions["fold"].unique()), seen):
        held = set(res.predictions.loc[res.predictions["fold"] == fold, "model"])
        assert not held & models


def test_evaluate_bad_input():
    m, _ = sim_matrix(5, 50, seed=1)
    with pytest.raises(DistillError, match="at least 6 models"):
        evaluate_tiny(m, n_items=10, estimators=["weighted", "pirt"])
    m, _ = sim_matrix(10, 50, seed=1)
    with pytest.raises(DistillError, match="at least 11 models"):  # auto: 10 training models per fold
        evaluate_tiny(m, n_items=10)
    m, _ = sim_matrix(12, 50, seed=1)
    with pytest.raises(DistillError, match="between 1 and 50"):
        evaluate_tiny(m, n_items=80)
    with pytest.raises(DistillError, match="unknown estimator"):
        evaluate_tiny(m, n_items=10, estimators=["magic"])


def test_ratios_change_one_factor_at_a_time():
    m, _ = sim_matrix(30, 200, seed=4)
    res = evaluate_tiny(m, n_items=20, methods=["stratified"], estimators=["weighted", "pirt", "auto"], folds=3,
                        seeds=[0], random_repeats=2, lambda_folds=0)
    t = res.table().set_index(["method", "estimator"])
    for est in ("weighted", "pirt", "auto"):
        # the selection against random items, with the estimator held fixed
        assert t.loc[("stratified", est), "mae_vs_random"] == pytest.approx(
            t.loc[("stratified", est), "mae"] / t.loc[("random", est), "mae"])
        # the estimator against the plain weighted mean, on the same items
        assert t.loc[("random", est), "mae_vs_weighted"] == pytest.approx(
            t.loc[("random", est), "mae"] / t.loc[("random", "weighted"), "mae"])
    assert "MAE / random items (same estimator)" in res.to_markdown()
