"""Item tables (one row per item: metadata, question texts, parameters) and their join onto a matrix.

:func:`read_item_table` is the one reader of item tables (``--items``,
``--item-meta``, the ``<name>_items.jsonl`` beside a matrix). Its rule:

* formats ``.jsonl``, ``.json`` (records, columns, or JSON lines), ``.csv``,
  ``.tsv``, ``.parquet``;
* the id column is ``id_column`` when given, else the first of
  :data:`ITEM_ID_COLUMNS` the table has; none of them is an error listing the
  table's columns;
* ids are the file's text (``007`` stays ``"007"``); an empty id or an id
  that occurs twice is an error naming it (no row is dropped silently);
* empty cells stay missing (NaN): metadata may be incomplete.

:func:`attach_item_meta` joins a table on the matrix's item ids: items the
table lacks get NaN; a table sharing no id with the matrix is an error
(the wrong file, or the wrong id column).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sharpbench.matrix.core import MatrixError, ResponseMatrix
from sharpbench.matrix.tables import check_unique, ids_as_text, read_table, table_format

__all__ = ["ITEM_ID_COLUMNS", "attach_item_meta", "read_item_table"]

#: id columns of an item table, in the order they are looked for
ITEM_ID_COLUMNS = ("item", "item_id", "question_id", "id")


def read_item_table(path: str | Path, *, id_column: str | None = None) -> pd.DataFrame:
    """Read an item table indexed by its (string) item ids; see the module docstring for the rule.

    Parameters
    ----------
    path : str or Path
        ``.jsonl``, ``.json``, ``.csv``, ``.tsv`` or ``.parquet`` file.
    id_column : str, optional
        The column holding the item ids (default: the first of :data:`ITEM_ID_COLUMNS`).

    Returns
    -------
    DataFrame indexed by item id (index name ``item``), the other columns as read.
    """
    p = Path(path)
    if not p.is_file():
        raise MatrixError(f"no such file: {p}" if not p.exists() else f"{p}: an item table must be a file")
    fmt = table_format(p)
    if fmt is None:
        raise MatrixError(
            f"unsupported item table format {p.suffix!r} for {p.name}; use .jsonl, .json, .csv, .tsv or .parquet"
        )
    wanted = [id_column] if id_column is not None else list(ITEM_ID_COLUMNS)
    table, _ = read_table(p, fmt, text_columns=wanted)
    frame = table.frame
    check_unique([str(c) for c in frame.columns], "column", p)
    if table.has_index and frame.index.name is not None:  # a pandas-written Parquet file: the index is a column
        frame = frame.reset_index()
    key = id_column if id_column is not None else next((c for c in ITEM_ID_COLUMNS if c in frame.columns), None)
    if key is None or key not in frame.columns:
        what = (f"no id column {id_column!r}" if id_column is not None
                else f"no item id column (one of {', '.join(ITEM_ID_COLUMNS)})")
        raise MatrixError(f"{p}: {what}; its columns: {list(frame.columns)[:12]}")
    if frame.empty:
        raise MatrixError(f"{p}: only a header row, no items")
    ids = ids_as_text(frame[key].tolist(), "item", p)
    check_unique(ids, "item", p, f" in column {key!r}")
    frame = frame.drop(columns=key)
    frame.index = pd.Index(ids, name="item")
    return frame


def attach_item_meta(
    matrix: ResponseMatrix, table: pd.DataFrame, *, source: object = "the item table"
) -> ResponseMatrix:
    """Return ``matrix`` with ``table``'s columns as item metadata (items the table lacks get NaN).

    Existing metadata columns stay; a column in both gets the suffix ``_items``
    for the table's copy. Raises :class:`MatrixError` when no matrix item id
    occurs in the table (mismatched ids or the wrong id column).
    """
    table = table.copy()
    table.index = table.index.map(str)
    check_unique(list(table.index), "item", source)
    hit = sum(1 for it in matrix.items if it in table.index)
    if hit == 0:
        raise MatrixError(
            f"{source}: none of the matrix's {matrix.n_items} item ids occur in the item table "
            f"(e.g. matrix {list(matrix.items[:2])}, table {list(table.index[:2])}); "
            "is it the right file, with the right id column?"
        )
    meta = table.reindex(list(matrix.items))
    if len(matrix.item_meta.columns):
        meta = matrix.item_meta.join(meta, rsuffix="_items")
    return ResponseMatrix(matrix.values, matrix.models, matrix.items, meta, matrix.model_meta)
