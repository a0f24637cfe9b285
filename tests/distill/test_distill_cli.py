from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from distill_helpers import sim_matrix
from typer.testing import CliRunner

from sharpbench.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    m, _ = sim_matrix(40, 150, seed=13)
    frame = m.to_frame()
    frame.iloc[:30].to_csv(d / "matrix.csv")
    meta = m.item_meta.reset_index().rename(columns={"item": "item_id"})
    meta.to_csv(d / "meta.csv", index=False)
    frame.iloc[30:].to_csv(d / "new_full.csv")
    return d, m


def test_hard_writes_subset_task_file_and_plot(files):
    d, _ = files
    out = d / "hard"
    r = runner.invoke(app, ["distill", "hard", str(d / "matrix.csv"), "--reference", "m02", "--item-meta",
                            str(d / "meta.csv"), "--fraction", "0.6", "--out", str(out), "--base-task", "toy",
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    rows = {row["metric"]: row for row in payload["rows"]}
    assert set(rows) >= {"discriminative ratio (std / baseline std)", "min score - chance (points)",
                         "share of models below chance", "mean voter penalty, whole-pipeline LOVO (points)",
                         "chance baseline (mean 1/n_options)"}
    # issue #21: the outputs say where chance comes from, why MAGI's objective is not met (three simulated
    # models are below chance on the whole benchmark) and what the whole-pipeline voter penalty cost
    assert rows["share of models below chance"]["subset"] == pytest.approx(3 / 30)
    assert payload["no model below chance (MAGI)"].startswith("3 model(s) below chance: m01")
    assert "m01, m17, m28 below chance on the full benchmark too" in payload["no model below chance (MAGI)"]
    assert payload["chance baseline"].startswith("chance = 1/n_options per item from the item metadata for 150")
    assert "pipelines in" in payload["voter penalty"]
    result = json.loads((out / "result.json").read_text())
    assert result["chance_source"] == payload["chance baseline"] and result["lovo_cost"]["pipelines"] >= 2
    assert set(result["voter_penalties"]) == set(result["voters"])
    items = (out / "items.txt").read_text().split()
    assert len(items) >= 60
    import tomllib

    task = tomllib.loads((out / "subset.toml").read_text())["task"]
    assert task["base"] == "toy" and task["item_ids"] == items
    assert (out / "score_trend.png").stat().st_size > 10_000
    assert set(pd.read_csv(out / "metrics.csv").columns) >= {"std_top", "voter_penalty", "share_below_chance",
                                                              "min_minus_chance", "chance"}


def test_hard_saves_artifact_in_store(files):
    from sharpbench.store import Store

    d, _ = files
    db = d / "s.duckdb"
    r = runner.invoke(app, ["distill", "hard", str(d / "matrix.csv"), "--method", "mean", "--out", str(d / "h2"),
                            "--store", str(db)])
    assert r.exit_code == 0, r.output
    arts = Store(db).artifacts("distill_hard")
    assert len(arts) == 1 and arts[0]["payload"]["method"] == "mean"
    assert arts[0]["payload"]["plot_png_base64"].startswith("iVBOR")  # a PNG


def test_hard_default_has_no_model_below_chance(tmp_path):
    m, _ = sim_matrix(30, 300, seed=5, model="3pl")
    m.to_frame().to_csv(tmp_path / "m.csv")
    m.item_meta.reset_index().rename(columns={"item": "item_id"}).to_csv(tmp_path / "meta.csv", index=False)
    args = ["distill", "hard", str(tmp_path / "m.csv"), "--method", "mean", "--fraction", "0.9", "--item-meta",
            str(tmp_path / "meta.csv"), "--no-voter-penalty", "--format", "json"]
    on = json.loads(runner.invoke(app, [*args, "--out", str(tmp_path / "a")]).output)
    rows = {r["metric"]: r["subset"] for r in on["rows"]}
    assert rows["min score - chance (points)"] >= 0 and rows["share of models below chance"] == 0
    assert on["no model below chance (MAGI)"].startswith("no model below chance; ")
    off = json.loads(runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--no-lift-to-chance"]).output)
    assert {r["metric"]: r["subset"] for r in off["rows"]}["share of models below chance"] > 0.1
    assert off["no model below chance (MAGI)"].endswith("(the lift above chance is off)")


def test_hard_optimize_reports_its_cost_and_choice(files):
    d, _ = files
    out = d / "h4"
    r = runner.invoke(app, ["distill", "hard", str(d / "matrix.csv"), "--reference", "m02", "--optimize", "--trials",
                            "4", "--penalty-tol", "100", "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert "4 trials in" in payload["optimisation"] and "whole-pipeline voter penalty" in payload["optimisation"]
    assert "|voter penalty| <= 100.00 pts" in payload["optimisation"] or "no trial" in payload["optimisation"]
    pareto = pd.read_csv(out / "pareto.csv")
    assert {"voter_penalty", "voter_penalty_max", "min_minus_chance", "share_below_chance", "pad"} <= set(pareto.columns)


def test_hard_without_n_options_says_chance_is_assumed(files):
    d, _ = files
    r = runner.invoke(app, ["distill", "hard", str(d / "matrix.csv"), "--method", "mean", "--out", str(d / "h3"),
                            "--n-choices", "5", "--no-voter-penalty", "--format", "json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert payload["chance baseline"] == "chance = 1/5 assumed for all 150 items (no n_options in the metadata)"
    assert payload["voter penalty"] == "not computed"


def test_hard_bad_reference_is_a_clear_error(files):
    d, _ = files
    r = runner.invoke(app, ["distill", "hard", str(d / "matrix.csv"), "--reference", "nobody"])
    assert r.exit_code == 2 and "not in the matrix" in r.output


def test_tiny_then_predict_json(files):
    d, m = files
    sub = d / "tiny.json"
    r = runner.invoke(app, ["distill", "tiny", str(d / "matrix.csv"), "--n-items", "20", "--method", "stratified",
                            "--item-meta", str(d / "meta.csv"), "--lambda-folds", "2", "--out", str(sub),
                            "--format", "csv"])
    assert r.exit_code == 0, r.output
    items = json.loads(sub.read_text())["items"]
    pd.read_csv(d / "new_full.csv", index_col=0)[items].to_csv(d / "new.csv")
    r = runner.invoke(app, ["predict", "--subset", str(sub), "--responses", str(d / "new.csv"), "--format", "json",
                            "--estimator", "all"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    preds = out["predictions"]
    assert len(preds) == 10 * 5  # weighted, irt, pirt, gpirt and auto
    truth = np.nanmean(m.values[30:], axis=1)
    for est in ("gpirt", "auto"):
        g = [p for p in preds if p["estimator"] == est]
        assert np.mean([abs(p["score"] - t) for p, t in zip(g, truth)]) < 0.12
    assert all(p["ci_low"] <= p["score"] <= p["ci_high"] for p in preds)
    # the cross-validated choice, with every candidate's and both baselines' CV error
    cv = {row["estimator"]: row for row in out["cv"]}
    assert {"mean-cubic", "ridge", "pirt", "svr-rbf-4"} <= set(cv) and cv[out["auto"]]["role"] == "final"
    r = runner.invoke(app, ["predict", "--subset", str(sub), "--responses", str(d / "new.csv"), "--format", "json"])
    assert r.exit_code == 0, r.output
    auto = [p["score"] for p in json.loads(r.output)["predictions"]]
    assert auto == [p["score"] for p in preds if p["estimator"] == "auto"]


def test_tiny_too_large_subset(files):
    d, _ = files
    r = runner.invoke(app, ["distill", "tiny", str(d / "matrix.csv"), "--n-items", "500", "--no-irt",
                            "--method", "random", "--out", str(d / "x.json")])
    assert r.exit_code == 2 and "benchmark has 150" in r.output


def test_predict_metabench_mapping(files):
    d, m = files
    rng = np.random.default_rng(3)
    items = [m.items[i] for i in np.sort(rng.choice(150, 40, replace=False))]
    frame = m.to_frame()
    frame.iloc[:30][items].to_csv(d / "train_answers.csv")
    full = np.nanmean(m.values, axis=1)
    # percent, as leaderboards publish them; three extra scored models without answers
    pd.Series(100 * full[:33], index=list(m.models[:33]), name="score").rename_axis("model").to_csv(
        d / "full_scores.csv"
    )
    new = frame.iloc[30:][items[:-2]].assign(q9999=1.0)  # two subset items missing, one unknown column
    new.to_csv(d / "new_answers.csv")
    r = runner.invoke(app, ["predict", "--train", str(d / "train_answers.csv"), "--train-scores",
                            str(d / "full_scores.csv"), "--responses", str(d / "new_answers.csv"), "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    preds = out["predictions"]
    assert [p["model"] for p in preds] == list(m.models[30:])
    assert all(set(p) >= {"model", "score", "ci_low", "ci_high"} for p in preds)
    assert out["score_unit"] == "percent" and any("read as percent" in n for n in out["notes"])
    assert any("2 of 40 subset items" in n for n in out["notes"]) and any("q9999" in n for n in out["notes"])
    assert any("3 scored model(s)" in n for n in out["notes"])
    err = np.mean([abs(p["score"] - 100 * t) for p, t in zip(preds, full[30:])])
    assert err < 8.0  # points; 38 of 150 items, 30 training models
    cv = {row["estimator"] for row in out["cv"]}
    assert {"mean-cubic", "ridge", "svr-rbf-4", out["auto"]} <= cv


def test_predict_bad_input(files):
    d, m = files
    frame = m.to_frame()
    frame.iloc[:8, :20].to_csv(d / "few.csv")
    pd.Series(np.full(8, 0.5), index=list(m.models[:8]), name="score").to_csv(d / "few_scores.csv")
    frame.iloc[30:, :20].to_csv(d / "new20.csv")
    r = runner.invoke(app, ["predict", "--train", str(d / "few.csv"), "--train-scores", str(d / "few_scores.csv"),
                            "--responses", str(d / "new20.csv")])
    assert r.exit_code == 2 and "at least 10 training models" in r.output
    pd.Series(np.full(7, 0.5), index=list(m.models[:7]), name="score").to_csv(d / "short_scores.csv")
    r = runner.invoke(app, ["predict", "--train", str(d / "few.csv"), "--train-scores", str(d / "short_scores.csv"),
                            "--responses", str(d / "new20.csv")])
    assert r.exit_code == 2 and "no full score for 1 training model" in r.output
    frame.iloc[30:, 100:110].to_csv(d / "disjoint.csv")
    frame.iloc[:30, :20].to_csv(d / "train20.csv")
    pd.Series(np.nanmean(m.values[:30], axis=1), index=list(m.models[:30]), name="score").to_csv(d / "s30.csv")
    r = runner.invoke(app, ["predict", "--train", str(d / "train20.csv"), "--train-scores", str(d / "s30.csv"),
                            "--responses", str(d / "disjoint.csv")])
    assert r.exit_code == 2 and "share no item" in r.output
    r = runner.invoke(app, ["predict", "--train", str(d / "train20.csv"), "--train-scores", str(d / "s30.csv"),
                            "--responses", str(d / "new20.csv"), "--estimator", "pirt"])
    assert r.exit_code == 2 and "leave --estimator at auto" in r.output


def test_evaluate_markdown(files):
    d, _ = files
    r = runner.invoke(app, ["distill", "evaluate", str(d / "matrix.csv"), "--n-items", "15", "--methods", "stratified",
                            "--estimators", "weighted,irt", "--folds", "3", "--seeds", "1", "--random-repeats", "2",
                            "--lambda-folds", "0", "--format", "markdown", "--plot", str(d / "eval.png")])
    assert r.exit_code == 0, r.output
    assert "| stratified | irt |" in r.output and "| random | weighted |" in r.output
    assert (d / "eval.png").exists()


def test_tiny_cv_from_a_subset_matrix_with_given_scores(files):
    """metabench's setting: the matrix is already a subset, the full scores come from elsewhere (percent)."""
    d, m = files
    frame = m.to_frame()
    cols = list(m.items[:60])
    frame.iloc[:30][cols].to_csv(d / "part.csv")
    full = np.nanmean(m.values, axis=1)
    pd.Series(100 * full[:30], index=list(m.models[:30]), name="score").to_csv(d / "part_scores.csv")
    sub = d / "cv.json"
    r = runner.invoke(app, ["distill", "tiny", str(d / "part.csv"), "--n-items", "12", "--method", "cv",
                            "--scores", str(d / "part_scores.csv"), "--out", str(sub), "--format", "json"])
    assert r.exit_code == 0, r.output
    saved = json.loads(sub.read_text())
    assert saved["method"] == "cv" and saved["item_params"] is None  # IRT of the whole benchmark does not apply
    assert saved["predictor"]["chosen"] and not set(saved["predictor"]["chosen"]) & {"pirt", "irt", "weighted"}
    frame.iloc[30:][saved["items"]].to_csv(d / "cv_new.csv")
    r = runner.invoke(app, ["predict", "--subset", str(sub), "--responses", str(d / "cv_new.csv"), "--format", "json"])
    assert r.exit_code == 0, r.output
    preds = json.loads(r.output)["predictions"]
    # 12 items: the sampling error of a 12-item mean alone is ~0.12
    assert np.mean([abs(p["score"] - t) for p, t in zip(preds, full[30:])]) < 0.15
    r = runner.invoke(app, ["predict", "--subset", str(sub), "--responses", str(d / "cv_new.csv"), "--estimator",
                            "pirt"])
    assert r.exit_code == 2 and "no item parameters" in r.output
