"""The elicitation numerics against brute-force baselines a user could write."""

from __future__ import annotations

import numpy as np
import pytest

from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.stats import (
    answer_prior,
    bootstrap_weights,
    canonical,
    cell_stats,
    half_splits,
    held_out_scores,
    majority_vote,
)


def _loop_held_out(c: np.ndarray, splits: np.ndarray) -> float:
    """The plain-Python version: choose on one half, score on the other, both ways."""
    out = []
    for m in splits:
        for sel, ev in ((m, ~m), (~m, m)):
            best = int(np.argmax(c[:, sel].mean(axis=1)))
            out.append(c[best, ev].mean())
    return float(np.mean(out))


def test_held_out_equals_the_loop_baseline():
    rng = np.random.default_rng(0)
    c = (rng.random((7, 60)) < 0.4).astype(float)
    s = half_splits(60, 25, seed=3)
    assert held_out_scores(c, np.ones((1, 60)), s)[0] == pytest.approx(_loop_held_out(c, s))


def test_weights_are_item_multiplicities():
    rng = np.random.default_rng(1)
    c = (rng.random((4, 30)) < 0.5).astype(float)
    w = bootstrap_weights(30, 1, seed=2)
    expanded = np.repeat(c, w[0].astype(int), axis=1)  # the resample written out
    assert w.sum() == 30
    # a single arm: the weighted accuracy is the accuracy of the expanded resample
    assert held_out_scores(c[:1], w, half_splits(30, 3))[0] == pytest.approx(expanded[0].mean())


def test_held_out_is_unbiased_where_in_sample_best_is_optimistic():
    rng = np.random.default_rng(5)
    held, best = [], []
    for r in range(200):
        c = (rng.random((12, 100)) < 0.3).astype(float)  # twelve equally good prompts
        held.append(held_out_scores(c, np.ones((1, 100)), half_splits(100, 10, r))[0])
        best.append(c.mean(axis=1).max())
    assert abs(np.mean(held) - 0.3) < 0.01
    assert np.mean(best) > 0.34  # choosing and scoring on the same items


def test_held_out_finds_a_truly_better_arm():
    rng = np.random.default_rng(6)
    c = (rng.random((6, 400)) < 0.3).astype(float)
    c[4] = (rng.random(400) < 0.7).astype(float)
    assert held_out_scores(c, np.ones((1, 400)), half_splits(400, 10))[0] == pytest.approx(c[4].mean(), abs=0.02)


def test_ties_go_to_the_first_arm():
    row = (np.arange(20) % 2).astype(float)
    c = np.vstack([row, row])  # two identical arms: always a tie
    assert held_out_scores(c, np.ones((1, 20)), half_splits(20, 5))[0] == pytest.approx(c[0].mean())


def test_majority_vote():
    answers = [["a", "b", None, "c"], ["b", "b", None, "d"], ["b", "a", None, None]]
    assert majority_vote(answers) == ["b", "b", None, "c"]
    assert majority_vote(answers, prefer=1) == ["b", "b", None, "d"]  # tie c/d: the preferred arm's
    with pytest.raises(ElicitError, match="same items"):
        majority_vote([["a"], ["a", "b"]])


def test_canonical_matches_lmeval_exact_match():
    from sharpbench.answers.match import exact_match

    opts = dict(ignore_case=True, ignore_punctuation=False, regexes_to_ignore=[",", r"\$", "(?s).*#### ", r"\.$"])
    for pred, gold in [("1,234", "1234"), ("$18.", "18"), ("18", "17"), ("#### 5", "5")]:
        same = canonical(pred, **opts) == canonical(gold, **opts)
        assert same == bool(exact_match(pred, gold, **opts))
    assert canonical("(B)", ignore_punctuation=True) == "b"


def test_cell_stats_pairs_gains_and_ratio():
    rng = np.random.default_rng(7)
    n = 300
    plain = (rng.random(n) < 0.3).astype(float)
    good = np.maximum(plain, (rng.random(n) < 0.3).astype(float))  # never worse than plain on an item
    arms = {"plain": plain, "cot": good, "v1": (rng.random(n) < 0.3).astype(float)}
    s = cell_stats(arms, {"plain": ["plain"], "cot": ["cot"], "variants": ["plain", "v1"]},
                   compare=[("cot", "variants")], n_boot=300)
    assert s.plain.value == pytest.approx(plain.mean())
    assert s.methods["cot"].value == pytest.approx(good.mean())
    assert s.gains["cot"].low > 0  # paired: the gain is certain although the intervals overlap
    assert s.best_method == "cot"
    assert s.ratio.value == pytest.approx(s.elicited.value / plain.mean())
    assert s.ratio.low <= s.ratio.value <= s.ratio.high
    assert ("cot", "variants") in s.comparisons


def test_cell_stats_errors():
    with pytest.raises(ElicitError, match="at least 10 items"):
        cell_stats({"plain": np.ones(4)}, {"plain": ["plain"]})
    with pytest.raises(ElicitError, match="plain"):
        cell_stats({"x": np.ones(20)}, {"x": ["x"]})
    with pytest.raises(ElicitError, match="without results"):
        cell_stats({"plain": np.ones(20)}, {"cot": ["cot"]})
    with pytest.raises(ElicitError, match="missing values"):
        cell_stats({"plain": np.full(20, np.nan)}, {"plain": ["plain"]})


def test_zero_plain_has_no_ratio():
    s = cell_stats({"plain": np.zeros(20), "cot": np.ones(20)}, {"cot": ["cot"]}, n_boot=50)
    assert s.ratio is None and s.elicited.value == 1.0


def test_answer_prior_equals_the_loop_baseline():
    """The constant answer learned on one half, scored on the other, per item: against collections.Counter."""
    from collections import Counter

    rng = np.random.default_rng(5)
    gold = list(rng.choice(list("abcde"), 60, p=[0.35, 0.2, 0.2, 0.15, 0.1]))
    splits = half_splits(60, 25, seed=3)
    right = np.zeros(60)
    for m in splits:
        for train in (m, ~m):
            counts = Counter(g for g, t in zip(gold, train) if t)
            top = min(counts, key=lambda a: (-counts[a], a))  # ties: the first in sorted order
            right += np.array([not t and g == top for g, t in zip(gold, train)])
    assert np.allclose(answer_prior(gold, splits), right / 25)
    assert answer_prior(["c"] * 12, half_splits(12, 4)).tolist() == [1.0] * 12  # one answer: always right
    # a balanced answer key leaves nothing to learn: the held-out prior is at or below chance
    assert answer_prior(list("abcd") * 50, half_splits(200, 50)).mean() <= 0.25
    with pytest.raises(ElicitError, match="do not match 12 items"):
        answer_prior(["a"] * 12, half_splits(10, 3))
    with pytest.raises(ElicitError, match="gold answer"):
        answer_prior(["a"] * 11 + [None], half_splits(12, 3))
