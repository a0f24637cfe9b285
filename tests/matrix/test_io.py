"""Matrix builders: wide CSV/Parquet in both orientations, long tables, lm-eval samples, summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sharpbench.matrix import MatrixError, ResponseMatrix
from sharpbench.matrix.io import read_matrix, write_matrix
from sharpbench.matrix.lmeval import from_lmeval_samples
from sharpbench.matrix.summary import summarize

SHARED = Path(__file__).resolve().parents[2] / "../shared/data/response-matrices"


@pytest.fixture
def small() -> ResponseMatrix:
    vals = np.array([[1, 0, np.nan, 1], [0, 0, 1, 1], [1, np.nan, 1, 1]], dtype=float)
    return ResponseMatrix(vals, ("m1", "m2", "m3"), ("q1", "q2", "q3", "q4"))


def _same(a: ResponseMatrix, b: ResponseMatrix) -> None:
    assert a.models == b.models and a.items == b.items
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize("fmt,suffix", [("csv", ".csv"), ("parquet", ".parquet"), ("long", ".csv")])
def test_roundtrip(small, tmp_path, fmt, suffix):
    path = write_matrix(small, tmp_path / f"m{suffix}", fmt)
    back = read_matrix(path)
    if fmt == "long":  # a long table orders ids by first appearance
        back = back.select(models=list(small.models), items=list(small.items))
    _same(back, small)


def test_items_as_rows(small, tmp_path):
    path = write_matrix(small, tmp_path / "t.csv", "csv", items_as_rows=True)
    _same(read_matrix(path, items_as_rows=True), small)
    with pytest.raises(MatrixError, match="looks transposed"):  # item-like row ids, no flag: refused
        read_matrix(path)
    wrong = read_matrix(path, items_as_rows=False)  # an explicit --models-as-rows is obeyed
    assert wrong.models == small.items


def test_parquet_keeps_all_missing_rows_and_metadata(tmp_path):
    vals = np.array([[1, np.nan], [np.nan, np.nan], [0, 1]], dtype=float)
    meta = pd.DataFrame({"subject": ["math", "law"]}, index=["a", "b"])
    m = ResponseMatrix(vals, ("x", "y", "z"), ("a", "b"), item_meta=meta)
    back = read_matrix(write_matrix(m, tmp_path / "m.parquet"))
    _same(back, m)
    assert back.item_meta["subject"].tolist() == ["math", "law"]


def test_lmeval_samples(tmp_path):
    for model, accs in {"org__small": [1, 0, 1], "org__big": [1, 1, 1]}.items():
        d = tmp_path / model
        d.mkdir()
        (d / "results_2024-01-01T00-00-00.json").write_text(json.dumps({"model_name": model.replace("__", "/")}))
        lines = [json.dumps({"doc_id": i, "filter": "none", "acc": a, "acc_norm": 1 - a, "resps": [[["-1", True]]]}) for i, a in enumerate(accs)]
        (d / "samples_piqa_2024-01-01T00-00-00.jsonl").write_text("\n".join(lines))
        # an older run of the same task must be ignored
        (d / "samples_piqa_2023-01-01T00-00-00.jsonl").write_text(json.dumps({"doc_id": 0, "filter": "none", "acc": 0}))
        (d / "samples_arc_easy_2024-01-01T00-00-00.jsonl").write_text(json.dumps({"doc_id": 7, "filter": "none", "acc": 0}))
    m = from_lmeval_samples([tmp_path])
    assert set(m.models) == {"org/small", "org/big"}
    assert set(m.items) == {"piqa/0", "piqa/1", "piqa/2", "arc_easy/7"}
    frame = m.to_frame()
    assert frame.loc["org/small", "piqa/1"] == 0 and frame.loc["org/big", "piqa/1"] == 1
    assert m.item_meta.loc["arc_easy/7", "task"] == "arc_easy"
    with pytest.warns(UserWarning, match="without metric"):
        norm = read_matrix(tmp_path, metric="acc_norm")  # arc_easy has no acc_norm here
    assert norm.to_frame().loc["org/small", "piqa/1"] == 1 and norm.n_items == 3
    with pytest.raises(MatrixError, match="metric"):
        read_matrix(tmp_path, metric="exact_match")


def test_bad_inputs(tmp_path):
    with pytest.raises(MatrixError, match="no such file"):
        read_matrix(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(MatrixError, match="unsupported"):
        read_matrix(tmp_path / "x.xlsx")
    (tmp_path / "t.csv").write_text("id,a,b\nm1,1,yes\n")
    with pytest.raises(MatrixError, match="non-numeric"):
        read_matrix(tmp_path / "t.csv")
    (tmp_path / "d.csv").write_text("model,item,score\nm,i,1\nm,i,0\n")
    with pytest.raises(MatrixError, match="duplicated"):
        read_matrix(tmp_path / "d.csv")


def test_summary(small):
    s = summarize(small)
    assert (s.n_models, s.n_items, s.n_missing) == (3, 4, 2)
    assert s.items.loc["q4", "constant"] == "all_correct"
    assert s.items.loc["q1", "constant"] == ""
    acc = s.accuracy.loc["m2"]
    assert acc["accuracy"] == pytest.approx(0.5) and acc["ci_low"] < 0.5 < acc["ci_high"]
    assert s.accuracy.loc["m3", "missing"] == 1
    assert s.constant_models == ["m3"]
    d = s.to_dict()
    assert d["constant_items"] == {"all_correct": 2, "all_wrong": 1, "unobserved": 0}  # q3, q4; q2
    assert d["n_constant_items"] == 3


@pytest.mark.skipif(not (SHARED / "chembench_binary_matrix.csv").exists(), reason="shared data missing")
def test_real_matrices_orientation():
    chem = read_matrix(SHARED / "chembench_binary_matrix.csv", items_as_rows=True)
    assert chem.shape == (22, 2854)
    pub = pd.read_csv(SHARED / "chembench_model_scores.csv", index_col=0)["score"]
    acc = chem.model_accuracy()["accuracy"]
    # the published overall scores equal the column means of the source matrix
    common = [m for m in acc.index if m in pub.index]
    assert len(common) >= 20
    np.testing.assert_allclose(acc[common].to_numpy(), pub[common].to_numpy(), atol=1e-6)


# ------------------------------------------------------------------ one rule for every input (issue #15)
def test_pandas_parquet_index_is_the_id_column(small, tmp_path):
    """A wide Parquet written by pandas keeps its ids in the index; the first item is not an id column."""
    small.to_frame().rename_axis("model").to_parquet(tmp_path / "w.parquet")
    _same(read_matrix(tmp_path / "w.parquet"), small)
    small.to_frame().rename_axis("model").reset_index().to_parquet(tmp_path / "c.parquet", index=False)
    _same(read_matrix(tmp_path / "c.parquet"), small)


def test_tsv_and_r_style_header(small, tmp_path):
    small.to_frame().to_csv(tmp_path / "m.tsv", sep="\t")
    _same(read_matrix(tmp_path / "m.tsv"), small)
    # R's write.table: the header has no name for the id column
    body = small.to_frame().to_csv(header=False)
    (tmp_path / "r.csv").write_text(",".join(small.items) + "\n" + body)
    _same(read_matrix(tmp_path / "r.csv"), small)


def test_ids_are_the_files_text(tmp_path):
    (tmp_path / "z.csv").write_text("model,q1,q2\n007,1,0\n1.50,0,1\n")
    assert read_matrix(tmp_path / "z.csv").models == ("007", "1.50")
    (tmp_path / "l.csv").write_text("model,item,score\na,007,1\nb,007,0\n")
    assert read_matrix(tmp_path / "l.csv").items == ("007",)


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("model,q1,q1,q2\nm1,1,0,1\nm2,0,1,1\n", {}, "duplicate item ids: 'q1'"),
        ("model,q1,q2\nm1,1,0\nm1,0,1\n", {}, "duplicate model ids: 'm1'"),
        ("item,m1,m1\nq1,1,0\nq2,0,1\n", {"items_as_rows": True}, "duplicate model ids: 'm1'"),
        ("q1,q2,q3\n1,0,1\n0,1,1\n1,1,0\n", {}, "the id column holds 0/1 scores"),
        ("model,q1,,q3\nm1,1,0,1\n", {}, "item id number 2 is empty"),
        ("model,q1\n,1\nm2,0\n", {}, "model id number 1 is empty"),
        ("model,q1\nm1,1\n", {"id_column": "name"}, "id column 'name' not in the table"),
        ("model,q1\nm1,7\n", {}, "values must lie in [0, 1]"),
    ],
)
def test_bad_ids_name_the_file_and_the_ids(tmp_path, text, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(MatrixError) as info:
        read_matrix(path, **kwargs)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_missing_cells_stay_missing_in_every_format(small, tmp_path):
    paths = [write_matrix(small, tmp_path / "m.csv", "csv"), write_matrix(small, tmp_path / "m.parquet"),
             write_matrix(small, tmp_path / "l.csv", "long")]
    small.to_frame().to_csv(tmp_path / "m.tsv", sep="\t")
    small.to_frame().rename_axis("model").to_parquet(tmp_path / "w.parquet")
    for p in [*paths, tmp_path / "m.tsv", tmp_path / "w.parquet"]:
        back = read_matrix(p).select(models=list(small.models), items=list(small.items))
        np.testing.assert_array_equal(np.isnan(back.values), np.isnan(small.values), err_msg=str(p))


def test_items_join(small, tmp_path):
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps({"question_id": q, "subject": s}) for q, s in
                                                    [("q1", "math"), ("q2", "law"), ("q9", "art")]))
    path = write_matrix(small, tmp_path / "m.csv", "csv")
    m = read_matrix(path, items=tmp_path / "items.jsonl")
    assert m.item_meta["subject"].tolist()[:2] == ["math", "law"] and m.item_meta["subject"].isna().sum() == 2
