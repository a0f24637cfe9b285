"""CLI commands ``sharpbench matrix import/info/export``: response matrices in and out."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from sharpbench.choices import MATRIX_FORMATS
from sharpbench.cli.common import App, choice_help, fail
from sharpbench.cli.output import Output, cell, check_format, format_option, interval
from sharpbench.errors import EXIT_INPUT

matrix_app = App(help="Response matrices (models x items): import, inspect, export.", no_args_is_help=True)

_SRC_HELP = (
    "Matrix file or folder: wide CSV/TSV/Parquet (first column = ids; rows = models unless "
    "--items-as-rows), long table (columns model,item,score), or lm-eval --log_samples output."
)


_ORIENT_HELP = (
    "Wide input: one row per item (--items-as-rows) or per model (--models-as-rows). Without either, rows "
    "are models, and a file whose ids say otherwise is refused."
)


def register(app: typer.Typer) -> None:
    """Add the ``matrix`` command group to the main app."""
    app.add_typer(matrix_app, name="matrix")


def _read(src: Path, items_as_rows: bool | None, metric: str, binarize: float | None):
    from sharpbench.matrix.io import read_matrix

    m = read_matrix(src, items_as_rows=items_as_rows, metric=metric)
    return m.binarize(binarize) if binarize is not None else m


@matrix_app.command("import")
def matrix_import(
    src: Path = typer.Argument(..., help=_SRC_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Normalised Parquet to write (long: model,item,score)."),
    items_as_rows: bool | None = typer.Option(None, "--items-as-rows/--models-as-rows", help=_ORIENT_HELP),
    metric: str = typer.Option("acc", "--metric", help="lm-eval samples: the per-doc metric to read."),
    binarize: float | None = typer.Option(None, "--binarize", help="Scores >= this become 1, others 0."),
) -> None:
    """Read any supported format and write the normalised Parquet."""
    from sharpbench.matrix.io import write_matrix

    m = _read(src, items_as_rows, metric, binarize)
    write_matrix(m, out, "parquet")
    Console(soft_wrap=True).print(f"wrote {out}: {m!r}", markup=False)


@matrix_app.command("info")
def matrix_info(
    src: Path = typer.Argument(..., help=_SRC_HELP),
    items_as_rows: bool | None = typer.Option(None, "--items-as-rows/--models-as-rows", help=_ORIENT_HELP),
    metric: str = typer.Option("acc", "--metric", help="lm-eval samples: the per-doc metric to read."),
    fmt: str = format_option(help="csv: the accuracy table."),
    confidence: float = typer.Option(0.95, "--confidence", help="Level of the accuracy confidence intervals."),
) -> None:
    """Shape, missing cells, accuracy per model with CIs, item p-values, constant items."""
    check_format(fmt)
    from sharpbench.matrix.summary import summarize

    m = _read(src, items_as_rows, metric, None)
    s = summarize(m, confidence)
    d = s.to_dict()
    with Output(fmt) as out:
        ci = d["constant_items"]
        q = d["item_pvalues"]["quantiles"]
        out.note(f"{s.n_models} models x {s.n_items} items; missing {s.n_missing} cells "
                 f"({100 * s.missing_fraction:.2f}%); binary: {s.is_binary}")
        out.note(f"constant items: {d['n_constant_items']} (all correct {ci['all_correct']}, all wrong "
                 f"{ci['all_wrong']}, unobserved {ci['unobserved']}); constant models: {s.constant_models or 'none'}")
        out.note(f"item p-values: mean {cell(d['item_pvalues']['mean'])}, 10/50/90%: "
                 + ", ".join(cell(v) for v in q.values() if v is not None))
        out.fields({k: v for k, v in d.items() if k != "accuracy"})
        acc = s.accuracy.sort_values("accuracy", ascending=False) if out.is_table else s.accuracy
        out.rows(acc, name="accuracy",
                 title=f"Accuracy per model ({confidence * 100:g}% CI{', Wilson' if _unit(m) else ''})",
                 columns=("model", "accuracy", "ci", "n_items", "missing"),
                 display=[{"model": model, "accuracy": r.accuracy, "ci": interval(r.ci_low, r.ci_high),
                           "n_items": int(r.n_items), "missing": int(r.missing)} for model, r in acc.iterrows()])


def _unit(m) -> bool:
    """All scores in [0, 1]: the CIs are Wilson intervals (see ``ResponseMatrix.model_accuracy``)."""
    seen = m.values[m.observed]
    return bool(seen.size) and bool(seen.min() >= 0 and seen.max() <= 1)


@matrix_app.command("export")
def matrix_export(
    src: Path = typer.Argument(..., help=_SRC_HELP),
    out: Path = typer.Option(..., "--out", "--output", "-o", help="File to write."),
    fmt: str = typer.Option(
        "csv", "--format", "-f", "--to",
        help=f"{choice_help(MATRIX_FORMATS)}: wide CSV, normalised long Parquet, long CSV; --to is the old name.",
    ),
    items_as_rows: bool | None = typer.Option(None, "--items-as-rows/--models-as-rows", help=_ORIENT_HELP),
    out_items_as_rows: bool = typer.Option(False, "--out-items-as-rows", help="Wide CSV output with one row per item."),
    metric: str = typer.Option("acc", "--metric", help="lm-eval samples: the per-doc metric to read."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
) -> None:
    """Write a matrix as wide CSV, normalised Parquet or a long table (``--format``, as ``results export``)."""
    from sharpbench.matrix.io import write_matrix

    if fmt not in MATRIX_FORMATS:
        raise fail(f"unknown --format {fmt!r}; use {', '.join(MATRIX_FORMATS)}", EXIT_INPUT)
    if out.is_dir():
        raise fail(f"{out} is a folder; -o names the file to write", EXIT_INPUT)
    if out.exists() and not force:
        raise fail(f"{out} exists; pass --force to overwrite it", EXIT_INPUT)
    m = _read(src, items_as_rows, metric, None)
    write_matrix(m, out, fmt, items_as_rows=out_items_as_rows)
    Console(soft_wrap=True).print(f"wrote {out} ({fmt}): {m!r}", markup=False)
