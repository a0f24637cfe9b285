from __future__ import annotations

import numpy as np
import pytest
from distill_helpers import sim_matrix

from sharpbench.distill.common import chance_rates, subset_scores
from sharpbench.distill.errors import DistillError
from sharpbench.distill.hard import select_hard
from sharpbench.distill.hard_rank import detect_guessers, keep_scores
from sharpbench.distill.plots import plot_score_trends

FR = np.round(np.arange(0, 0.91, 0.1), 2)


def test_guessers_are_detected_and_kept_out_of_the_voters():
    m, _ = sim_matrix(30, 300, seed=3, guessers=2)
    g = detect_guessers(m, chance_rates(m))
    assert sorted(g.index[g["is_guesser"]]) == ["guesser0", "guesser1"]
    res = select_hard(m, "mean", fractions=FR, pad=False)
    assert "guesser0" not in res.voters and "guesser1" not in res.voters
    assert all(not t.startswith("guesser") for t in res.top_models)


def test_mean_ranking_deletes_easiest_items_first(sim):
    m, _ = sim
    res = select_hard(m, "mean", fractions=FR, fraction=0.5, pad=False)
    p = m.item_pvalues()
    kept = res.subset(0.5)
    deleted = sorted(set(m.items) - set(kept))
    assert len(kept) == 150
    assert p[kept].max() <= p[deleted].min() + 1e-12
    # scores fall as easy items go; at step 0 nothing is deleted and the ratio is 1
    assert res.metrics["std_ratio"].iloc[0] == pytest.approx(1.0)
    assert res.scores.iloc[-1].mean() < res.scores.iloc[0].mean()
    assert list(res.metrics["n_items"]) == [300 - round(f * 300) for f in res.metrics.index]


def test_voter_penalty_equals_rerun_without_the_voter(sim):
    m, _ = sim
    ref = "m05"
    res = select_hard(m, "ref-vs-others", reference=ref, fractions=FR, fraction=0.6, pad=False)
    for voter in ("m00", "m17"):
        alone = select_hard(m, "ref-vs-others", reference=ref, fractions=FR, fraction=0.6, pad=False,
                            exclude_voters=[voter], voter_penalty=False)
        j = list(m.models).index(voter)
        for f in (0.3, 0.6):
            keep = np.isin(m.items, alone.subset(f))
            excluded = subset_scores(m.values[j : j + 1], keep)[0]
            assert res.penalties.loc[f, voter] == pytest.approx(excluded - res.scores.loc[f, voter])
    assert ref not in res.voters
    assert res.metrics["voter_penalty"].iloc[-1] > 0  # voters are burned by the selection
    assert res.metrics["reference_gain_z"].iloc[-1] > 0.5  # the reference is unfairly favoured


def test_ref_vs_others_sharpens_the_top_models_and_padding_closes_the_gap_to_the_unpadded_cuts():
    m, _ = sim_matrix(40, 400, seed=5)
    full = np.nanmean(m.values, axis=1)
    ref = m.models[int(np.argsort(full)[-3])]
    kw = dict(reference=ref, fractions=FR, fraction=0.7, lift_to_chance=False)
    raw = select_hard(m, "ref-vs-others", pad=False, **kw)
    padded = select_hard(m, "ref-vs-others", pad=True, **kw)
    assert raw.selected_metrics["std_ratio"] > 1.3
    # without padding the subset is the cut, and its penalty against the leave-one-out cuts is the honest one
    assert raw.selected_metrics["penalty_vs_unpadded_lovo"] == pytest.approx(raw.selected_metrics["voter_penalty"])
    assert raw.selected_metrics["voter_penalty"] == pytest.approx(raw.metrics.loc[0.7, "voter_penalty"])
    gap = padded.selected_metrics["penalty_vs_unpadded_lovo"]
    assert abs(gap) < abs(raw.selected_metrics["penalty_vs_unpadded_lovo"]) / 2
    assert len(padded.selected_items) > len(raw.selected_items)
    assert set(raw.selected_items) <= set(padded.selected_items)
    s = padded.summary()
    assert s.loc["size ratio (full / subset)", "subset"] == pytest.approx(400 / len(padded.selected_items))


def test_irt_rankings_keep_hard_and_discriminating_items():
    m, truth = sim_matrix(60, 200, seed=2)
    kw = dict(fractions=FR, fraction=0.7, pad=False, voter_penalty=False, lift_to_chance=False)
    res_b = select_hard(m, "irt-difficulty", **kw)
    res_a = select_hard(m, "irt-discrimination", **kw)
    idx = {it: i for i, it in enumerate(m.items)}
    kept_b = [idx[i] for i in res_b.selected_items]
    kept_a = [idx[i] for i in res_a.selected_items]
    assert truth["b"][kept_b].mean() > truth["b"].mean() + 0.6
    assert truth["a"][kept_a].mean() > truth["a"].mean() * 1.1


def test_bad_input_is_refused(sim):
    m, _ = sim
    with pytest.raises(DistillError, match="not in the matrix"):
        select_hard(m, "ref-vs-others", reference="gpt-99")
    with pytest.raises(DistillError, match="needs --reference"):
        select_hard(m, "ref-vs-others")
    with pytest.raises(DistillError, match="at least 4 models"):
        select_hard(m.select(models=[0, 1, 2]), "mean")
    with pytest.raises(DistillError, match="unknown method"):
        select_hard(m, "median")
    with pytest.raises(DistillError, match="IRT fitter"):
        keep_scores(m, "irt-difficulty", np.arange(5))
    with pytest.raises(DistillError, match="voter"):
        select_hard(m.select(models=[0, 1, 2, 3]), "ref-vs-others", reference="m00", exclude_voters=["m01", "m02"])
    # two voters: the pipeline cannot run without one of them, so there is no whole-pipeline penalty
    two = select_hard(m.select(models=[0, 1, 2, 3]), "ref-vs-others", reference="m00", exclude_voters=["m01"])
    assert np.isnan(two.selected_metrics["voter_penalty"]) and "2 voters" in two.lovo_cost["skipped"]


def test_missing_cells_are_skipped(sim):
    m, _ = sim_matrix(20, 200, seed=4, missing=0.2)
    res = select_hard(m, "mean", fractions=FR, pad=True)
    assert np.isfinite(res.scores.to_numpy()).all()
    assert np.isfinite(res.metrics[["std_top", "voter_penalty", "min_score"]].to_numpy()).all()


def test_artifact_and_plot(sim, tmp_path):
    import json

    m, _ = sim
    res = select_hard(m, "ref-vs-others", reference="m03", fractions=FR)
    art = json.loads(json.dumps(res.to_artifact(), default=float))
    assert art["kind"] == "distill_hard" and art["selected_items"] == res.selected_items
    png = plot_score_trends(res, tmp_path / "trend.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000


def test_optimizer_returns_pareto_and_a_chosen_trial(sim):
    from sharpbench.distill.hard_optimize import optimize_hard

    m, _ = sim
    res = optimize_hard(m, reference="m03", n_trials=12, seed=1, min_items=20)
    assert res.pareto is not None and res.pareto["chosen"].sum() == 1
    chosen = res.pareto[res.pareto["chosen"]].iloc[0]
    assert res.method == chosen["ordering"]
    assert res.selected_metrics["std_ratio"] == pytest.approx(chosen["std_ratio"], rel=1e-6)


def test_mmlu_pro_slice_ref_vs_others(mmlu_slice):
    res = select_hard(mmlu_slice, "ref-vs-others", reference="Meta-Llama-3_1-70B-Instruct_5shots", fraction=0.7)
    s = res.selected_metrics
    assert s["std_ratio"] > 1.8
    assert abs(s["penalty_vs_unpadded_lovo"]) < 0.01  # what the padding closes, ~0 by construction
    assert s["voter_penalty"] > 0.01  # the whole-pipeline rerun: voters stay burned
    assert s["min_minus_chance"] >= 0 and s["share_below_chance"] == 0
    assert "1,500 of 1,500 items" in res.chance_source
    assert res.reference == "Meta-Llama-3_1-70B-Instruct_5shots"


def _rerun_penalties(m, method, res, **kw):
    """Whole-pipeline leave-one-voter-out, by hand: rerun ``select_hard`` without each voter."""
    chosen = np.isin(m.items, res.selected_items)
    out = {}
    for v in res.voters:
        alone = select_hard(m, method, exclude_voters=[v], **kw)
        j = list(m.models).index(v)
        row = m.values[j : j + 1]
        out[v] = subset_scores(row, np.isin(m.items, alone.selected_items))[0] - subset_scores(row, chosen)[0]
    return out


def test_voter_penalty_of_the_padded_subset_reruns_the_whole_pipeline():
    """Issue #21.1: the penalty reruns ranking, deletion, padding and lift without each voter."""
    m, _ = sim_matrix(16, 300, seed=11, model="3pl")
    kw = dict(reference="m05", fractions=FR, fraction=0.7, pad=True)
    res = select_hard(m, "ref-vs-others", **kw)
    by_hand = _rerun_penalties(m, "ref-vs-others", res, **kw)
    assert res.selected_metrics["voter_penalty"] == pytest.approx(np.mean(list(by_hand.values())), abs=1e-12)
    assert res.voter_penalties.to_dict() == pytest.approx(by_hand, abs=1e-12)
    assert res.selected_metrics["voter_penalty_max"] == pytest.approx(max(by_hand.values()), abs=1e-12)
    # the padding closes the gap to the *unpadded* leave-one-out selections (the old figure, ~0 by
    # construction), not the honest one: voters stay burned
    assert res.selected_metrics["voter_penalty"] > 0.01
    assert abs(res.selected_metrics["penalty_vs_unpadded_lovo"]) < res.selected_metrics["voter_penalty"] / 2
    assert res.lovo_cost["pipelines"] == len(res.voters) and res.lovo_cost["seconds"] > 0
    s = res.summary()
    assert s.loc["mean voter penalty, whole-pipeline LOVO (points)", "subset"] == pytest.approx(
        100 * res.selected_metrics["voter_penalty"]
    )


def test_voter_penalty_is_the_same_in_parallel(sim):
    m, _ = sim
    kw = dict(reference="m05", fractions=FR, fraction=0.7)
    one = select_hard(m, "ref-vs-others", n_jobs=1, **kw)
    two = select_hard(m, "ref-vs-others", n_jobs=2, **kw)
    assert two.voter_penalties.to_dict() == pytest.approx(one.voter_penalties.to_dict(), abs=1e-15)
    assert two.lovo_cost["n_jobs"] == 2


def test_default_subset_has_no_model_below_chance():
    """Issue #21.2: MAGI's 'no model below random' holds for the default selection."""
    m, _ = sim_matrix(30, 300, seed=5, model="3pl")
    res = select_hard(m, "mean", fractions=FR, fraction=0.9)
    assert res.selected_metrics["min_minus_chance"] >= 0
    assert res.selected_metrics["share_below_chance"] == 0
    raw = select_hard(m, "mean", fractions=FR, fraction=0.9, lift_to_chance=False)
    assert raw.selected_metrics["share_below_chance"] > 0.1  # the objective is not free here
    assert raw.chance_note.endswith("(the lift above chance is off)")
    assert res.chance_shortfall == {}
    scores = subset_scores(m.values, np.isin(m.items, res.selected_items))
    assert scores.min() >= 0.25  # chance = 1/4 on every item of this matrix
    # the lift does not depend on the penalty padding
    nopad = select_hard(m, "mean", fractions=FR, fraction=0.9, pad=False)
    assert nopad.selected_metrics["min_minus_chance"] >= 0


def test_chance_is_the_mean_of_one_over_n_options_and_says_where_it_came_from():
    m, _ = sim_matrix(30, 300, seed=7)
    n = np.array([10, 4, 3] * 100, dtype=float)
    m.item_meta["n_choices"] = n
    res = select_hard(m, "mean", fractions=FR, fraction=0.5, pad=False, lift_to_chance=False)
    keep = np.isin(m.items, res.selected_items)
    assert res.selected_metrics["chance"] == pytest.approx(np.mean(1 / n[keep]))
    assert "item metadata" in res.chance_source and "300" in res.chance_source
    m.item_meta["n_choices"] = np.where(np.arange(300) < 100, np.nan, n)
    res = select_hard(m, "mean", fractions=FR, fraction=0.5, pad=False, lift_to_chance=False)
    assert "100 items" in res.chance_source and "1/4" in res.chance_source


def test_unreachable_chance_objective_is_explained():
    m, _ = sim_matrix(30, 300, seed=5, model="3pl")
    # the padding window holds only the last 5% of the deleted items (the hardest of them): too few
    # that the weakest models answered correctly
    res = select_hard(m, "mean", fractions=FR, fraction=0.9, pad=False, pad_window=(0.95, 1.0))
    assert res.selected_metrics["share_below_chance"] > 0
    assert res.chance_shortfall and set(res.chance_shortfall) <= set(m.models)
    assert res.selected_metrics["share_below_chance"] == pytest.approx(len(res.chance_shortfall) / 30)
    worst = max(res.chance_shortfall, key=res.chance_shortfall.get)
    assert f"no deleted item left in the padding window that {worst}" in res.chance_note


def test_models_below_chance_on_the_full_benchmark_are_reported_not_lifted():
    m, _ = sim_matrix(30, 300, seed=7)  # 2PL without a guessing floor: the weakest models are below 1/4 everywhere
    full = np.nanmean(m.values, axis=1)
    hopeless = {mod for mod, s in zip(m.models, full) if s < 0.25}
    assert hopeless
    res = select_hard(m, "ref-vs-others", reference="m03", fractions=FR, fraction=0.8)
    assert set(res.chance_shortfall) == hopeless
    assert not set(res.lifted) & hopeless
    assert "below chance on the full benchmark too (not lifted)" in res.chance_note


def test_optimizer_minimises_the_whole_pipeline_penalty():
    """Issue #21.1: every trial is scored by the whole-pipeline leave-one-voter-out penalty."""
    from sharpbench.distill.hard_optimize import optimize_hard

    m, _ = sim_matrix(16, 300, seed=11, model="3pl")
    res = optimize_hard(m, reference="m05", n_trials=6, seed=1, min_items=20)
    chosen = res.pareto[res.pareto["chosen"]].iloc[0]
    lo = float(chosen["pad_lo"])
    kw = dict(reference="m05", fraction=float(chosen["fraction"]), pad=bool(chosen.get("pad", True)),
              pad_window=(lo, min(1.0, lo + float(chosen["pad_width"]))), pad_scale=float(chosen["pad_scale"]),
              lift_to_chance=bool(chosen["lift_to_chance"]))  # fmt: skip
    by_hand = _rerun_penalties(m, chosen["ordering"], res, **kw)
    assert chosen["voter_penalty"] == pytest.approx(np.mean(list(by_hand.values())), abs=1e-12)
    assert res.selected_metrics["voter_penalty"] == pytest.approx(chosen["voter_penalty"], abs=1e-12)
    assert res.lovo_cost["trials"] == 6 and res.lovo_cost["search_seconds"] > 0 and res.lovo_cost["choice"]
