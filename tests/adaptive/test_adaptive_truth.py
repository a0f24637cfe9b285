"""What adaptive predictions are scored against (issue #21 item 5), and fixed-length tests.

A prediction is for the whole benchmark: the bank's items plus the fixed-score
items left out of the bank (counted at their calibration mean). The truth must
be the model's mean over the same items, not over the bank's items only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from adaptive_helpers import make_bank, simulate_responses
from typer.testing import CliRunner

from sharpbench.adaptive.bank import BankError, ItemBank
from sharpbench.adaptive.cat import StoppingRule
from sharpbench.adaptive.evaluation import held_out_runs, leave_one_model_out
from sharpbench.adaptive.live import score_benchmark
from sharpbench.adaptive.simulate import SimulationConfig, random_sample_scores, simulate_matrix, simulate_model
from sharpbench.cli.app import app
from sharpbench.matrix.core import ResponseMatrix

N_FIXED = 60


def _with_fixed(bank: ItemBank, pvalues: dict[str, float]) -> ItemBank:
    info = dict(bank.info, excluded_items=list(pvalues), excluded_pvalues=dict(pvalues))
    return ItemBank(bank.name, bank.benchmark, bank.items, bank.ability_mean, bank.ability_sd, info)


@pytest.fixture
def fixed_setup():
    """Bank of 400 items + 60 fixed-score items; models answer every fixed item wrong.

    Mirrors MMLU-Pro, where the items left out of a bank are mostly ones every
    calibration model got wrong: the bank-only mean overstates the full score.
    """
    base = make_bank()
    fixed = {f"c{k}": 0.0 for k in range(N_FIXED)}
    bank = _with_fixed(base, fixed)
    theta = np.linspace(-1.5, 1.5, 6)
    y = np.hstack([simulate_responses(base, theta), np.zeros((len(theta), N_FIXED))])
    matrix = ResponseMatrix(y, [f"m{k}" for k in range(len(theta))], list(base.item_ids) + list(fixed))
    return bank, matrix


def test_benchmark_items_and_full_score(fixed_setup):
    bank, matrix = fixed_setup
    assert bank.benchmark_item_ids == bank.item_ids + tuple(f"c{k}" for k in range(N_FIXED))
    assert len(bank.benchmark_item_ids) == bank.n_total
    row = pd.Series(matrix.values[0], index=list(matrix.items))
    assert bank.full_score(row) == pytest.approx(row.mean())
    # items outside the benchmark are ignored; missing cells are left out; integer ids match str ids
    extra = pd.concat([row, pd.Series([1.0] * 5, index=[f"x{k}" for k in range(5)])])
    assert bank.full_score(extra) == pytest.approx(row.mean())
    holes = row.copy()
    holes.iloc[:10] = np.nan
    assert bank.full_score(holes) == pytest.approx(holes.mean())
    numeric = make_bank(n_items=5)
    numeric = ItemBank("n", "t", numeric.items.set_axis([str(k) for k in range(5)]))
    assert numeric.full_score(pd.Series([1.0, 0.0, 1.0, 1.0, 0.0], index=range(5))) == pytest.approx(0.6)
    with pytest.raises(BankError, match="no recorded score"):
        bank.full_score(pd.Series([1.0], index=["zzz"]))


def test_simulated_full_score_counts_fixed_items(fixed_setup):
    """Fails on the code before the fix: full_score was the mean over the bank's 400 items only."""
    bank, matrix = fixed_setup
    for k, model in enumerate(matrix.models):
        whole = float(np.mean(matrix.values[k]))
        bank_only = float(np.mean(matrix.values[k, : bank.n_items]))
        r = simulate_model(bank, matrix, model, SimulationConfig(stopping=StoppingRule(max_items=20)))
        assert r.full_score == pytest.approx(whole)
        assert r.full_score != pytest.approx(bank_only, abs=1e-3)
    df = simulate_matrix(bank, matrix, config=SimulationConfig(stopping=StoppingRule(max_items=20)))
    np.testing.assert_allclose(df["full_score"], matrix.values.mean(axis=1))
    np.testing.assert_allclose(df["abs_error"], (df["accuracy"] - df["full_score"]).abs())
    # the prediction is on the same scale: it counts the 60 fixed items at their calibration mean (0)
    assert (df["accuracy"] <= bank.n_items / bank.n_total + 1e-12).all()


def test_random_sample_scores_draw_from_the_whole_benchmark(fixed_setup):
    bank, matrix = fixed_setup
    y = matrix.values[2]
    acc, irt = random_sample_scores(bank, y, bank.n_total, np.random.default_rng(0))
    assert acc == pytest.approx(bank.full_score(pd.Series(y, index=list(matrix.items))))
    assert 0.0 < irt < bank.n_items / bank.n_total
    with pytest.raises(BankError, match="one score per benchmark item"):
        random_sample_scores(bank, y[: bank.n_items], 10, np.random.default_rng(0))


def test_evaluation_truth_and_random_pool_are_the_benchmark(fixed_setup):
    bank, matrix = fixed_setup
    row = pd.Series(matrix.values[1], index=list(matrix.items))
    outside = pd.Series(1.0, index=[f"x{k}" for k in range(200)])  # not in the bank's benchmark
    runs = pd.DataFrame(held_out_runs(bank, pd.concat([row, outside]), [10], n_reps=2, seed=0,
                                      random_budgets=[bank.n_total]))
    every = runs[(runs.method == "random") & (runs.scoring == "accuracy")]
    np.testing.assert_allclose(every["predicted"], bank.full_score(row))
    loo = leave_one_model_out(matrix, [10], fit_bank=lambda m, held: bank, n_reps=1, random_budgets=[10],
                              models=["m0", "m5"])
    for model, truth in loo.groupby("model")["truth"].first().items():
        assert truth == pytest.approx(matrix.values[matrix.models.index(model)].mean())


@dataclass
class _Item:
    item_id: int
    metadata: dict = field(default_factory=dict)


@dataclass
class _Result:
    item_id: int
    metrics: dict


def test_live_full_score_scores_fixed_items_too(fixed_setup):
    bank, matrix = fixed_setup
    y = matrix.values[3]
    items = [_Item(k, {"question_id": qid}) for k, qid in enumerate(matrix.items)]
    seen = []

    def evaluate(batch):
        seen.extend(it.item_id for it in batch)
        return [_Result(it.item_id, {"acc": y[it.item_id]}) for it in batch]

    assert score_benchmark(bank, items, evaluate) == pytest.approx(y.mean())
    assert sorted(seen) == list(range(bank.n_total))


# ----------------------------------------------------------- CLI: --target-se 0


@pytest.fixture
def cli_files(fixed_setup, tmp_path):
    bank, matrix = fixed_setup
    bank_path = bank.save(tmp_path / "bank.json")
    csv = tmp_path / "m.csv"
    matrix.to_frame().to_csv(csv)
    return bank_path, csv, matrix


def test_cli_simulate_full_score_and_fixed_length(cli_files):
    bank_path, csv, matrix = cli_files
    runner = CliRunner()
    args = ["adaptive", "simulate", str(csv), "--bank", str(bank_path), "--max-items", "80", "--format", "json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    default = pd.DataFrame(json.loads(r.stdout)).set_index("model")
    assert (default["stop_reason"] == "target SE").all() and (default["n_items"] < 80).all()
    np.testing.assert_allclose(default["full_score"], matrix.values.mean(axis=1))
    r = runner.invoke(app, args + ["--target-se", "0"])
    assert r.exit_code == 0, r.output
    fixed = pd.DataFrame(json.loads(r.stdout)).set_index("model")
    assert (fixed["n_items"] == 80).all() and (fixed["stop_reason"] == "item budget").all()
    r = runner.invoke(app, args + ["--target-se", "-0.1"])
    assert r.exit_code == 2 and "0 to switch it off" in r.output
    # the live command checks it before loading any model
    r = runner.invoke(app, ["adaptive", "--model", "no-such-model", "--bank", str(bank_path), "--target-se", "-1"])
    assert r.exit_code == 2 and "0 to switch it off" in r.output


def test_cli_simulate_warns_when_fixed_items_are_not_in_the_matrix(cli_files, tmp_path):
    bank_path, _, matrix = cli_files
    csv = tmp_path / "bank_only.csv"
    matrix.to_frame().iloc[:, :400].to_csv(csv)
    r = CliRunner().invoke(app, ["adaptive", "simulate", str(csv), "--bank", str(bank_path), "--max-items", "10",
                                 "--format", "json"])
    assert r.exit_code == 0, r.output
    assert "60 of the bank's 460 benchmark items are not in the matrix" in r.output


# ------------------------------------------------------- the issue's reproduction

MATRIX_CSV = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "response-matrices"
              / "mmlu_pro_matrix.csv")


@pytest.mark.skipif(not MATRIX_CSV.exists(), reason="MMLU-Pro response matrix not available")
def test_issue_reproduction_deepseek_on_mmlu_pro(tmp_path):
    """Bank without DeepSeek-Coder-V2 (62 items excluded); before the fix full_score was 0.6383 (bank items only)."""
    from sharpbench.adaptive.calibrate import calibrate_bank
    from sharpbench.matrix.io import read_matrix

    held = "DeepSeek-Coder-V2_5shots"
    matrix = read_matrix(MATRIX_CSV)
    bank = calibrate_bank(matrix.drop_models([held]), "no-dsc", benchmark="mmlu_pro")
    assert bank.n_total == matrix.n_items == 12032 and bank.n_total - bank.n_items > 0
    bank_path = bank.save(tmp_path / "no-dsc.json")
    r = CliRunner().invoke(app, ["adaptive", "simulate", str(MATRIX_CSV), "--bank", str(bank_path), "--models", held,
                                 "--max-items", "50", "--target-se", "0", "--format", "json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    truth = float(np.nanmean(matrix.values[matrix.models.index(held)]))  # all 12,032 items, missing cells left out
    assert truth == pytest.approx(0.63627, abs=1e-5)
    assert row["full_score"] == pytest.approx(truth)
    assert row["abs_error"] == pytest.approx(abs(row["accuracy"] - truth))
    assert row["n_items"] == 50 and row["stop_reason"] == "item budget"
