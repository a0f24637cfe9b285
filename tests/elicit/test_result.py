"""What a study returns: a cell's compute time, and a result's JSON round trip."""

from __future__ import annotations

import pytest
from elicit_samples import MODELS, TASKS, sample_result

from sharpbench.elicit.result import ArmScore, ElicitResult, spent_seconds


def test_cell_seconds_sum_the_arms_and_are_unknown_without_every_record():
    cell = sample_result(models=MODELS[:1], tasks=TASKS[:1]).cells[0]
    timed = [a for a in cell.arms if a.method != "vote"]
    assert timed and all(a.seconds is not None for a in timed)
    assert cell.seconds == pytest.approx(sum(a.seconds for a in timed))
    cell.arms.append(ArmScore("vote", "vote", 0.5, cell.n_items, 0, 1e6))  # computes nothing of its own
    assert cell.seconds == pytest.approx(sum(a.seconds for a in timed))
    timed[0].seconds = None  # an arm computed without a record
    assert cell.seconds is None


def test_gold_answers_travel_with_the_per_item_json_only(tmp_path):
    res = sample_result(models=MODELS[:1], tasks=TASKS[:1])
    res.cells[0].gold = ["a", None, "c"]
    assert ElicitResult.load(res.save(tmp_path / "items.json", per_item=True)).cells[0].gold == ["a", None, "c"]
    assert ElicitResult.load(res.save(tmp_path / "summary.json")).cells[0].gold == []


def test_two_arms_read_from_one_stored_run_count_its_seconds_once():
    """gsm8k's step-by-step arm is the plain prompt itself for a model without a chat template."""
    plain = ArmScore("plain", "plain", 0.1, 10, seconds=76.0, run_id="r1")
    cot = ArmScore("cot", "cot", 0.1, 10, seconds=76.0, run_id="r1")
    direct = ArmScore("direct", "direct", 0.2, 10, seconds=21.0, run_id="r2")
    variant = ArmScore("variants", "variant:a", 0.2, 10, seconds=5.0)  # no run id: counted on its own
    cell = sample_result(models=MODELS[:1], tasks=TASKS[:1]).cells[0]
    cell.arms = [plain, cot, direct, variant, variant]
    assert cell.seconds == pytest.approx(76 + 21 + 5 + 5)
    assert spent_seconds([plain, cot]) == 76 and spent_seconds([]) is None
    assert spent_seconds([plain, ArmScore("cot", "cot", 0.1, 10, seconds=None, run_id="r1")]) is None
