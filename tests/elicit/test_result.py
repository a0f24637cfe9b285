"""What a study returns: a cell's compute time, and a result's JSON round trip."""

from __future__ import annotations

import pytest
from elicit_samples import MODELS, TASKS, sample_result

from sharpbench.elicit.result import ArmScore, ElicitResult


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
