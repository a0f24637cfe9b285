"""Combining study results computed apart (other models, tasks, methods, sessions) into one."""

from __future__ import annotations

import dataclasses

import pytest
from elicit_samples import MODELS, TASKS, sample_result

from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.result import ElicitResult


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
