"""CLI: ``sharpbench calibrate`` (fit an item bank) and ``sharpbench adaptive`` (run / simulate a CAT)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from sharpbench.choices import ABILITY_METHODS, IRT_MODELS, SELECTION_METHODS
from sharpbench.cli.common import App, backend_help, choice_enum, dtype_help, fail
from sharpbench.cli.output import Output, cell, check_format, format_option, interval
from sharpbench.errors import EXIT_INPUT

adaptive_app = App(
    name="adaptive",
    help="Measure a model adaptively: a few dozen items picked by the current ability estimate.",
    invoke_without_command=True,
    no_args_is_help=False,
)


Selection = choice_enum("Selection", SELECTION_METHODS)
Ability = choice_enum("Ability", ABILITY_METHODS)


def _print_result(result: Any, fmt: str) -> None:
    lo, hi = result.accuracy_ci
    tlo, thi = result.theta_ci()
    shown = [
        ("ability theta ± SE", f"{result.theta:+.3f} ± {result.se:.3f}  [{tlo:+.2f}, {thi:+.2f}]"),
        (f"predicted full accuracy ({result.confidence:.0%} CI)", f"{cell(result.accuracy)}  {interval(lo, hi)}"),
        ("accuracy on administered items", cell(result.observed_accuracy)),
        ("items administered", str(result.n_items)),
        ("stopped because", result.stop_reason),
    ]
    if result.skipped:
        shown.append(("items skipped (errors)", str(len(result.skipped))))
    if result.full_score is not None:
        shown.append(("full-benchmark score",
                      f"{cell(result.full_score)} (CI covers: {cell(result.covers(result.full_score))})"))
    with Output(fmt) as out:
        out.record(result.summary(), display=shown,
                   title=f"Adaptive test: {result.model or ''} on {result.bank} ({result.benchmark})")
        out.fields({"items": result.items, "responses": result.responses})
        out.note("items: " + " ".join(result.items))


ORIENT_HELP = ("The matrix has one row per item (--items-as-rows) or per model (--models-as-rows); without "
               "either, rows are models and a file whose ids say otherwise is refused.")
TARGET_SE_HELP = ("Stop once the ability SE is at most this (after --min-items); 0 switches it off: a fixed-length "
                  "test of --max-items items (Fluid Benchmarking's protocol).")


def _target_se(value: float | None) -> float | None:
    """``--target-se``: 0 (or no value) switches the SE rule off; negative values are refused."""
    if value is None or value == 0:
        return None
    if value < 0:
        raise fail(f"--target-se must be > 0, or 0 to switch it off (fixed-length test); got {value}", EXIT_INPUT)
    return value


def _make_test(bank: Any, *, selection: Selection, ability: Ability, max_items: int, target_se: float | None,
               theta_tol: float | None, min_items: int, start: str, randomesque: int, balance: str | None,
               seed: int, model: str | None = None, exclude=None) -> Any:
    from sharpbench.adaptive.cat import AdaptiveTest, StoppingRule
    from sharpbench.adaptive.selection import SelectionRule

    return AdaptiveTest(
        bank, selection=SelectionRule(selection.value, randomesque=randomesque, balance=balance),
        stopping=StoppingRule(max_items=max_items, target_se=_target_se(target_se), theta_tol=theta_tol,
                              min_items=min_items),
        ability=ability.value, start=start, seed=seed, model=model, exclude=exclude,
    )


def _run_live(model: str, bank_name: str, task_name: str | None, *, store_path: str, dtype: str,
              device: str | None, backend: str, full: bool, plot: Path | None, fmt: str,
              test_opts: dict[str, Any]) -> None:
    from sharpbench.adaptive.bank import ItemBank
    from sharpbench.adaptive.live import make_evaluator, run_live, score_benchmark
    from sharpbench.data.registry import get_task
    from sharpbench.models import load_model
    from sharpbench.store import Store

    bank = ItemBank.load(bank_name)
    task = get_task(task_name or bank.benchmark)
    bank.check_benchmark(task.name)
    items = task.items()
    backend_obj = load_model(model, dtype=dtype, device=device, backend=backend)
    with Store(store_path, shared=True) as store:
        evaluate = make_evaluator(backend_obj, task, store)
        full_score = None
        if full:  # every benchmark item, fixed-score ones included: the prediction counts them too
            full_score = score_benchmark(bank, items, evaluate)
        test = _make_test(bank, model=model, **test_opts)
        result = run_live(test, items, evaluate, full_score=full_score)
        payload = result.to_artifact()
        if plot is not None:
            result.plot(plot)
            payload["plot"] = str(plot)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        store.save_artifact("adaptive", f"{model}:{bank.name}:{stamp}", payload)
    _print_result(result, fmt)


@adaptive_app.callback()
def adaptive(
    ctx: typer.Context,
    model: str | None = typer.Option(None, "--model", "-m", help="Model short name, local path or hub id."),
    bank: str | None = typer.Option(None, "--bank", "-b", help="Item bank name (~/.cache/sharpbench/banks) or path."),
    task: str | None = typer.Option(None, "--task", "-t", help="Task to run (default: the bank's benchmark)."),
    max_items: int = typer.Option(60, "--max-items", help="Item budget."),
    target_se: float = typer.Option(0.25, "--target-se", help=TARGET_SE_HELP),
    theta_tol: float | None = typer.Option(None, "--theta-tol", help="Stop once theta moves less than this."),
    min_items: int = typer.Option(5, "--min-items", help="Never stop on SE/tolerance before this many items."),
    selection: Selection = typer.Option(SELECTION_METHODS[0], "--selection", help="Next-item rule."),
    ability: Ability = typer.Option(ABILITY_METHODS[0], "--ability", help="Ability update (N(0,1) prior)."),
    start: str = typer.Option("prior", "--start", help="First-item theta: prior, bank (calibration mean) or a number."),
    randomesque: int = typer.Option(1, "--randomesque", help="Exposure control: pick among the k most informative."),
    balance: str | None = typer.Option(None, "--balance", help="Bank metadata column to balance content on (e.g. category)."),
    seed: int = typer.Option(0, "--seed"),
    store: str = typer.Option("sharpbench.duckdb", "--store", help="Result store (DuckDB file)."),
    dtype: str = typer.Option("float32", "--dtype", help=dtype_help()),
    device: str | None = typer.Option(None, "--device"),
    backend: str = typer.Option("hf", "--backend", help=backend_help()),
    full: bool = typer.Option(
        False, "--full-score", help="Also score every benchmark item (bank + fixed-score items) to check the CI (slow)."
    ),
    plot: Path | None = typer.Option(None, "--plot", help="Write the trajectory plot (PNG) here."),
    fmt: str = format_option(),
) -> None:
    """Run an adaptive test on a live model (also: `sharpbench adaptive run`, `sharpbench adaptive simulate`)."""
    check_format(fmt)
    if ctx.invoked_subcommand is not None:
        return
    if model is None or bank is None:
        typer.echo(ctx.get_help())
        if model is None and bank is None:
            raise typer.Exit(0)
        raise fail("both --model and --bank are required for a live adaptive run", EXIT_INPUT)

    opts = dict(selection=selection, ability=ability, max_items=max_items, target_se=_target_se(target_se),
                theta_tol=theta_tol, min_items=min_items, start=start, randomesque=randomesque,
                balance=balance, seed=seed)
    _run_live(model, bank, task, store_path=store, dtype=dtype, device=device, backend=backend, full=full,
              plot=plot, fmt=fmt, test_opts=opts)


adaptive_app.command("run", help="Run an adaptive test on a live model (same options as `sharpbench adaptive`).")(adaptive)


@adaptive_app.command("simulate")
def simulate(
    matrix: Path = typer.Argument(..., help="Response matrix: wide CSV/TSV/Parquet (models as rows unless --items-as-rows), long table or lm-eval samples."),
    bank: str = typer.Option(..., "--bank", "-b", help="Item bank name or path."),
    models: str | None = typer.Option(None, "--models", help="Comma-separated models to simulate (default all)."),
    items_as_rows: bool | None = typer.Option(None, "--items-as-rows/--models-as-rows", help=ORIENT_HELP),
    max_items: int = typer.Option(60, "--max-items"),
    target_se: float = typer.Option(0.25, "--target-se", help=TARGET_SE_HELP),
    theta_tol: float | None = typer.Option(None, "--theta-tol"),
    min_items: int = typer.Option(5, "--min-items"),
    selection: Selection = typer.Option(SELECTION_METHODS[0], "--selection"),
    ability: Ability = typer.Option(ABILITY_METHODS[0], "--ability"),
    start: str = typer.Option("prior", "--start"),
    randomesque: int = typer.Option(1, "--randomesque"),
    balance: str | None = typer.Option(None, "--balance"),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = format_option(),
) -> None:
    """Simulate adaptive runs: each model answers from its recorded responses in MATRIX.

    For an honest check the bank must not have been calibrated on these models
    (see benchmarks/adaptive_vs_random.py for leave-one-model-out). ``full`` is
    each model's mean over all its answered benchmark items (the bank's items and
    the fixed-score items left out of it), which is what ``accuracy`` predicts.
    """
    check_format(fmt)
    from sharpbench.adaptive.bank import ItemBank
    from sharpbench.adaptive.cat import StoppingRule
    from sharpbench.adaptive.selection import SelectionRule
    from sharpbench.adaptive.simulate import SimulationConfig, simulate_matrix
    from sharpbench.matrix.io import read_matrix

    b = ItemBank.load(bank)
    m = read_matrix(matrix, items_as_rows=items_as_rows)
    cfg = SimulationConfig(
        selection=SelectionRule(selection.value, randomesque=randomesque, balance=balance),
        stopping=StoppingRule(max_items=max_items, target_se=_target_se(target_se), theta_tol=theta_tol,
                              min_items=min_items),
        ability=ability.value, prior_mean=0.0, prior_sd=1.0, start=start,
    )
    names = [s.strip() for s in models.split(",")] if models else None
    seen = set(b.info.get("calibration_models", [])) & set(names or m.models)
    if seen:
        typer.secho(
            f"Warning: {len(seen)} simulated model(s) were in the bank's calibration set (e.g. {sorted(seen)[0]}): "
            "in-sample runs are biased (an extreme model's own failures set the item locations near it); "
            "use a bank fitted without them (benchmarks/adaptive_vs_random.py does leave-one-model-out).",
            fg=typer.colors.YELLOW, err=True,
        )
    absent = set(b.benchmark_item_ids) - {str(i) for i in m.items}
    if absent:
        typer.secho(
            f"Warning: {len(absent)} of the bank's {b.n_total} benchmark items are not in the matrix; "
            "the full score leaves them out while the prediction counts them.",
            fg=typer.colors.YELLOW, err=True,
        )
    df = simulate_matrix(b, m, names, cfg, seed=seed)
    shown = [{"model": name, "theta": f"{r.theta:+.2f}", "se": r.se, "accuracy": r.accuracy,
              "CI": interval(r.ci_low, r.ci_high), "full": r.full_score, "|err|": r.abs_error,
              "covered": bool(r.covered), "items": int(r.n_items), "stop": r.stop_reason} for name, r in df.iterrows()]
    with Output(fmt) as out:
        out.rows(df, display=shown,
                 title=f"Simulated adaptive runs on bank {b.name} ({selection.value}, {ability.value})")
        out.note(f"mean |error| {df.abs_error.mean():.4f}, CI coverage {df.covered.mean():.0%}, "
                 f"mean items {df.n_items.mean():.1f}")


def calibrate(
    tasks: str = typer.Option(..., "--tasks", "-t", help="Benchmark (task) the matrix was recorded on, e.g. mmlu_pro."),
    from_matrix: Path = typer.Option(..., "--from-matrix", help="Response matrix: wide CSV/TSV/Parquet (models as rows unless --items-as-rows), long table or lm-eval samples."),
    items_as_rows: bool | None = typer.Option(None, "--items-as-rows/--models-as-rows", help=ORIENT_HELP),
    model: str = typer.Option("2pl", "--model", help=f"IRT model: {', '.join(IRT_MODELS)}."),
    name: str | None = typer.Option(None, "--name", help="Bank name (default: the task name)."),
    out: Path | None = typer.Option(None, "--out", help="Write the bank here instead of ~/.cache/sharpbench/banks."),
    exclude_models: str | None = typer.Option(None, "--exclude-models", help="Comma-separated models to leave out."),
    min_slope: float = typer.Option(0.0, "--min-slope", help="Items with slope a <= this are left out of the bank."),
    no_task_check: bool = typer.Option(False, "--no-task-check",
                                       help="Do not match the matrix to the task's items (task not in the registry)."),
    items: Path | None = typer.Option(
        None, "--items",
        help="Item table (JSONL/CSV with ids and question text, e.g. mmlu_pro_items.jsonl) to check the matrix's "
        "items against the task's questions; default: <name>_items.jsonl/.csv beside a <name>_matrix.csv.",
    ),
    fmt: str = format_option(),
) -> None:
    """Fit IRT item parameters on a response matrix and save them as an item bank."""
    check_format(fmt)
    from sharpbench.adaptive.calibrate import calibrate_bank, restrict_to_task
    from sharpbench.matrix.io import read_matrix

    if "," in tasks:
        raise fail("calibrate one benchmark at a time (a bank belongs to one task)", EXIT_INPUT)
    check = "skipped (--no-task-check)"
    matrix = read_matrix(from_matrix, items_as_rows=items_as_rows)
    if exclude_models:
        matrix = matrix.drop_models([m.strip() for m in exclude_models.split(",")])
    if not no_task_check:
        import warnings

        from sharpbench.data.errors import DataQualityWarning
        from sharpbench.data.registry import get_task

        item_table = items if items is not None else _sibling_items(from_matrix)
        texts = _item_texts(item_table)
        check = f"ids and question texts ({item_table.name})" if texts is not None else "ids only (no --items)"
        if texts is None and fmt == "table":
            typer.secho(
                "Warning: no item table with question text (--items): the matrix's item ids are checked "
                "against the task, their content is not.",
                fg=typer.colors.YELLOW, err=True,
            )
        with warnings.catch_warnings():  # item-quality notes matter when scoring, not here
            warnings.simplefilter("ignore", DataQualityWarning)
            task_items = get_task(tasks).items()
        matrix = restrict_to_task(matrix, task_items, texts)
    bank = calibrate_bank(matrix, name or tasks, benchmark=tasks, model=model, min_slope=min_slope)
    path = bank.save(out)
    summary = {"bank": bank.name, "benchmark": bank.benchmark, "path": str(path), "irt_model": model.upper(),
               "models": matrix.n_models, "items": bank.n_items, "excluded_items": bank.n_total - bank.n_items,
               "ability_mean": bank.ability_mean, "ability_sd": bank.ability_sd,
               "task_check": check}
    with Output(fmt) as view:
        view.record(summary, title="Item bank calibrated")


def _sibling_items(matrix: Path) -> Path | None:
    """``mmlu_pro_items.jsonl`` beside ``mmlu_pro_matrix.csv`` (the shared data's convention), if present."""
    stem = matrix.stem
    for suffix in ("_matrix", "_responses"):
        if stem.endswith(suffix):
            for ext in (".jsonl", ".csv"):
                cand = matrix.with_name(stem[: -len(suffix)] + "_items" + ext)
                if cand.exists():
                    return cand
    return None


def _item_texts(path: Path | None):
    """Item id -> question text from an item table, or None without one."""
    if path is None:
        return None
    from sharpbench.insight.items import TEXT_COLUMNS
    from sharpbench.matrix import read_item_table

    table = read_item_table(path)  # a MatrixError is a ValueError: calibrate reports it
    col = next((c for c in TEXT_COLUMNS if c in table.columns), None)
    if col is None:
        raise ValueError(f"item table {path} has no question text column (one of {', '.join(TEXT_COLUMNS)})")
    return table[col]


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` and the ``adaptive`` group to the main app."""
    app.command("calibrate")(calibrate)
    app.add_typer(adaptive_app, name="adaptive")
