"""The linear probe (``elicit/probe.py``): layer choice by CV on training items only, held-out accuracy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.probe import ProbeResult, fit_predict, min_items, probe_held_out

HIDDEN = 16


def synthetic(n_items, *, n_layers=4, signal_layer=None, strength=3.0, seed=0, options=(3, 4, 5)):
    """Noise states; at ``signal_layer`` the gold option is shifted along one fixed direction."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=HIDDEN)
    direction /= np.linalg.norm(direction)
    states, gold = [], []
    for _ in range(n_items):
        k = int(rng.choice(options))
        g = int(rng.integers(k))
        s = rng.normal(size=(k, n_layers, HIDDEN))
        if signal_layer is not None:
            s[g, signal_layer] += strength * direction
        states.append(s.astype(np.float32))
        gold.append(g)
    return states, np.array(gold)


def test_planted_direction_found_at_its_layer():
    states, gold = synthetic(80, signal_layer=2)
    res = probe_held_out(states, gold, n_splits=4, seed=1, layers=[1, 5, 9, 13])
    assert isinstance(res, ProbeResult)
    assert res.correct.shape == (80,) and res.n_splits == 4 and res.pred.shape == (4, 80)
    assert ((res.correct >= 0) & (res.correct <= 1)).all()
    assert res.accuracy == pytest.approx(res.correct.mean())
    assert sum(res.layers_chosen.values()) == 8
    assert res.layers_chosen.get(9, 0) == 8 and res.best_layer == 9  # labels of the layer axis
    assert res.accuracy > 0.85  # strength 3 noise 1: gold wins ~95% per item


def test_pure_noise_is_near_chance():
    n = 200
    states, gold = synthetic(n, n_layers=3, signal_layer=None, options=(4,), seed=3)
    res = probe_held_out(states, gold, n_splits=3, seed=0)
    # chance 1/4; one split's item accuracy has sd sqrt(.25 * .75 / 200) = 0.031 (averaging splits only lowers it):
    # 4 sd either side
    assert abs(res.accuracy - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)


def user_baseline(states, gold, train, test, layer):
    """What a user would write: standardize, sklearn LogisticRegression, argmax per item."""
    x_tr = np.concatenate([states[i][:, layer] for i in train])
    y_tr = np.concatenate([(np.arange(len(states[i])) == gold[i]).astype(int) for i in train])
    scaler = StandardScaler().fit(x_tr)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x_tr), y_tr)
    return np.array([int(np.argmax(clf.decision_function(scaler.transform(states[i][:, layer])))) for i in test])


def test_matches_the_plain_sklearn_baseline_at_the_last_layer():
    states, gold = synthetic(60, signal_layer=3, strength=1.5, seed=5)
    rng = np.random.default_rng(0)
    perm = rng.permutation(60)
    train, test = np.sort(perm[:30]), np.sort(perm[30:])
    layer, pred = fit_predict(states, gold, train, test, layers_idx=[3])
    assert layer == 3
    base = user_baseline(states, gold, train, test, 3)
    np.testing.assert_array_equal(pred, base)
    assert 0.5 < np.mean(pred == gold[test]) < 1.0  # a non-trivial case: some right, some wrong
    # with the free choice the CV picks the signal layer and predicts the same
    layer_cv, pred_cv = fit_predict(states, gold, train, test)
    assert layer_cv == 3
    np.testing.assert_array_equal(pred_cv, base)
    # -1 is the last position too
    assert fit_predict(states, gold, train, test, layers_idx=[-1])[0] == 3


def test_test_labels_are_never_read():
    """Train items carry their signal at layer 1; each test item has one option marked at layer 1 (A) and
    another at layer 3 (B), with three times as many test items as training items.  A procedure that looked at
    test labels would choose layer 3 when the test golds are B; the honest one chooses layer 1 either way."""
    rng = np.random.default_rng(7)
    direction = rng.normal(size=HIDDEN)
    direction /= np.linalg.norm(direction)
    n_train, n_test = 20, 60
    states, gold_a, gold_b = [], [], []
    for i in range(n_train + n_test):
        s = rng.normal(size=(4, 4, HIDDEN))
        a, b = rng.choice(4, size=2, replace=False)
        s[a, 1] += 3 * direction
        if i >= n_train:
            s[b, 3] += 3 * direction
        states.append(s)
        gold_a.append(a)
        gold_b.append(a if i < n_train else b)
    gold_a, gold_b = np.array(gold_a), np.array(gold_b)
    train, test = np.arange(n_train), np.arange(n_train, n_train + n_test)
    layer, pred = fit_predict(states, gold_a, train, test, seed=2)
    layer_b, pred_b = fit_predict(states, gold_b, train, test, seed=2)
    assert layer == layer_b == 1
    np.testing.assert_array_equal(pred_b, pred)
    assert np.mean(pred == gold_a[test]) > 0.8
    # the same through the C grid
    assert fit_predict(states, gold_b, train, test, C=(0.01, 1.0))[0] == 1
    # and a procedure that did see the test labels would have been fooled: layer 3 fits them better
    assert fit_predict(states, gold_b, test, train, seed=2)[0] == 3
    # the training labels do matter
    flipped = gold_a.copy()
    flipped[train] = (gold_a[train] + 1) % 4
    assert not np.array_equal(fit_predict(states, flipped, train, test, seed=2)[1], pred)


def test_C_grid_is_chosen_on_training_items_only():
    from sharpbench.elicit.probe import C_GRID

    states, gold = synthetic(40, n_layers=3, signal_layer=2, strength=1.0, seed=8)
    train, test = np.arange(0, 40, 2), np.arange(1, 40, 2)
    layer, pred = fit_predict(states, gold, train, test, C=C_GRID)
    other = gold.copy()
    other[test] = (gold[test] + 1) % np.array([len(states[i]) for i in test])
    assert (other[test] != gold[test]).all()
    layer2, pred2 = fit_predict(states, other, train, test, C=C_GRID)
    assert layer2 == layer
    np.testing.assert_array_equal(pred2, pred)
    res = probe_held_out(states, gold, n_splits=2, C=C_GRID)
    assert sum(res.C_chosen.values()) == 4 and set(res.C_chosen) <= set(C_GRID)
    assert probe_held_out(states, gold, n_splits=1, C=0.5).C_chosen == {0.5: 2}
    # a single (layer, C) pair is the plain fit: the same predictions as the user's baseline
    np.testing.assert_array_equal(fit_predict(states, gold, train, test, layers_idx=[2], C=[1.0])[1],
                                  user_baseline(states, gold, train, test, 2))
    for bad in (0, -1.0, [], [1.0, 1.0], "x", float("nan")):
        with pytest.raises(ElicitError, match="C"):
            probe_held_out(states, gold, C=bad)


def test_too_few_items():
    states, gold = synthetic(11, signal_layer=0)
    assert min_items(3) == 12
    with pytest.raises(ElicitError, match="at least 12"):
        probe_held_out(states, gold)
    with pytest.raises(ElicitError, match="at least 8"):
        probe_held_out(states[:7], gold[:7], cv=2)
    states, gold = synthetic(12, signal_layer=0)
    assert probe_held_out(states, gold, n_splits=1).correct.shape == (12,)
    with pytest.raises(ElicitError, match="too few training items: 5; the probe needs at least 6"):
        fit_predict(states, gold, np.arange(5), np.arange(5, 12))


def test_bad_input():
    states, gold = synthetic(20, signal_layer=0)
    with pytest.raises(ElicitError, match="one entry per item"):
        probe_held_out(states, gold[:-1])
    with pytest.raises(ElicitError, match="overlap"):
        fit_predict(states, gold, np.arange(10), np.arange(9, 20))
    with pytest.raises(ElicitError, match="out of range"):
        probe_held_out(states, np.where(np.arange(20) == 0, 7, gold))
    with pytest.raises(ElicitError, match=r"shape \(n_options, n_layers, hidden_size\)"):
        probe_held_out([s[:, 0] for s in states], gold)
    with pytest.raises(ElicitError, match="do not match item 0"):
        probe_held_out([states[0][:, :2]] + states[1:], gold)
    with pytest.raises(ElicitError, match="at least 2 per item"):
        probe_held_out([states[0][:1]] + states[1:], np.where(np.arange(20) == 0, 0, gold))
    with pytest.raises(ElicitError, match="NaN"):
        probe_held_out([np.full_like(states[0], np.nan)] + states[1:], gold)
    with pytest.raises(ElicitError, match="cv must be"):
        probe_held_out(states, gold, cv=1)
    with pytest.raises(ElicitError, match="layers_idx"):
        fit_predict(states, gold, np.arange(10), np.arange(10, 20), layers_idx=[4])
    with pytest.raises(ElicitError, match="labels"):
        probe_held_out(states, gold, layers=[1, 2])


def test_four_d_array_and_determinism():
    states, gold = synthetic(24, signal_layer=2, options=(4,), seed=11)
    a = probe_held_out(states, gold, n_splits=2, seed=4)
    b = probe_held_out(np.stack(states), gold, n_splits=2, seed=4)
    np.testing.assert_array_equal(a.pred, b.pred)
    assert a.layers_chosen == b.layers_chosen
    seen = []
    probe_held_out(states, gold, n_splits=2, seed=4, progress=seen.append)
    assert sum(seen) == 4


def test_module_imports_no_torch():
    code = "import sys, sharpbench.elicit.probe; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_real_model_smoke(smollm2):
    from sharpbench.data.registry import get_task
    from sharpbench.elicit.probe import probe_note, run_probe

    items = get_task("arc_easy").items(limit=40)
    assert probe_note(smollm2) is None
    res = run_probe(smollm2, items, n_splits=2, seed=0)
    assert res.correct.shape == (40,) and res.n_splits == 2
    assert 0.0 <= res.accuracy <= 1.0 and ((res.correct >= 0) & (res.correct <= 1)).all()
    assert sum(res.layers_chosen.values()) == 4
    assert set(res.layers_chosen) <= {1, 5, 9, 13, 18, 22, 26, 30}
    print(f"SmolLM2-135M arc_easy 40 items: probe held-out accuracy {res.accuracy:.3f}, layers {res.layers_chosen}")
