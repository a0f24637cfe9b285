"""Item tables: one reader (formats, id column, duplicates) and the join onto a matrix (issue #15)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sharpbench.matrix import ITEM_ID_COLUMNS, MatrixError, ResponseMatrix, attach_item_meta, read_item_table

ROWS = [{"question_id": "007", "question": "Why?", "options": ["a", "b"], "category": "law"},
        {"question_id": "12", "question": "How?", "options": ["a", "b", "c"], "category": "math"}]


def _write(tmp_path, fmt: str, rows=ROWS):
    p = tmp_path / f"items.{fmt}"
    frame = pd.DataFrame(rows)
    if fmt == "jsonl":
        p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif fmt == "json":
        p.write_text(json.dumps(rows))
    elif fmt in ("csv", "tsv"):
        frame.drop(columns=["options"], errors="ignore").to_csv(p, index=False, sep="\t" if fmt == "tsv" else ",")
    else:
        frame.to_parquet(p, index=False)
    return p


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "tsv", "parquet"])
def test_every_format_gives_the_same_table(tmp_path, fmt):
    t = read_item_table(_write(tmp_path, fmt))
    assert list(t.index) == ["007", "12"]  # the ids' text, not 7
    assert t.index.name == "item" and "question_id" not in t.columns
    assert t.loc["12", "category"] == "math" and t.loc["007", "question"] == "Why?"


def test_id_column_rule(tmp_path):
    assert ITEM_ID_COLUMNS == ("item", "item_id", "question_id", "id")
    both = [{"id": 1, "item": "a", "x": 1}, {"id": 2, "item": "b", "x": 2}]
    p = _write(tmp_path, "jsonl", both)
    assert list(read_item_table(p).index) == ["a", "b"]  # `item` comes first
    assert list(read_item_table(p, id_column="id").index) == ["1", "2"]
    with pytest.raises(MatrixError, match="no id column 'qid'"):
        read_item_table(p, id_column="qid")
    none = _write(tmp_path, "csv", [{"name": "a", "x": 1}])
    with pytest.raises(MatrixError, match=r"no item id column \(one of item, item_id, question_id, id\); its columns"):
        read_item_table(none)


def test_duplicate_and_empty_ids_are_errors(tmp_path):
    p = _write(tmp_path, "jsonl", [*ROWS, ROWS[0]])
    with pytest.raises(MatrixError, match=r"duplicate item ids: '007' .* in column 'question_id'"):
        read_item_table(p)
    p = _write(tmp_path, "jsonl", [*ROWS, {"question_id": None, "question": "?"}])
    with pytest.raises(MatrixError, match="item id number 3 is empty"):
        read_item_table(p)
    (tmp_path / "d.csv").write_text("item,a,a\nq1,1,2\n")
    with pytest.raises(MatrixError, match="duplicate column ids: 'a'"):
        read_item_table(tmp_path / "d.csv")


def test_bad_files(tmp_path):
    with pytest.raises(MatrixError, match="no such file"):
        read_item_table(tmp_path / "none.jsonl")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(MatrixError, match="unsupported item table format"):
        read_item_table(tmp_path / "x.xlsx")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(MatrixError, match="is empty|the file is empty"):
        read_item_table(tmp_path / "e.csv")
    (tmp_path / "b.jsonl").write_text('{"item": 1}\nnot json\n')
    with pytest.raises(MatrixError, match="line 2 is not JSON"):
        read_item_table(tmp_path / "b.jsonl")


def test_attach_keeps_missing_and_refuses_no_overlap():
    m = ResponseMatrix(np.ones((1, 3)), ("m",), ("007", "12", "99"))
    table = pd.DataFrame({"category": ["law", "math"]}, index=["007", "12"])
    meta = attach_item_meta(m, table).item_meta
    assert meta["category"].tolist()[:2] == ["law", "math"] and pd.isna(meta.loc["99", "category"])
    with pytest.raises(MatrixError, match="none of the matrix's 3 item ids occur in the item table"):
        attach_item_meta(m, pd.DataFrame({"category": ["x"]}, index=["7"]), source="t.csv")
