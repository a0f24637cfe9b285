"""Read and write response matrices: wide CSV/Parquet (either orientation), long tables, lm-eval samples.

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
from sharpbench.matrix.lmeval import from_lmeval_samples
from sharpbench.matrix.orientation import resolve_orientation

__all__ = ["read_matrix", "write_matrix", "is_long_table", "LONG_COLUMNS"]

LONG_COLUMNS = ("model", "item", "score")
_META_KEY = b"sharpbench.meta"


def is_long_table(frame: pd.DataFrame) -> bool:
    """True when ``frame`` has the columns ``model, item, score``."""
    return set(LONG_COLUMNS) <= set(map(str, frame.columns))


def _from_table(
    frame: pd.DataFrame, items_as_rows: bool | None, id_column: str | None, source: str = "the matrix"
) -> ResponseMatrix:
    if is_long_table(frame):
        extra = [c for c in frame.columns if c not in LONG_COLUMNS]
        meta = frame.drop_duplicates("item").set_index("item")[extra] if extra else None
        if meta is not None:
            meta.index = meta.index.map(str)
        return ResponseMatrix.from_long(frame[list(LONG_COLUMNS)], item_meta=meta)
    col = id_column if id_column is not None else frame.columns[0]
    if col not in frame.columns:
        raise MatrixError(f"id column {col!r} not in the table (columns start {list(frame.columns[:5])})")
    wide = frame.set_index(col)
    wide.index = wide.index.map(str)
    wide.columns = wide.columns.map(str)
    items_as_rows = resolve_orientation(wide.index, wide.columns, items_as_rows, source)
    return ResponseMatrix.from_frame(wide, items_as_rows=items_as_rows)


def read_matrix(
    path: str | Path,
    *,
    items_as_rows: bool | None = None,
    fmt: str | None = None,
    id_column: str | None = None,
    metric: str = "acc",
) -> ResponseMatrix:
    """Read a response matrix from any supported source.

    Parameters
    ----------
    path : file or directory
        ``.csv``/``.tsv``/``.parquet``: wide (first column = ids, one column
        per item, rows = models; transpose with ``items_as_rows``) or long
        (columns ``model, item, score``, detected automatically). A directory
        or ``.jsonl`` file: lm-eval ``--log_samples`` output (``metric`` per doc).
    items_as_rows : bool, optional
        Orientation of a wide table. ``None`` (no flag given): rows are models
        unless the ids show they are items, which raises :class:`MatrixError`
        (see :mod:`sharpbench.matrix.orientation`).
    fmt : {"csv", "tsv", "parquet", "lmeval"}, optional
        Overrides detection by suffix.
    """
    p = Path(path)
    if not p.exists():
        raise MatrixError(f"no such file or directory: {p}")
    kind = fmt or ("lmeval" if p.is_dir() or p.suffix == ".jsonl" else p.suffix.lstrip(".").lower())
    if kind == "lmeval":
        return from_lmeval_samples([p], metric=metric)
    if kind in ("csv", "tsv", "txt"):
        try:
            frame = pd.read_csv(p, sep="\t" if kind == "tsv" else ",")
        except pd.errors.EmptyDataError:
            raise MatrixError(f"{p}: the file is empty (no header, no rows)") from None
        except UnicodeDecodeError as exc:
            raise MatrixError(f"{p}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                              "save it as UTF-8") from None
        if frame.empty and frame.shape[1]:
            raise MatrixError(f"{p}: only a header row, no rows of scores")
    elif kind in ("parquet", "pq"):
        import pyarrow.parquet as pq

        table = pq.read_table(p)
        frame = table.to_pandas()
        meta = (table.schema.metadata or {}).get(_META_KEY)
        if meta is not None and is_long_table(frame):
            return _with_meta(_from_table(frame, False, None), json.loads(meta))
    else:
        raise MatrixError(f"unsupported matrix format {kind!r} for {p.name}; use csv, tsv, parquet or lm-eval samples")
    if frame.shape[1] < 2:
        raise MatrixError(f"{p.name}: need an id column and at least one score column")
    return _from_table(frame, items_as_rows, id_column, p.name)


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
