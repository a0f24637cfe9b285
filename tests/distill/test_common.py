from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distill_helpers import MMLU_PRO_ITEMS

from sharpbench.distill.common import (
    chance_rates,
    item_features,
    subset_scores,
    top_n_std,
)
from sharpbench.distill.errors import DistillError
from sharpbench.distill.taskfile import read_item_list, write_task_file
from sharpbench.matrix import MatrixError, ResponseMatrix, read_item_table, read_matrix


def test_subset_scores_skip_missing_cells():
    v = np.array([[1, 0, np.nan, 1], [0, np.nan, np.nan, 1.0]])
    s = subset_scores(v, np.array([True, True, True, False]))
    assert s == pytest.approx([0.5, 0.0])
    multi = subset_scores(v, np.array([[True, True, True, True], [False, False, True, False]]))
    assert multi[0] == pytest.approx([2 / 3, 0.5])
    assert np.isnan(multi[1]).all()  # nobody answered item 3: NaN, not 0


def test_top_n_std():
    assert float(top_n_std(np.array([0.1, 0.5, 0.7]), [1, 2])) == pytest.approx(0.1)


def test_item_meta_from_mmlu_pro_jsonl():
    meta = item_features(read_item_table(MMLU_PRO_ITEMS))
    assert len(meta) == 12032
    assert set(meta.columns) >= {"subject", "n_choices", "text"}
    assert meta["n_choices"].max() == 10 and meta["subject"].nunique() == 14


def test_chance_rates_use_n_choices_and_default():
    m = ResponseMatrix(np.ones((2, 3)), ("a", "b"), ("x", "y", "z"),
                       pd.DataFrame({"n_choices": [2, np.nan, 10]}, index=["x", "y", "z"]))
    assert chance_rates(m, default_choices=4) == pytest.approx([0.5, 0.25, 0.1])
    with pytest.raises(DistillError, match="n_choices"):
        chance_rates(m, default_choices=None)


def test_load_matrix_items_as_rows(tmp_path):
    pd.DataFrame({"m1": [1, 0], "m2": [0, 1]}, index=["i1", "i2"]).to_csv(tmp_path / "t.csv")
    m = read_matrix(tmp_path / "t.csv", items_as_rows=True)
    assert m.models == ("m1", "m2") and m.items == ("i1", "i2")
    with pytest.raises(MatrixError, match="no such file"):
        read_matrix(tmp_path / "missing.csv")


def test_task_file_round_trip(tmp_path):
    import tomllib

    p = write_task_file(tmp_path / "s.toml", "mmlu_pro", ["70", "84"], name="mmlu_pro_hard")
    cfg = tomllib.loads(p.read_text())["task"]
    assert cfg == {"name": "mmlu_pro_hard", "base": "mmlu_pro", "item_id_field": "question_id", "item_ids": ["70", "84"]}
    assert read_item_list(p) == ["70", "84"]
    with pytest.raises(DistillError):
        write_task_file(tmp_path / "e.toml", "mmlu_pro", [])
