"""benchmarks/elicit_by_subtask.py: a saved cell's arms split by subtask add up to the cell's own scores."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CELL = ROOT / "benchmarks" / "results" / "elicit_cells" / "qwen2.5-coder-1.5b__agieval_en.json"
_spec = importlib.util.spec_from_file_location("elicit_by_subtask", ROOT / "benchmarks" / "elicit_by_subtask.py")
by_subtask = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("elicit_by_subtask", by_subtask)
_spec.loader.exec_module(by_subtask)

MATH = {"agieval_aqua_rat", "agieval_sat_math"}


@pytest.fixture(scope="module")
def cell():
    return json.loads(CELL.read_text())["cells"][0]


@pytest.fixture(scope="module")
def subtasks(cell):
    return by_subtask.cell_items(cell)


def test_items_are_the_saved_cells_spread_over_the_seven_subsets(cell, subtasks):
    assert len(subtasks) == cell["n_items"] == 200
    counts = {s: subtasks.count(s) for s in set(subtasks)}
    assert len(counts) == 7 and set(counts.values()) == {28, 29}


def test_groups_add_up_to_the_arms_accuracy_and_gains_are_paired(cell, subtasks):
    arms = ["plain", "cot", "probe"]
    correct = by_subtask.correct_by_arm(cell, arms)
    saved = {a["arm"]: a["accuracy"] for a in cell["arms"]}
    rows = by_subtask.group_rows(subtasks, correct, {"math": MATH}, n_boot=500, seed=0)
    assert [r["group"] for r in rows] == ["math"] * 3 + ["other"] * 3
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        total = sum(r["accuracy"] * r["n"] for r in mine) / 200
        assert total == pytest.approx(saved[arm], abs=1e-3)
    for r in rows:
        if r["arm"] == "plain":
            assert r["gain"] == 0 and r["low"] == 0 == r["high"]  # paired with itself: no spread
        else:
            assert r["low"] <= r["gain"] <= r["high"]
    # the split the RESULTS quote: step by step gains on the computed subsets, and they exclude 0
    cot_math = next(r for r in rows if r["group"] == "math" and r["arm"] == "cot")
    assert cot_math["n"] == 57 and cot_math["accuracy"] == pytest.approx(39 / 57)
    assert cot_math["low"] > 0


def test_an_arm_the_cell_lacks_and_other_items_are_refused(cell):
    with pytest.raises(SystemExit, match="not in the cell"):
        by_subtask.correct_by_arm(cell, ["plain", "sc@8"])
    other = copy.deepcopy(cell)
    other["gold"] = list(np.roll(other["gold"], 1))
    with pytest.raises(SystemExit, match="not the saved cell's items"):
        by_subtask.cell_items(other)


def test_a_group_naming_no_subtask_of_the_cell_is_refused(cell, subtasks):
    correct = by_subtask.correct_by_arm(cell, ["plain"])
    with pytest.raises(SystemExit, match="none of"):
        by_subtask.group_rows(subtasks, correct, {"x": {"mmlu_anatomy"}}, n_boot=50)


def test_cli_prints_both_tables(capsys):
    by_subtask.main([str(CELL), "--arms", "plain,cot", "--group", "math=agieval_aqua_rat,agieval_sat_math",
                     "--n-boot", "200"])
    out = capsys.readouterr().out
    assert "| agieval_sat_math | 28 | 7 | 21 |" in out
    assert "| math | 57 | cot | 0.684 |" in out
