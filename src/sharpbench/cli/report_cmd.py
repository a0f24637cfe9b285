"""CLI command: ``report`` (one self-contained HTML file)."""

from __future__ import annotations

from pathlib import Path

import typer

from sharpbench.cli.common import fail
from sharpbench.errors import EXIT_INPUT

__all__ = ["register"]


def report(
    store: Path | None = typer.Option(None, help="Result store (.duckdb) to report on."),
    matrix: Path | None = typer.Option(None, help="Response matrix (.csv/.parquet, models as rows) to report on."),
    items: Path | None = typer.Option(None, help="Item table (.jsonl/.csv) with metadata for --matrix."),
    items_as_rows: bool | None = typer.Option(
        None, "--items-as-rows/--models-as-rows", help="The matrix file has one row per item / per model (default: per model, checked)."
    ),
    output: Path = typer.Option(Path("report.html"), "-o", "--output", help="HTML file to write."),
    title: str = typer.Option("sharpbench report", help="Report title."),
    n_boot: int = typer.Option(30, help="Bootstrap resamples for rank intervals."),
    min_items: int = typer.Option(
        10, min=1, help="Result and calibration rows (model x task group) with fewer items are listed, not plotted."
    ),
) -> None:
    """Write one self-contained HTML report (plots embedded, no network) from a store and/or a matrix."""
    from sharpbench.report.build import build_report

    if store is None and matrix is None:
        default = Path("sharpbench.duckdb")
        if not default.exists():
            raise fail("nothing to report: pass --store sharpbench.duckdb or --matrix m.csv", EXIT_INPUT)
        store = default
    try:
        m = None
        if matrix is not None:
            from sharpbench.matrix import read_matrix

            m = read_matrix(matrix, items_as_rows=items_as_rows, items=items)
        out = build_report(output, store_path=store, matrix=m, matrix_source=matrix.name if matrix else "",
                           title=title, n_boot=n_boot, min_items=min_items)
    except OSError as exc:  # the output folder is missing or read-only
        raise fail(f"cannot write {output}: {exc.strerror or exc}; pass -o a path you can write to") from None
    typer.echo(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


def register(app: typer.Typer) -> None:
    """Add ``report`` to the main app."""
    app.command("report")(report)
