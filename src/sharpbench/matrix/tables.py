"""Tables on disk (CSV, TSV, Parquet, JSON, JSONL) read the one way every matrix and item reader shares.

The rules that :func:`sharpbench.matrix.read_matrix` and
:func:`sharpbench.matrix.read_item_table` build on:

* ids are the text in the file: ``007`` stays ``"007"`` (pandas would read 7),
  a typed Parquet/JSON id is written with ``str`` (``70`` -> ``"70"``);
* column names are the header's text: a second ``q1`` column stays ``q1``
  (pandas would rename it ``q1.1``), so the callers' duplicate checks see it;
* a missing or empty id, or an id that occurs twice, is an error naming it;
* every error is a :class:`~sharpbench.matrix.core.MatrixError` whose message
  starts with the file's path.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from sharpbench.matrix.core import MatrixError

__all__ = ["TEXT_FORMATS", "TableFile", "check_unique", "ids_as_text", "read_table", "table_format"]

#: suffix (without the dot, lower case) -> format name
_SUFFIXES = {"csv": "csv", "txt": "csv", "tsv": "tsv", "tab": "tsv", "parquet": "parquet", "pq": "parquet",
             "json": "json", "jsonl": "jsonl", "ndjson": "jsonl"}
TEXT_FORMATS = ("csv", "tsv")


class TableFile:
    """A table read from disk: the frame, its path, and the id column pandas restored as index (if any)."""

    def __init__(self, path: Path, frame: pd.DataFrame, has_index: bool) -> None:
        self.path = path
        self.frame = frame
        self.has_index = has_index


def table_format(path: Path, fmt: str | None = None) -> str | None:
    """Format name for ``path`` (``fmt`` wins), or None when the suffix is not a table format."""
    if fmt is not None:
        return _SUFFIXES.get(fmt.lower().lstrip("."), fmt.lower())
    return _SUFFIXES.get(path.suffix.lower().lstrip("."))


def ids_as_text(values: Iterable[object], what: str, source: object) -> list[str]:
    """Ids as strings; a missing or empty id is an error saying where (``what``: "model", "item" ...)."""
    out: list[str] = []
    for k, v in enumerate(values):
        missing = v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
        if missing or (isinstance(v, str) and not v.strip()):
            raise MatrixError(f"{source}: {what} id number {k + 1} is empty; every {what} needs an id")
        out.append(v if isinstance(v, str) else str(v))
    return out


def check_unique(ids: Sequence[str], what: str, source: object, hint: str = "") -> None:
    """Raise a :class:`MatrixError` naming the ids that occur more than once."""
    if len(set(ids)) == len(ids):
        return
    counts = pd.Series(list(ids)).value_counts()
    dups = counts[counts > 1]
    shown = ", ".join(repr(i) for i in dups.index[:5]) + (" ..." if len(dups) > 5 else "")
    raise MatrixError(f"{source}: duplicate {what} ids: {shown} ({len(dups)} id(s) occur more than once){hint}")


def _raw_header(path: Path, sep: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f, delimiter=sep), None)
    except UnicodeDecodeError as exc:
        raise MatrixError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                          "save it as UTF-8") from None
    except csv.Error as exc:
        raise MatrixError(f"{path}: cannot read the header row: {exc}") from None
    if not header:
        raise MatrixError(f"{path}: the file is empty (no header, no rows)")
    return header


def _read_text(path: Path, sep: str, text_columns: Sequence[str | int]) -> TableFile:
    header = _raw_header(path, sep)
    positions = {c if isinstance(c, int) else header.index(c) for c in text_columns
                 if isinstance(c, int) or c in header}
    try:
        frame = pd.read_csv(path, sep=sep, dtype={i: str for i in positions if i < len(header)} or None)
    except pd.errors.EmptyDataError:
        raise MatrixError(f"{path}: the file is empty (no header, no rows)") from None
    except UnicodeDecodeError as exc:
        raise MatrixError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                          "save it as UTF-8") from None
    except pd.errors.ParserError as exc:
        raise MatrixError(f"{path}: not a well-formed {'TSV' if sep == chr(9) else 'CSV'} table: {exc}") from None
    has_index = not isinstance(frame.index, pd.RangeIndex)  # the header is one name short: the ids are the index
    if len(frame.columns) == len(header):
        frame.columns = header  # pandas renames a blank name "Unnamed: 0"; the reader wants the text
    return TableFile(path, frame, has_index)


def _read_parquet(path: Path) -> tuple[TableFile, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise MatrixError(f"{path}: not a readable Parquet file ({exc})") from None
    check_unique([n for n in table.column_names if not n.startswith("__index_level_")], "column", path)
    frame = table.to_pandas()
    has_index = not isinstance(frame.index, pd.RangeIndex)
    if has_index and frame.index.nlevels > 1:
        raise MatrixError(f"{path}: a Parquet table with a {frame.index.nlevels}-level index; write one id column")
    return TableFile(path, frame, has_index), dict(table.schema.metadata or {})


def _read_json(path: Path, lines: bool) -> TableFile:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MatrixError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                          "save it as UTF-8") from None
    if not text.strip():
        raise MatrixError(f"{path}: the file is empty (no header, no rows)")
    rows = None
    if not lines:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # a .json file holding JSON lines
        if isinstance(data, list):
            rows = data
        elif isinstance(data, dict):
            try:
                return TableFile(path, pd.DataFrame(data), False)  # {column: [values]}
            except ValueError as exc:
                raise MatrixError(f"{path}: a JSON object that is not a table of columns ({exc})") from None
    if rows is None:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise MatrixError(f"{path}: line {n} is not JSON ({exc.msg})") from None
    if not all(isinstance(r, dict) for r in rows):
        raise MatrixError(f"{path}: expected one JSON object per row")
    return TableFile(path, pd.DataFrame(rows), False)


def read_table(path: Path, fmt: str, *, text_columns: Sequence[str | int] = ()) -> tuple[TableFile, dict]:
    """Read ``path`` as ``fmt`` (see :func:`table_format`); ``text_columns`` keep their text (CSV/TSV).

    Returns the table and, for Parquet, the file's key-value metadata (else ``{}``).
    """
    if fmt in TEXT_FORMATS:
        return _read_text(path, "\t" if fmt == "tsv" else ",", text_columns), {}
    if fmt == "parquet":
        return _read_parquet(path)
    if fmt in ("json", "jsonl"):
        return _read_json(path, fmt == "jsonl"), {}
    raise MatrixError(f"{path}: unsupported table format {fmt!r}")
