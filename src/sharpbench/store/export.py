"""Export the store's tables to Parquet or CSV files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sharpbench.choices import STORE_EXPORT_FORMATS as EXPORT_FORMATS
from sharpbench.store.schema import TABLES

if TYPE_CHECKING:  # pragma: no cover
    from sharpbench.store.store import Store

__all__ = ["export_tables", "EXPORT_FORMATS"]


def export_tables(store: "Store", out_dir: str | Path, *, format: str = "parquet") -> list[Path]:
    """Write ``runs, items, choices, generations, artifacts`` to ``out_dir/<table>.<format>``.

    JSON columns are written as text. Returns the written paths.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in TABLES:
        path = out / f"{table}.{format}"
        opts = "(FORMAT parquet)" if format == "parquet" else "(FORMAT csv, HEADER true)"
        target = str(path).replace("'", "''")
        with store.session():
            store.connection.execute(f"COPY (SELECT * FROM {table}) TO '{target}' {opts}")
        written.append(path)
    return written
