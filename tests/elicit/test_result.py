"""Combining study results computed apart (other models, tasks, methods, sessions) into one."""

from __future__ import annotations

import dataclasses

import pytest
from elicit_samples import MODELS, TASKS, sample_result

from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.result import ArmScore, ElicitResult


def test_combine_keeps_every_cell_and_unites_the_methods(tmp_path):
    a = sample_result(models=MODELS[:2])
    b = sample_result(models=MODELS[2:])
    b.settings = {**b.settings, "methods": "plain,probe,extra", "batch_size": 64}
    both = ElicitResult.combine([a, b])
    assert [(c.model, c.task) for c in both.cells] == [(c.model, c.task) for c in a.cells + b.cells]
    methods = both.settings["methods"].split(",")
    assert set(methods) == set(a.settings["methods"].split(",")) | {"plain", "probe", "extra"}
    assert len(methods) == len(set(methods))
    back = ElicitResult.load(both.save(tmp_path / "both.json", per_item=True))
    assert back.cell(MODELS[3][0], TASKS[0][0]).arms[0].correct == b.cells[-len(TASKS)].arms[0].correct


def test_combine_refuses_settings_that_change_the_numbers():
    a, b = sample_result(models=MODELS[:1]), sample_result(models=MODELS[1:2])
    b.settings = {**b.settings, "n_splits": 7}
    with pytest.raises(ElicitError, match="n_splits"):
        ElicitResult.combine([a, b])


def test_combine_refuses_a_cell_twice_and_nothing():
    a = sample_result(models=MODELS[:1])
    twice = ElicitResult([dataclasses.replace(a.cells[0])], dict(a.settings))
    with pytest.raises(ElicitError, match="combine each cell once"):
        ElicitResult.combine([a, twice])
    with pytest.raises(ElicitError, match="at least one"):
        ElicitResult.combine([])


def test_cell_seconds_sum_the_arms_and_are_unknown_without_every_record():
    cell = sample_result(models=MODELS[:1], tasks=TASKS[:1]).cells[0]
    timed = [a for a in cell.arms if a.method != "vote"]
    assert timed and all(a.seconds is not None for a in timed)
    assert cell.seconds == pytest.approx(sum(a.seconds for a in timed))
    cell.arms.append(ArmScore("vote", "vote", 0.5, cell.n_items, 0, 1e6))  # computes nothing of its own
    assert cell.seconds == pytest.approx(sum(a.seconds for a in timed))
    timed[0].seconds = None  # an arm computed without a record
    assert cell.seconds is None
