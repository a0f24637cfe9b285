"""CLI commands ``sharpbench results``: list and show stored runs, export the store or a response matrix,
import lm-eval samples, merge stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from sharpbench.choices import MATRIX_FORMATS, STORE_EXPORT_FORMATS
from sharpbench.cli.common import App, choice_help, fail
from sharpbench.cli.output import Output, check_format, format_option, pm, print_json
from sharpbench.errors import EXIT_INPUT

results_app = App(
    help="Stored runs: list and show them, export the store or a matrix, import lm-eval --log_samples output.",
    no_args_is_help=False,
)

_STORE_OPT = typer.Option(Path("sharpbench.duckdb"), "--store", "-s", help="DuckDB result store.")


def register(app: typer.Typer) -> None:
    """Add the ``results`` command group to the main app."""
    app.add_typer(results_app, name="results")


@results_app.callback(invoke_without_command=True)
def results_list(
    ctx: typer.Context,
    store: Path = _STORE_OPT,
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Only these model ids (repeatable)."),
    task: Optional[List[str]] = typer.Option(None, "--task", "-t", help="Only these tasks (repeatable)."),
    fmt: str = format_option(),
) -> None:
    """Table of stored runs (model, task, n-shot, dtype, items, acc, acc_norm, when)."""
    check_format(fmt)
    if ctx.invoked_subcommand is not None:
        return
    from sharpbench.store import Store

    with Store(store, read_only=True, shared=True) as st:
        runs = st.runs(models=model or None, tasks=task or None)
    rows = [_row(r) for r in runs.to_dict("records")]
    with Output(fmt) as out:
        out.rows(rows, title=f"runs in {store}", display=_shown(rows), empty=f"no stored runs match in {store}")


def _row(run: dict[str, Any]) -> dict[str, Any]:
    from sharpbench.store.store import shown_status

    metrics = run.get("metrics") or {}

    def pair(name: str) -> tuple[float | None, float | None]:
        v = metrics.get(name)
        if not v:
            return None, None
        return v[0], v[1]

    acc, acc_se = pair("acc")
    accn, accn_se = pair("acc_norm")
    kind = run.get("kind") if not _na(run.get("kind")) else "multiple_choice"
    primary = run.get("primary_metric") if not _na(run.get("primary_metric")) else "acc"
    score, score_se = pair(primary)
    # finished_at is NaT (not None) for a run still being written: show when it started
    when = run.get("finished_at") if not _na(run.get("finished_at")) else run.get("created_at")
    return {
        "run_id": run["run_id"], "model": run["model_id"], "task": run["task"], "group": run.get("task_group"),
        "num_fewshot": int(run["num_fewshot"]), "dtype": run["dtype"], "backend": run["backend"],
        "n_items": int(run["n_items"]), "n_total": None if _na(run.get("n_total")) else int(run["n_total"]),
        "acc": acc, "acc_stderr": acc_se, "acc_norm": accn, "acc_norm_stderr": accn_se,
        "status": shown_status(run), "source": run.get("source"),
        "when": None if _na(when) else str(when)[:19],
        "kind": kind, "metric": primary, "score": score, "score_stderr": score_se,
    }


def _na(x: Any) -> bool:
    import pandas as pd

    try:
        return x is None or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's cells: ``items`` as done/total, value ± stderr, the run id's first 10 characters."""
    # Generative runs have no acc: a store holding any shows each run's primary metric too.
    mixed = any(r["kind"] != "multiple_choice" for r in rows)
    shown = []
    for r in rows:
        row = {"model": r["model"], "task": r["task"], "n-shot": r["num_fewshot"], "dtype": r["dtype"],
               "items": f"{r['n_items']}/{r['n_total']}" if r["n_total"] else str(r["n_items"]),
               "acc": pm(r["acc"], r["acc_stderr"]), "acc_norm": pm(r["acc_norm"], r["acc_norm_stderr"])}
        if mixed:
            row.update(kind=r["kind"], metric=r["metric"], score=pm(r["score"], r["score_stderr"]))
        shown.append({**row, "status": r["status"], "when": r["when"], "run": r["run_id"][:10]})
    return shown


@results_app.command("export")
def results_export(
    out: Path = typer.Option(..., "--output", "-o", help="Folder for <table>.<format> files."),
    store: Path = _STORE_OPT,
    fmt: str = typer.Option(STORE_EXPORT_FORMATS[0], "--format", "-f", help=f"{choice_help(STORE_EXPORT_FORMATS)}."),
    force: bool = typer.Option(False, "--force", help="Overwrite export files already in the folder."),
) -> None:
    """Export runs, items, choices, generations and artifacts to Parquet (or CSV) files."""
    import duckdb

    from sharpbench.store import Store
    from sharpbench.store.schema import TABLES

    if fmt not in STORE_EXPORT_FORMATS:
        raise fail(f"unknown export format {fmt!r}; choose one of {', '.join(STORE_EXPORT_FORMATS)}", EXIT_INPUT)
    if out.exists() and not out.is_dir():
        raise fail(f"{out} is a file; -o names the folder to write {', '.join(f'{t}.{fmt}' for t in TABLES)} into", EXIT_INPUT)
    there = [out / f"{t}.{fmt}" for t in TABLES if (out / f"{t}.{fmt}").exists()]
    if there and not force:
        raise fail(f"{out} already holds {', '.join(p.name for p in there)}; pass --force to overwrite", EXIT_INPUT)
    try:
        with Store(store, read_only=True, shared=True) as st:
            paths = st.export(out, format=fmt)
    except (OSError, duckdb.IOException) as exc:
        why = getattr(exc, "strerror", None) or str(exc).split(": ", 1)[-1]
        raise fail(f"cannot write the export to {out}: {why}; pass -o a folder you can write to") from None
    for p in paths:
        typer.echo(str(p))


@results_app.command("import-lmeval")
def results_import_lmeval(
    path: Path = typer.Argument(..., help="lm-eval output folder (or one samples_<task>_<date>.jsonl)."),
    model_name: str = typer.Option(..., "--model-name", help="Model id to store the runs under."),
    store: Path = _STORE_OPT,
    num_fewshot: Optional[int] = typer.Option(None, "--num-fewshot", min=0,
                                              help="Override the n-shot read from results_*.json."),
) -> None:
    """Import lm-eval ``--log_samples`` output as runs of MODEL_NAME."""
    from sharpbench.store import Store
    from sharpbench.store.lmeval_import import import_lmeval

    with Store(store, shared=True) as st:
        run_ids = import_lmeval(st, path, model_name, num_fewshot=num_fewshot)
        runs = st.runs(run_ids=run_ids)
    for r in runs.to_dict("records"):
        typer.echo(f"imported {r['task']}: {r['n_items']} items as model {model_name!r} (run {r['run_id']})")


@results_app.command("merge")
def results_merge(
    stores: List[Path] = typer.Argument(..., help="Two or more sharpbench stores to merge."),
    out: Path = typer.Option(..., "--output", "-o", help="The merged store to write (a new file)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT if it is already a sharpbench store."),
) -> None:
    """Merge stores into a new one: runs by run key, items by (run, item id), each kept once.

    An item stored in two inputs with different content hashes (scored on
    different data) is refused, naming both files.
    """
    from sharpbench.store.merge import merge_stores

    if len(stores) < 2:
        raise fail("results merge needs at least two stores: sharpbench results merge A.duckdb B.duckdb -o C.duckdb", EXIT_INPUT)
    summary = merge_stores(stores, out, force=force)
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"merged {len(stores)} stores: {summary.n_runs} runs, {summary.n_items} items "
        f"({summary.n_duplicates} stored in more than one input, kept once), {summary.n_artifacts} artifacts"
    )
    typer.echo(f"wrote {out}")


@results_app.command("show")
def results_show(
    run: str = typer.Argument(..., help="Run id, or its first characters as `sharpbench results` shows them."),
    item: Optional[int] = typer.Option(None, "--item", "-i", min=0,
                                       help="Show this item in full: prompt, every sample's generation, "
                                            "extracted answer and verdict per filter (or the choices' logliks)."),
    store: Path = _STORE_OPT,
    fmt: str = typer.Option("text", "--format", "-f", help="text | json."),
) -> None:
    """A stored run: kind, setup, metrics per filter, sample statistics; or one item with --item N."""
    from sharpbench.cli.results_view import item_detail, item_text, run_summary, summary_text
    from sharpbench.store import Store

    if fmt not in ("text", "json"):
        raise fail(ValueError(f"unknown format {fmt!r}; choose text or json"), EXIT_INPUT)
    with Store(store, read_only=True, shared=True) as st, st.session():
        row = st.find_run(run)
        data = run_summary(st, row) if item is None else item_detail(st, row, item)
    if fmt == "json":
        print_json(data)
    else:
        typer.echo(summary_text(data) if item is None else item_text(data))


@results_app.command("matrix")
def results_matrix(
    out: Path = typer.Option(..., "--output", "-o", help="File to write (.parquet: normalised long; else CSV)."),
    store: Path = _STORE_OPT,
    metric: Optional[str] = typer.Option(
        None, "--metric",
        help="Per-item metric of the cells: acc, acc_norm, ... or 'exact_match,<filter>' for generative runs "
             "(default: each run's primary metric: acc, or the first filter's exact_match).",
    ),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Only these model ids (repeatable)."),
    task: Optional[List[str]] = typer.Option(None, "--task", "-t", help="Only these tasks (repeatable)."),
    run: Optional[List[str]] = typer.Option(None, "--run", help="Only these run ids (repeatable)."),
    fmt: Optional[str] = typer.Option(
        None, "--format", "-f",
        help=f"{choice_help(MATRIX_FORMATS)}: wide CSV, normalised long Parquet, long CSV (default: by suffix).",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
) -> None:
    """Write the models x items response matrix of stored runs, for `irt fit`, `distill`, `adaptive`, ..."""
    from sharpbench.matrix.io import write_matrix
    from sharpbench.store import Store

    kind = fmt or ("parquet" if out.suffix.lower() in (".parquet", ".pq") else "csv")
    if kind not in MATRIX_FORMATS:
        raise fail(f"unknown --format {kind!r}; use {', '.join(MATRIX_FORMATS)}", EXIT_INPUT)
    if out.is_dir():
        raise fail(f"{out} is a folder; -o names the file to write", EXIT_INPUT)
    if out.exists() and not force:
        raise fail(f"{out} exists; pass --force to overwrite it", EXIT_INPUT)
    with Store(store, read_only=True, shared=True) as st, st.session():
        run_ids = [st.find_run(r)["run_id"] for r in run] if run else None
        m = st.response_matrix(runs=run_ids, tasks=task or None, models=model or None, metric=metric)
    write_matrix(m, out, kind)
    cells = metric or "each run's primary metric"
    typer.echo(f"wrote {out} ({kind}): {m!r}, cells: {cells}")
