"""Reading a response matrix file (plus an optional item table) for the insight commands."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sharpbench.insight.items import attach_item_meta, load_item_table
from sharpbench.insight.stats import InsightError
from sharpbench.matrix import ResponseMatrix

__all__ = ["read_matrix"]


def read_matrix(
    path: str | Path, items: str | Path | None = None, *, items_as_rows: bool | None = None
) -> ResponseMatrix:
    """Read a wide matrix (``.csv`` or ``.parquet``; first column = row ids) and join item metadata.

    Rows are models unless ``items_as_rows``; ``None`` lets
    :func:`sharpbench.matrix.orientation.resolve_orientation` refuse a transposed-looking file. ``items`` is a JSONL/CSV item
    table (e.g. ``mmlu_pro_items.jsonl``) whose id column matches the item ids.
    """
    p = Path(path)
    if not p.exists():
        raise InsightError(f"matrix file {p} does not exist")
    if p.suffix.lower() == ".parquet":
        frame = pd.read_parquet(p)
    elif p.suffix.lower() in (".csv", ".tsv"):
        try:
            frame = pd.read_csv(p, index_col=0, sep="\t" if p.suffix.lower() == ".tsv" else ",")
        except pd.errors.EmptyDataError:
            raise InsightError(f"matrix file {p} is empty (no header, no rows)") from None
        except UnicodeDecodeError as exc:
            raise InsightError(f"matrix file {p} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                               f"{exc.start}); save it as UTF-8") from None
        if frame.empty and len(frame.columns):
            raise InsightError(f"matrix file {p} has only a header row, no rows of scores")
    else:
        raise InsightError(f"unsupported matrix file type {p.suffix!r}; use .csv, .tsv or .parquet")
    if frame.empty:
        raise InsightError(f"matrix file {p} holds no cells")
    from sharpbench.matrix.orientation import resolve_orientation

    items_as_rows = resolve_orientation(frame.index, frame.columns, items_as_rows, p.name)
    matrix = ResponseMatrix.from_frame(frame, items_as_rows=items_as_rows)
    if items is not None:
        matrix = attach_item_meta(matrix, load_item_table(items))
    return matrix
