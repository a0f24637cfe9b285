from __future__ import annotations

import json

import pytest
from report_helpers import make_store
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.insight.calibration import (
    brier_score,
    choice_probabilities,
    distributional_correctness,
    expected_calibration_error,
    top_label,
)
from sharpbench.insight.calibration_store import calibration_from_store


def test_store_adapter_matches_plain_arrays(tmp_path):
    from sharpbench.store import Store

    path = make_store(tmp_path / "s.duckdb", with_artifacts=False)
    res = calibration_from_store(path)
    assert len(res) == 3
    with Store(path, read_only=True) as s:
        runs = s.runs()
        rid = runs[runs.model_id == "tiny-b"].run_id.item()
        ch, it = s.choices_frame([rid]), s.items_frame([rid])
    lls = [g.sort_values("choice")["loglik"].to_numpy() for _, g in ch.groupby("item_id")]
    gold = it.sort_values("item_id")["gold"].to_numpy()
    probs = choice_probabilities(lls)
    conf, corr = top_label(probs, gold)
    got = next(v for k, v in res.items() if k.startswith("tiny-b"))
    assert got["ece"] == pytest.approx(expected_calibration_error(conf, corr))
    assert got["brier"] == pytest.approx(brier_score(probs, gold))
    assert got["dcs"] == pytest.approx(distributional_correctness(probs, gold).mean())
    assert got["accuracy"] == pytest.approx(it["acc"].mean())  # agrees with the engine's acc


def test_calibration_cli(tmp_path):
    path = make_store(tmp_path / "s.duckdb", with_artifacts=False)
    res = CliRunner().invoke(app, ["calibration", "--store", str(path), "--format", "json", "--bins", "10", "--save"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    # backend and dtype in every label: hf and llamacpp runs of one model must not share one
    assert {r["run"].split(" / ")[0] for r in rows} == {"tiny-a [hf,float32]", "tiny-b [hf,float32]",
                                                       "tiny-c [hf,float32]"}
    assert all(0 <= r["ece"] <= 1 and 0 <= r["brier"] <= 2 and -1 <= r["dcs"] <= 1 for r in rows)
    from sharpbench.store import Store

    with Store(path, read_only=True) as s:
        assert len(s.artifacts("calibration")) == 3
    from sharpbench.store import Store as _S

    _S(tmp_path / "e.duckdb").close()
    res = CliRunner().invoke(app, ["calibration", "--store", str(tmp_path / "e.duckdb")])
    assert res.exit_code == 2 and "sharpbench eval" in res.output
