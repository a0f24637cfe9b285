"""``sharpbench elicit``: the plain score against the best honest elicitation, per model and task."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from sharpbench.cli.common import App, backend_help, dtype_help, save_artifact
from sharpbench.cli.output import Output, check_format, format_option
from sharpbench.elicit.families import DEFAULT_METHODS, METHODS
from sharpbench.errors import InputError

DEFAULT_TASKS = "mmlu,arc_challenge,gsm8k_cot,agieval_en"


def register(app: App) -> None:
    app.command("elicit")(elicit_command)


def elicit_command(
    model: list[str] = typer.Option([], "--model", "-m", help="Model to study (repeatable)."),
    models_file: Optional[Path] = typer.Option(None, "--models", help="File with one model per line."),
    tasks: str = typer.Option(DEFAULT_TASKS, "--tasks", "-t",
                              help="mmlu (or mmlu_<subject>), arc_challenge, agieval_en (or agieval_<subset>), "
                                   "gsm8k_cot."),
    methods: str = typer.Option(
        DEFAULT_METHODS, "--methods",
        help=f"Comma list of {', '.join(METHODS)} (self-consistency:K samples K times; plain always runs).",
    ),
    limit: int = typer.Option(200, "--limit", "-l", min=10, help="Items per task (spread over the subjects)."),
    variants: str = typer.Option("default", "--variants",
                                 help="Multiple-choice prompt variants: default, full, or dimensions e.g. labels,shift."),
    sc_temperature: float = typer.Option(0.7, "--sc-temperature", min=0.0,
                                         help="Sampling temperature of self-consistency."),
    seed: int = typer.Option(1234, "--seed", help="Seed of sampling, splits and the bootstrap."),
    max_gen_toks: Optional[int] = typer.Option(None, "--max-gen-toks", min=1,
                                               help="Cap on generated tokens (default: each task's own)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=50, help="Bootstrap resamples of the items."),
    n_splits: int = typer.Option(50, "--n-splits", min=1, help="Random half splits of held-out selection."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1),
    backend: str = typer.Option("hf", "--backend", help=backend_help()),
    dtype: str = typer.Option("float32", "--dtype", help=dtype_help()),
    store: Optional[Path] = typer.Option(None, "--store", "-s",
                                         help="Result store (every prompt's per-item answers; reused on rerun)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the HTML report (tables and plots)."),
    output_json: Optional[Path] = typer.Option(None, "--output-json",
                                               help="Write the whole result, with per-item answers, as JSON."),
    from_json: list[Path] = typer.Option(
        [], "--from-json",
        help="Saved results (--output-json) to combine instead of running a model (repeatable): a model x task "
             "two of them hold is merged, its arms united and its numbers recomputed."),
    fmt: str = format_option(),
) -> None:
    """How smart is the model really: plain score, every method's held-out score, elicited maximum / plain."""
    check_format(fmt)
    from sharpbench.elicit.study import ElicitSettings, elicit
    from sharpbench.engine.fanout import read_models_file

    for p in (report, output_json):
        if p is not None and not p.parent.exists():
            raise InputError(f"the folder of {p} does not exist")
    err = Console(stderr=True, soft_wrap=True)
    names = list(model) + (read_models_file(models_file) if models_file is not None else [])
    if from_json:
        if names:
            raise InputError("--from-json combines saved results; run models (--model/--models) in another call")
        _show(_combined(from_json), fmt, err, report, output_json, store=None, label="")
        return
    if not names:
        raise InputError("give a model: --model NAME (repeatable) or --models FILE, or saved results: --from-json")
    if len(set(names)) != len(names):
        raise InputError(f"a model is listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    settings = ElicitSettings(variants=variants, sc_temperature=sc_temperature, seed=seed, n_boot=n_boot,
                              n_splits=n_splits, batch_size=batch_size, max_gen_toks=max_gen_toks)
    kw = {"store": store} if store is not None else {}

    def load(name: str):
        from sharpbench.models import load_model

        return load_model(name, dtype=dtype, backend=backend)

    with err.status("starting") as status:
        res = elicit(names, tasks, methods=methods, limit=limit, settings=settings, load=load,
                     progress=lambda m: (status.update(escape(m)), err.print(f"[dim]{escape(m)}[/dim]")), **kw)
    _show(res, fmt, err, report, output_json, store=store, label=f"{','.join(names)} on {tasks}")


def _combined(paths: list[Path]):
    """The saved results at ``paths`` as one study (:func:`~sharpbench.elicit.summary.combine`)."""
    import json

    from sharpbench.elicit.result import ElicitResult
    from sharpbench.elicit.summary import combine

    results = []
    for p in paths:
        if not p.is_file():
            raise InputError(f"no saved result at {p}")
        try:
            results.append(ElicitResult.load(p))
        except (json.JSONDecodeError, TypeError, KeyError, UnicodeDecodeError) as e:
            raise InputError(f"{p} is not a saved elicitation result (sharpbench elicit --output-json): {e}") from e
    return combine(results)


def _show(res, fmt: str, err: Console, report: Path | None, output_json: Path | None, *, store: Path | None,
          label: str) -> None:
    """Print the tables (or the JSON/CSV), then write the JSON, the report and the store's record."""
    payload = res.to_dict()
    with Output(fmt) as out:
        out.fields(payload)
        _tables(out, res)
        out.rows(_method_rows(res), show=False)  # the CSV: one row per model, task and method
    if output_json is not None:
        res.save(output_json, per_item=True)
        err.print(f"[dim]result written to {escape(str(output_json))}[/dim]")
    if report is not None:
        from sharpbench.report.elicit_page import build_elicit_report

        err.print(f"[dim]report written to {escape(str(build_elicit_report(res, report)))}[/dim]")
    if store is not None:
        save_artifact(store, "elicit", label, payload)


def _ci(v: float | None, lo: float | None, hi: float | None, pct: bool = True) -> str:
    if v is None:
        return "-"
    f = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:.2f}")
    return f"{f(v)} [{f(lo)}, {f(hi)}]" if lo is not None and hi is not None else f(v)


def _tables(out: Output, res) -> None:
    """Table mode: the headline table, then each model and task's methods and their comparisons."""
    out.table([{"model": c.model, "dtype": c.dtype, "task": c.task, "n": c.n_items,
                "plain": _ci(c.plain, c.plain_low, c.plain_high),
                "elicited": _ci(c.elicited, c.elicited_low, c.elicited_high),
                "elicited / plain": (_ci(c.ratio, c.ratio_low, c.ratio_high, pct=False) if c.ratio is not None
                                     else "undefined (plain 0)"),
                "best method": c.best_method,
                "prompt std / range": f"{100 * c.prompt_std:.1f} / {100 * c.prompt_range:.1f}",
                "seconds": f"{c.seconds:.0f}" if c.seconds is not None else None} for c in res.cells],
              title="elicitation (accuracy %, 95% intervals; elicited = best prompt chosen held out)")
    if len(res.models) > 1 and len(res.tasks) > 1:
        out.table(_ratio_pivot(res), title="elicited / plain by model and task (* = 1 outside the 95% interval)")
    for c in res.cells:
        notes = _footnotes(c.methods)
        out.table([{"method": r.method + (f" [{notes.index(r.note) + 1}]" if r.note else ""),
                    "score": _ci(r.score, r.low, r.high),
                    "gain over plain": _ci(r.gain, r.gain_low, r.gain_high), "prompts": r.n_arms or None,
                    "best prompt": r.best_arm,
                    "tokens / item": f"{r.tokens / max(c.n_items, 1):,.0f}" if r.tokens else None,
                    "seconds": f"{r.seconds:.0f}" if r.seconds is not None else None}
                   for r in c.methods],
                  title=f"{c.model} on {c.task}: each method (score held out where it chooses among prompts)")
        for i, text in enumerate(notes, 1):
            out.note(f"  [{i}] {text}")
        for x in c.comparisons:
            verdict = "separated" if x.separated else "not separated (interval includes 0)"
            out.note(f"  {x.a} - {x.b}: {_ci(x.diff, x.low, x.high)} points: {verdict}")


def _footnotes(methods) -> list[str]:
    """The distinct notes of a cell's methods, in table order: printed as numbered lines under the table,
    so a long note never squeezes the numeric columns of a narrow terminal."""
    return list(dict.fromkeys(r.note for r in methods if r.note))


def _ratio_pivot(res) -> list[dict]:
    """One row per model, one column per task: the cell's elicited / plain ratio ("-" where not run)."""
    by = {(c.model, c.task): c for c in res.cells}
    rows = []
    for m in res.models:
        row = {"model": m}
        for t in res.tasks:
            c = by.get((m, t))
            if c is None:
                row[t] = "-"
            elif c.ratio is None:
                row[t] = "undefined (plain 0)"
            else:
                apart = c.ratio_low is not None and c.ratio_high is not None and not c.ratio_low <= 1 <= c.ratio_high
                row[t] = _ci(c.ratio, c.ratio_low, c.ratio_high, pct=False) + (" *" if apart else "")
        rows.append(row)
    return rows


def _method_rows(res) -> list[dict]:
    return [{"model": c.model, "dtype": c.dtype, "task": c.task, "method": r.method, "score": r.score, "low": r.low, "high": r.high,
             "gain": r.gain, "gain_low": r.gain_low, "gain_high": r.gain_high, "n_arms": r.n_arms,
             "best_arm": r.best_arm, "tokens": r.tokens, "seconds": r.seconds, "note": r.note}
            for c in res.cells for r in c.methods]


__all__ = ["elicit_command", "register"]
