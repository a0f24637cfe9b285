"""Read and write response matrices: wide CSV/TSV/Parquet (either orientation), long tables, lm-eval samples.

:func:`read_matrix` is the one reader every command and library entry point
uses (``irt``, ``matrix``, ``calibrate``, ``adaptive``, ``distill``,
``predict``, ``skills``/``rank``, ``report``); item tables join through
:mod:`sharpbench.matrix.items`.

Normalised on-disk form (``write_matrix(..., "parquet")``): a long Parquet
table ``model, item, score`` (observed cells only) with the item and model
ids as strings, plus the two metadata tables in the Parquet key-value
metadata (JSON). It is orientation-free and keeps missing cells implicit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sharpbench.matrix.core import MatrixError, ResponseMatrix
from sharpbench.matrix.items import attach_item_meta, read_item_table
from sharpbench.matrix.lmeval import from_lmeval_samples
from sharpbench.matrix.orientation import resolve_orientation
from sharpbench.matrix.tables import TableFile, check_unique, ids_as_text, read_table, table_format

__all__ = ["read_matrix", "write_matrix", "is_long_table", "LONG_COLUMNS"]

LONG_COLUMNS = ("model", "item", "score")
_META_KEY = b"sharpbench.meta"
_SCORE_IDS = {"0", "1", "0.0", "1.0"}


def is_long_table(frame: pd.DataFrame) -> bool:
    """True when ``frame`` has the columns ``model, item, score``."""
    return set(LONG_COLUMNS) <= set(map(str, frame.columns))


def read_matrix(
    path: str | Path,
    *,
    items_as_rows: bool | None = None,
    fmt: str | None = None,
    id_column: str | None = None,
    metric: str = "acc",
    items: str | Path | pd.DataFrame | None = None,
    item_id_column: str | None = None,
) -> ResponseMatrix:
    """Read a response matrix from any supported source, optionally joining an item table.

    Parameters
    ----------
    path : file or directory
        ``.csv``/``.tsv``/``.parquet``: wide (ids in the first column, or the
        index a pandas-written Parquet file restores; one column per item,
        rows = models; transpose with ``items_as_rows``) or long (columns
        ``model, item, score``, detected automatically). A directory or a
        ``.jsonl`` file: lm-eval ``--log_samples`` output (``metric`` per doc).
    items_as_rows : bool, optional
        Orientation of a wide table. ``None`` (no flag given): rows are models
        unless the ids show they are items, which raises :class:`MatrixError`
        (see :mod:`sharpbench.matrix.orientation`).
    fmt : {"csv", "tsv", "parquet", "lmeval"}, optional
        Overrides detection by suffix.
    id_column : str, optional
        Wide table: the column holding the row ids (default: the first).
    metric : str
        lm-eval samples: the per-doc metric to read.
    items : path or DataFrame, optional
        Item table joined as ``item_meta``: a file read by
        :func:`~sharpbench.matrix.items.read_item_table` (its id column
        ``item_id_column``, default the first of ``item, item_id,
        question_id, id``) or a DataFrame indexed by item id.

    Notes
    -----
    One rule for every input: ids are the file's text (``007`` stays
    ``"007"``); an empty id, an id that occurs twice (as a row or as a
    column), a non-numeric cell or a score outside [0, 1] is a
    :class:`MatrixError` whose message starts with the file's path; empty
    cells are missing responses (NaN), which each analysis skips or refuses
    by name.
    """
    p = Path(path)
    if not p.exists():
        raise MatrixError(f"no such file or directory: {p}")
    if fmt == "lmeval" or (fmt is None and (p.is_dir() or p.suffix.lower() == ".jsonl")):
        m = from_lmeval_samples([p], metric=metric)
    else:
        kind = table_format(p, fmt)
        if kind not in ("csv", "tsv", "parquet"):
            shown = fmt or p.suffix.lstrip(".").lower()
            raise MatrixError(
                f"unsupported matrix format {shown!r} for {p.name}; use csv, tsv, parquet or lm-eval samples"
            )
        m = _read_file(p, kind, items_as_rows, id_column)
    if items is not None:
        if isinstance(items, pd.DataFrame):
            m = attach_item_meta(m, items)
        else:
            m = attach_item_meta(m, read_item_table(items, id_column=item_id_column), source=items)
    return m


def _read_file(p: Path, kind: str, items_as_rows: bool | None, id_column: str | None) -> ResponseMatrix:
    text = [id_column if id_column is not None else 0, "model", "item"]
    table, file_meta = read_table(p, kind, text_columns=text)
    frame = table.frame
    if frame.empty and frame.shape[1]:
        raise MatrixError(f"{p}: only a header row, no rows of scores")
    try:
        if id_column is None and is_long_table(frame):
            check_unique([str(c) for c in frame.columns], "column", p)
            m = _long(frame, p)
            meta = file_meta.get(_META_KEY)
            return _with_meta(m, json.loads(meta)) if meta is not None else m
        return _wide(table, items_as_rows, id_column)
    except MatrixError as exc:  # the core's own checks (non-numeric cells, scores outside [0, 1]): name the file
        if str(exc).startswith(str(p)) or "looks transposed" in str(exc):
            raise
        raise MatrixError(f"{p}: {exc}") from None


def _long(frame: pd.DataFrame, source: Path) -> ResponseMatrix:
    frame = frame.assign(model=ids_as_text(frame["model"], "model", source),
                         item=ids_as_text(frame["item"], "item", source))
    extra = [c for c in frame.columns if c not in LONG_COLUMNS]
    meta = frame.drop_duplicates("item").set_index("item")[extra] if extra else None
    return ResponseMatrix.from_long(frame[list(LONG_COLUMNS)], item_meta=meta)


def _wide(table: TableFile, items_as_rows: bool | None, id_column: str | None) -> ResponseMatrix:
    p, frame = table.path, table.frame
    if id_column is not None:
        if id_column not in frame.columns:
            raise MatrixError(
                f"{p}: id column {id_column!r} not in the table (columns start {list(frame.columns[:5])})"
            )
        ids, body = frame[id_column], frame.drop(columns=id_column)
    elif table.has_index:  # Parquet written from pandas, or a CSV header one name short (R's write.table)
        ids, body = frame.index, frame
    else:
        if frame.shape[1] < 2:
            raise MatrixError(f"{p}: need an id column and at least one score column")
        ids, body = frame.iloc[:, 0], frame.iloc[:, 1:]
    ids, cols = list(ids), list(body.columns)
    items_as_rows = resolve_orientation([str(i) for i in ids], [str(c) for c in cols], items_as_rows, p.name)
    row_kind, col_kind = ("item", "model") if items_as_rows else ("model", "item")
    rows = ids_as_text(ids, row_kind, p)
    cols = ids_as_text(cols, col_kind, p)
    hint = ""
    if set(rows) <= _SCORE_IDS:
        hint = (f"; the id column holds 0/1 scores, so the file seems to lack one: put the {row_kind} ids in "
                "the first column")
    check_unique(rows, row_kind, p, hint)
    check_unique(cols, col_kind, p)
    return ResponseMatrix.from_frame(body.set_axis(rows, axis=0).set_axis(cols, axis=1), items_as_rows=items_as_rows)


def _split_frame(obj: dict | None) -> pd.DataFrame | None:
    if not obj:
        return None
    return pd.DataFrame(obj["data"], index=[str(i) for i in obj["index"]], columns=obj["columns"])


def _with_meta(m: ResponseMatrix, meta: dict) -> ResponseMatrix:
    if meta.get("models") and meta.get("items"):  # restore order and all-missing rows/columns
        frame = m.to_frame().reindex(index=meta["models"], columns=meta["items"])
        m = ResponseMatrix.from_frame(frame)
    im = _split_frame(meta.get("item_meta"))
    mm = _split_frame(meta.get("model_meta"))
    return ResponseMatrix(m.values, m.models, m.items, im if im is not None else pd.DataFrame(),
                          mm if mm is not None else pd.DataFrame())


def write_matrix(m: ResponseMatrix, path: str | Path, fmt: str | None = None, *, items_as_rows: bool = False) -> Path:
    """Write ``m`` as ``parquet`` (normalised long), ``csv`` (wide) or ``long`` (long CSV)."""
    p = Path(path)
    kind = fmt or ("parquet" if p.suffix in (".parquet", ".pq") else "csv")
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        long = m.to_long()
        table = pa.Table.from_pandas(long, preserve_index=False)
        meta = {
            "models": list(m.models),
            "items": list(m.items),
            "item_meta": json.loads(m.item_meta.to_json(orient="split")) if len(m.item_meta.columns) else None,
            "model_meta": json.loads(m.model_meta.to_json(orient="split")) if len(m.model_meta.columns) else None,
        }
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
        pq.write_table(table, p)
    elif kind == "csv":
        frame = m.to_frame()
        frame = frame.T if items_as_rows else frame
        frame.index.name = "item" if items_as_rows else "model"
        frame.to_csv(p)
    elif kind == "long":
        m.to_long().to_csv(p, index=False)
    else:
        raise MatrixError(f"unsupported export format {kind!r}; use parquet, csv or long")
    return p
