"""CLI commands ``sharpbench irt fit``: 1-4PL item response models on a response matrix."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from sharpbench.choices import IRT_MODELS, IRT_PRIORS
from sharpbench.cli.common import App, choice_help, fail, save_artifact
from sharpbench.cli.output import Output, cell, check_format, format_option
from sharpbench.errors import EXIT_INPUT

irt_app = App(help="Item response theory (1PL/2PL/3PL/4PL) on response matrices.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``irt`` command group to the main app."""
    app.add_typer(irt_app, name="irt")


@irt_app.command("fit")
def irt_fit(
    matrix: Path = typer.Argument(..., help="Matrix (CSV/Parquet/long/lm-eval samples); one row per model unless --items-as-rows."),
    model: str = typer.Option("2pl", "--model", "-m", help=f"{choice_help(IRT_MODELS)}."),
    items_as_rows: bool | None = typer.Option(
        None, "--items-as-rows/--models-as-rows",
        help="Wide input: one row per item or per model. Without either, rows are models and a file whose ids "
        "say otherwise is refused.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Save the fit as JSON (IRTFit.load reads it)."),
    prior: str = typer.Option("auto", "--prior", help=f"{choice_help(IRT_PRIORS)} (MAP priors on item parameters)."),
    quadrature: str = typer.Option("auto", "--quadrature", help="auto | mirt | even:N[:LIM] | gh:N."),
    guess: float | None = typer.Option(None, "--guess", help="3PL/4PL: fix the lower asymptote (e.g. 0.25)."),
    binarize: float | None = typer.Option(None, "--binarize", help="Scores >= this become 1, others 0."),
    max_iter: int = typer.Option(500, "--max-iter", help="EM iteration limit."),
    tol: float = typer.Option(1e-4, "--tol", help="Stop when no parameter moves more than this."),
    ftol: float | None = typer.Option(
        None, "--ftol",
        help="Or when the penalised log-likelihood changes by less than this, relative "
        "(default: 1e-9 for 3pl/4pl, off for 1pl/2pl).",
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit with an error when EM does not converge."),
    fmt: str = format_option(help="csv: the item table."),
    limit: int = typer.Option(20, "--limit", help="table: item rows to show (0 = all)."),
    store: Path | None = typer.Option(None, "--store", "-s", help="Also save the fit as an 'irt' artifact (for the report)."),
) -> None:
    """Fit an IRT model; parameters use the slope-intercept logit a*theta + d (b = -d/a)."""
    check_format(fmt)
    from sharpbench.irt import MODELS, IRTConvergenceWarning
    from sharpbench.matrix.io import read_matrix

    key = model.lower()
    if key not in MODELS:
        raise fail(ValueError(f"unknown --model {model!r}; use {', '.join(IRT_MODELS)}"), EXIT_INPUT)
    kwargs = dict(
        prior=None if prior == "none" else prior, quadrature=quadrature, max_iter=max_iter, tol=tol, ftol=ftol,
        binarize=binarize, strict=strict,
    )
    if guess is not None:
        if key not in ("3pl", "4pl"):
            raise fail(ValueError("--guess needs --model 3pl or 4pl"), EXIT_INPUT)
        kwargs["guess"] = guess
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = read_matrix(matrix, items_as_rows=items_as_rows)
        fit = MODELS[key](**kwargs).fit(m)
    err = Console(stderr=True, soft_wrap=True)
    for w in caught:
        if issubclass(w.category, IRTConvergenceWarning):
            err.print(f"[bold red]NOT CONVERGED:[/bold red] {escape(str(w.message))}")
        else:
            err.print(f"[yellow]warning:[/yellow] {escape(str(w.message))}")
    if out is not None:
        fit.save(out)
        err.print(f"saved {out}", markup=False)
    if store is not None:
        payload = fit.to_dict()
        payload.pop("history", None)
        save_artifact(store, "irt", f"{Path(matrix).stem} {fit.model}", payload)
        err.print(f"saved the fit to {store} (artifact 'irt')", markup=False)
    d = fit.to_dict()
    d.pop("history", None)
    items, abilities = d.pop("items"), d.pop("abilities")
    with Output(fmt) as view:
        view.note(f"{fit.model.upper()} on {fit.n_respondents} models x {len(fit.items)} items: "
                  f"loglik {cell(fit.loglik)}, AIC {cell(fit.aic)}, BIC {cell(fit.bic)}; "
                   f"{'converged' if fit.converged else 'NOT converged'} after {fit.n_iter} EM iterations "
                  f"({fit.fit_seconds:.2f} s); quadrature {fit.quadrature}; prior {fit.prior_label}")
        view.note(f"parameterisation: {fit.parameterisation}")
        view.fields(d)
        view.rows(items, name="items", title="Items", columns=("item", "a", "b", "d", "g", "u", "p_value", "flag"),
                  max_rows=limit if limit > 0 else None)
        shown = sorted(abilities, key=lambda r: -r["theta"] if r["theta"] is not None else float("inf"))
        view.rows(abilities, name="abilities", title="Abilities (EAP, posterior SD)", columns=("model", "theta", "se"),
                  display=shown, max_rows=limit if limit > 0 else None)
