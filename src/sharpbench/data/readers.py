"""Read local data files (JSONL, JSON, CSV/TSV, Parquet) into rows with their line numbers."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sharpbench.data.errors import DataFileError

Row = dict[str, Any]
FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")


def infer_format(path: Path) -> str:
    """File format from the suffix (``.jsonl``/``.ndjson``, ``.json``, ``.csv``, ``.tsv``, ``.parquet``)."""
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"ndjson": "jsonl", "pq": "parquet"}.get(suffix, suffix)
    if fmt not in FORMATS:
        raise DataFileError(
            f"{path}: unknown data format '.{suffix}'; use one of {', '.join(FORMATS)} (or set `format`)"
        )
    return fmt


def read_rows(path: Path, fmt: str | None = None) -> tuple[list[Row], list[str]]:
    """Rows of a data file and, for each, where it is (``"line 12"`` or ``"row 3"``) for error messages."""
    if not path.is_file():
        raise DataFileError(f"data file not found: {path}")
    fmt = fmt or infer_format(path)
    try:
        if fmt == "jsonl":
            return _jsonl(path)
        if fmt == "json":
            return _json(path)
        if fmt in ("csv", "tsv"):
            return _csv(path, "\t" if fmt == "tsv" else ",")
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    if fmt == "parquet":
        return _parquet(path)
    raise DataFileError(
        f"{path}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}"
    )


def not_utf8(path: Path) -> DataFileError:
    """The error for a text file that is not UTF-8: file, line, column and the offending byte."""
    raw = Path(path).read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return DataFileError(
            f"{path}: line {line}, column {col}: byte {raw[exc.start]:#04x} is not UTF-8; "
            "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        )
    return DataFileError(f"{path}: not UTF-8 text; save the file as UTF-8")


def iter_jsonl(path: Path, error: type[Exception] = DataFileError) -> Iterator[tuple[int, Row]]:
    """``(line number, object)`` for each non-blank line of a JSONL file.

    Raises
    ------
    error (default DataFileError)
        On a line that is not valid JSON or not a JSON object (the message
        names the file and line); callers pass their own error type.
    """
    try:
        yield from _iter_jsonl(path, error)
    except UnicodeDecodeError:
        raise error(str(not_utf8(path))) from None


def _iter_jsonl(path: Path, error: type[Exception]) -> Iterator[tuple[int, Row]]:
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(
                    f"{path}: line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})"
                ) from exc
            if not isinstance(obj, dict):
                raise error(
                    f"{path}: line {lineno}: expected a JSON object, got {type(obj).__name__}"
                )
            yield lineno, obj


def _jsonl(path: Path) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    where: list[str] = []
    for lineno, obj in iter_jsonl(path):
        rows.append(obj)
        where.append(f"line {lineno}")
    return rows, where


def _json(path: Path) -> tuple[list[Row], list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFileError(
            f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})"
        ) from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataFileError(f"{path}: a .json data file must hold a list of objects")
    return data, [f"element {i}" for i in range(len(data))]


def _csv(path: Path, delimiter: str) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    where: list[str] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        if not reader.fieldnames:
            raise DataFileError(f"{path}: line 1: missing header row")
        n_fields = len(reader.fieldnames)
        try:
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    n = (
                        n_fields
                        + len(row.get(None) or [])
                        - sum(v is None for v in row.values())
                    )
                    raise DataFileError(
                        f"{path}: line {line}: {n} fields, the header has {n_fields}"
                    )
                rows.append(dict(row))
                where.append(f"line {line}")
        except csv.Error as exc:
            raise DataFileError(f"{path}: line {reader.line_num}: {exc}") from exc
    return rows, where


def _parquet(path: Path) -> tuple[list[Row], list[str]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several error types for corrupt files
        raise DataFileError(f"{path}: not a readable Parquet file ({exc})") from exc
    rows = table.to_pylist()
    return rows, [f"row {i + 1}" for i in range(len(rows))]
