"""Greedy cross-validated item selection: exact against scikit-learn's ridge, and it finds the informative items."""

from __future__ import annotations

import numpy as np
import pytest
from distill_helpers import sim_matrix

from sharpbench.distill.common import full_scores
from sharpbench.distill.cv_select import greedy_cv_items
from sharpbench.distill.errors import DistillError
from sharpbench.distill.tiny import select_tiny


def test_each_step_equals_a_refitted_ridge():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(0)
    x = (rng.random((60, 15)) < 0.5).astype(float)
    x[rng.random(x.shape) < 0.05] = np.nan
    y = np.nan_to_num(x, nan=0.5) @ rng.normal(size=15) * 0.1 + rng.normal(size=60) * 0.05
    pos, curve = greedy_cv_items(x, y, 4, folds=5, alpha=1.0)
    assert len(set(pos.tolist())) == 4
    for step in range(1, 5):
        cols = list(pos[:step])
        err = 0.0
        for tr, te in KFold(5, shuffle=True, random_state=0).split(x):
            mu = np.nanmean(x[tr][:, cols], axis=0)
            fill = lambda a: np.where(np.isnan(a), mu, a)  # noqa: E731 - the fold's column means
            fit = Ridge(alpha=1.0).fit(fill(x[tr][:, cols]), y[tr])
            err += np.abs(fit.predict(fill(x[te][:, cols])) - y[te]).sum()
        assert curve[step - 1] == pytest.approx(err / 60, rel=1e-9)


def test_picks_the_items_that_carry_the_score():
    rng = np.random.default_rng(1)
    x = (rng.random((300, 50)) < 0.5).astype(float)
    y = x[:, [7, 19, 33]].mean(axis=1) + rng.normal(0, 0.01, 300)
    pos, curve = greedy_cv_items(x, y, 3)
    assert sorted(pos.tolist()) == [7, 19, 33] and curve[-1] < curve[0]


def test_select_tiny_cv_beats_random_items_on_held_out_models():
    m, _ = sim_matrix(200, 120, seed=8)
    truth = full_scores(m)
    train = m.select(models=np.arange(150))
    cv = select_tiny(train, 15, "cv")
    rand = select_tiny(train, 15, "random", seed=3)
    assert cv.method == "cv" and np.allclose(cv.weights, 1 / 15)

    def held_out_mae(sub):
        from sklearn.linear_model import RidgeCV

        pos = [m.items.index(i) for i in sub.items]
        fit = RidgeCV().fit(m.values[:150][:, pos], truth[:150])
        return np.abs(fit.predict(m.values[150:][:, pos]) - truth[150:]).mean()

    assert held_out_mae(cv) < held_out_mae(rand)
    with pytest.raises(DistillError, match="at least 10 models"):
        select_tiny(m.select(models=np.arange(8)), 5, "cv")
