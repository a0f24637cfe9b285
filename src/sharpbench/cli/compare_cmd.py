"""CLI commands comparing models: ``diff``, ``perturb``, ``correlate``, ``pareto``, ``sensitivity``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from sharpbench.choices import PERTURB_DIRECTIONS
from sharpbench.cli.common import choice_enum, exit_code, fail, save_artifact
from sharpbench.cli.output import Output, check_format, format_option
from sharpbench.compare.errors import CompareError
from sharpbench.errors import SharpbenchError

Direction = choice_enum("Direction", PERTURB_DIRECTIONS)


def register(app: typer.Typer) -> None:
    """Add the comparison commands to the main app."""
    app.command("diff")(diff_command)
    app.command("perturb")(perturb_command)
    app.command("correlate")(correlate_command)
    app.command("pareto")(pareto_command)
    app.command("sensitivity")(sensitivity_command)


# ----------------------------------------------------------------- helpers
def _err() -> Console:
    return Console(stderr=True, soft_wrap=True)


def _run(fn: Callable[[], None]) -> None:
    """Run ``fn``; sharpbench's errors exit with their code and message, a library's error is
    named (``ValueError: ...``) in its one line (codes: :func:`sharpbench.cli.common.exit_code`)."""
    try:
        fn()
    except CompareError:
        raise
    except (ValueError, RuntimeError, OSError) as exc:
        code = exit_code(exc)
        if isinstance(exc, SharpbenchError) or code is None:
            raise
        raise fail(f"{type(exc).__name__}: {exc}", code) from None


def _save_artifact(store: Optional[Path], kind: str, name: str, payload: dict) -> None:
    if save_artifact(store, kind, name, payload):
        _err().print(f"[dim]{escape(f'saved {kind} artifact {name!r} in {store}')}[/dim]")


# -------------------------------------------------------------------- diff
def diff_command(
    base: str = typer.Option(..., "--base", help="Base model: packaged name, checkpoint folder or hub id."),
    model: str = typer.Option(..., "--model", "-m", help="Modified model to check against the base."),
    prompts: str = typer.Option("harmless", "--prompts", help="'harmless' (shipped 100 prompts) or a file (.txt/.json/.jsonl/.csv)."),
    n_prompts: Optional[int] = typer.Option(None, "--n-prompts", min=1, help="Use only the first N prompts."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Benchmarks for paired deltas, e.g. piqa,arc_easy."),
    limit: Optional[int] = typer.Option(None, "--limit", "-l", min=1, help="First N items of each task."),
    metric: list[str] = typer.Option(["acc", "acc_norm"], "--metric", help="Per-item metrics to compare."),
    system_prompt: str = typer.Option("You are a helpful assistant.", "--system-prompt", help="System prompt of the chat (heretic's default)."),
    token_kl_items: int = typer.Option(32, "--token-kl-items", min=0, help="Contexts per task for mean per-token KL (0: skip)."),
    no_kl: bool = typer.Option(False, "--no-kl", help="Skip KL divergence (e.g. models with different tokenizers)."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", min=1),
    store: Optional[Path] = typer.Option(Path("sharpbench.duckdb"), "--store", "-s", help="Result store (benchmark results reused, artifact saved)."),
    no_store: bool = typer.Option(False, "--no-store", help="Score in memory, save nothing."),
    fmt: str = format_option(),
) -> None:
    """Damage check: KL divergence from the base model and paired benchmark deltas with significance."""
    check_format(fmt)

    def go() -> None:
        from sharpbench.compare.diff import run_diff
        from sharpbench.compare.prompts import load_prompts

        st = None if no_store else store
        plist = None if no_kl else load_prompts(prompts, limit=n_prompts)
        err = _err()
        res = run_diff(
            base, model, prompts=plist, tasks=tasks, limit=limit, metrics=metric, batch_size=batch_size,
            token_kl_items=token_kl_items, system_prompt=system_prompt, store=st, kl=not no_kl,
            progress=lambda s: err.print(f"[dim]{escape(str(s))}[/dim]"),
        )
        art = res.to_artifact()
        rows = []
        if res.kl is not None:
            rows.append({"what": "first-token KLD", "value": res.kl.kld, "ci_low": res.kl.ci_low,
                         "ci_high": res.kl.ci_high, "p": float("nan"), "n": res.kl.n_prompts})
        for t, (v, n) in res.token_kl.items():
            rows.append({"what": f"{t} per-token KL", "value": v, "ci_low": float("nan"),
                         "ci_high": float("nan"), "p": float("nan"), "n": n})
        for td in res.deltas:
            d = td.delta
            rows.append({"what": f"{td.task} {d.metric} delta (pts)", "value": 100 * d.delta, "ci_low": 100 * d.ci_low,
                         "ci_high": 100 * d.ci_high, "p": d.p_value, "n": d.n_items})
        with Output(fmt) as out:
            out.fields(art)
            out.rows(rows, title=f"{model} vs {base}")
            for line in res.verdicts():
                out.note(f"• {line}")
        if fmt == "table":
            for note in res.notes:
                err.print(f"[yellow]note:[/yellow] {escape(str(note))}")
        _save_artifact(st, "diff", f"{base} -> {model}", art)

    _run(go)


# ----------------------------------------------------------------- perturb
def _floats(s: Optional[str]) -> list[float]:
    from sharpbench.compare.errors import CompareError

    if not s:
        return []
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise CompareError(f"expected comma-separated numbers, got {s!r}") from None


def perturb_command(
    model: str = typer.Argument("smollm2-135m", help="Model to damage (packaged name or checkpoint)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the variants (one sub-folder each)."),
    noise: Optional[str] = typer.Option(None, "--noise", help="Relative Gaussian noise scales, e.g. 0.01,0.02,0.05."),
    ablate: Optional[str] = typer.Option(None, "--ablate", help="Ablation weights in [0,1], e.g. 0.5,1."),
    direction: Direction = typer.Option(PERTURB_DIRECTIONS[0], "--direction", help="Ablation direction: a random unit vector, the mean residual of --prompts, or --contrast's mean minus --prompts'."),
    layer: Optional[int] = typer.Option(None, "--layer", help="Layer whose residual defines mean/diff directions (default: middle)."),
    prompts: str = typer.Option("harmless", "--prompts", help="Prompt set for mean/diff directions."),
    contrast: Optional[str] = typer.Option(None, "--contrast", help="Second prompt file for --direction diff (e.g. harmful prompts)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Create damaged variants of a model (weight noise, directional ablation) as HF checkpoints."""

    def go() -> None:
        from sharpbench.compare.perturb import make_variants
        from sharpbench.compare.prompts import load_prompts

        how = direction.value
        p = load_prompts(prompts) if how in ("mean", "diff") else []
        c = load_prompts(contrast) if contrast else []
        made = make_variants(model, out, noise=_floats(noise), ablate=_floats(ablate), direction=how,
                             layer=layer, prompts=p, contrast=c, seed=seed)
        for info, path in made:
            Console().print(f"{info.name}\t{path}", markup=False)

    _run(go)


# --------------------------------------------------------------- correlate
def correlate_command(
    metric: list[str] = typer.Option([], "--metric", help="task:metric from the store (piqa:acc_norm), kld, or a --metrics-csv column."),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="CSV with a model column and the reference score."),
    reference_column: Optional[str] = typer.Option(None, "--reference-column", help="Score column of the reference CSV."),
    model_column: str = typer.Option("model", "--model-column", help="Model-name column in the CSV files."),
    metrics_csv: Optional[Path] = typer.Option(None, "--metrics-csv", help="Read the metrics from this CSV instead of the store."),
    store: Optional[Path] = typer.Option(None, "--store", "-s", help="Store with the metrics (default sharpbench.duckdb); the result is saved there."),
    lower_is_better: list[str] = typer.Option([], "--lower-is-better", help="Metric where lower is better (kld is by default)."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Use the common models when names differ."),
    rfc: bool = typer.Option(False, "--rfc", help="Reproduce heretic RFC #236 from its published table."),
    n_boot: int = typer.Option(2000, "--n-boot", min=100),
    fmt: str = format_option(),
) -> None:
    """Rank correlation (Spearman, Kendall, bootstrap CIs) of cheap metrics with an expensive reference."""
    check_format(fmt)

    def go() -> None:
        from sharpbench.compare.correlate import (
            correlate,
            load_table,
            rfc_correlate,
            table_column,
        )
        from sharpbench.compare.errors import CompareError

        if rfc:
            res = rfc_correlate(n_boot=n_boot)
            name = "heretic-rfc-236"
        else:
            if reference is None or not metric:
                raise CompareError("give --reference FILE and at least one --metric (or --rfc)")
            ref_df = load_table(reference, model_column=model_column)
            col = reference_column
            if col is None:
                numeric = [c for c in ref_df.columns if ref_df[c].dtype.kind in "fi"]
                if len(numeric) != 1:
                    raise CompareError(f"{reference}: pick the score with --reference-column (numeric columns: {numeric})")
                col = numeric[0]
            ref = table_column(ref_df, col)
            if metrics_csv is not None:
                mdf = load_table(metrics_csv, model_column=model_column)
                values = {m: table_column(mdf, m, what="metric") for m in metric}
            else:
                from sharpbench.compare.sources import store_metric
                from sharpbench.store import Store

                with Store(store or Path("sharpbench.duckdb"), read_only=True, shared=True) as st:
                    values = {m: store_metric(st, m) for m in metric}
            res = correlate(values, ref, reference_name=col, lower_is_better={m: True for m in lower_is_better},
                            allow_partial=allow_partial, n_boot=n_boot)
            name = f"{','.join(metric)} vs {col}"
        art = res.to_artifact()
        rows = [{"metric": c.metric, "reference": c.reference, "n": c.n_models, "spearman": c.spearman,
                 "spearman_ci": f"[{c.spearman_ci[0]:.2f}, {c.spearman_ci[1]:.2f}]", "spearman_p": c.spearman_p,
                 "kendall": c.kendall, "kendall_ci": f"[{c.kendall_ci[0]:.2f}, {c.kendall_ci[1]:.2f}]",
                 "kendall_p": c.kendall_p} for c in res.correlations]
        with Output(fmt) as out:
            out.fields(art)
            out.table(art["table"], title="values and ranks (1 = best)")
            out.rows(rows, title="rank correlation with the reference (bootstrap 95% CIs over models)")
        target = store if store is not None else (Path("sharpbench.duckdb") if metrics_csv is None else None)
        if not rfc and target is not None:
            try:
                _save_artifact(target, "correlate", name, art)
            except Exception as exc:  # the analysis is printed; a locked store must not hide it
                _err().print(f"[yellow]artifact not saved: {escape(str(exc))}[/yellow]")

    _run(go)


# ------------------------------------------------------------------ pareto
def pareto_command(
    trials: str = typer.Argument(..., help="Trials CSV, Optuna sqlite (.db / sqlite:///...) or journal (.log)."),
    minimize: list[str] = typer.Option([], "--minimize", help="Objective to minimise (repeatable)."),
    maximize: list[str] = typer.Option([], "--maximize", help="Objective to maximise (repeatable)."),
    rerank: Optional[str] = typer.Option(None, "--rerank", help="task:metric to score near-front checkpoints with (e.g. piqa:acc_norm)."),
    near: float = typer.Option(0.1, "--near", min=0.0, help="Max distance to the front (min-max scaled objectives)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-l", min=1, help="Items of the re-rank task."),
    checkpoint_column: str = typer.Option("checkpoint", "--checkpoint-column", help="Column / user attr naming each trial's checkpoint."),
    replace: Optional[str] = typer.Option(None, "--replace", help="Objective the re-rank metric replaces (default: added)."),
    study: Optional[str] = typer.Option(None, "--study", help="Optuna study name when the storage holds several."),
    store: Optional[Path] = typer.Option(Path("sharpbench.duckdb"), "--store", "-s", help="Store for the re-rank evaluations."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", min=1),
    fmt: str = format_option(),
) -> None:
    """Pareto front of trials; optionally re-rank the near-front trials with a fast benchmark."""
    check_format(fmt)

    def go() -> None:
        from sharpbench.compare.errors import CompareError
        from sharpbench.compare.pareto import load_trials, pareto
        from sharpbench.compare.pareto import rerank as do_rerank

        objs = [(m, "minimize") for m in minimize] + [(m, "maximize") for m in maximize]
        df = load_trials(trials, study=study)
        res = pareto(df, objs)
        if rerank:
            if ":" not in rerank:
                raise CompareError(f"--rerank must be task:metric, got {rerank!r}")
            task, met = rerank.split(":", 1)
            from sharpbench.compare.scoring import task_results

            def evaluate(ck: str) -> float:
                _err().print(f"[dim]scoring {escape(str(ck))} on {escape(str(task))}[/dim]")
                r = task_results(ck, task, limit=limit, batch_size=batch_size, store=store)
                vals = [x.metrics[met] for rs in r.values() for x in rs if met in x.metrics]
                if not vals:
                    raise CompareError(f"task {task} has no per-item metric {met!r}")
                return float(sum(vals) / len(vals))

            base_dir = Path(trials).parent if Path(trials).exists() else None
            res = do_rerank(res, near=near, metric=rerank, evaluate=evaluate, checkpoint_column=checkpoint_column,
                            replace=replace, base_dir=base_dir)
        show = res.table.sort_values(["on_front", "distance"], ascending=[False, True])
        keep = ["number", *res.objectives, "on_front", "distance"]
        keep += [c for c in ("was_on_front", "old_distance") if c in show.columns]
        rows = show[keep].to_dict(orient="records")
        title = "front after re-ranking" if rerank else "Pareto front (on_front) and distance to it"
        with Output(fmt) as out:
            out.fields(res.to_artifact())
            out.rows(rows, title=title)

    _run(go)


# ------------------------------------------------------------- sensitivity
def sensitivity_command(
    model: list[str] = typer.Option(["smollm2-135m"], "--model", "-m", help="Model(s) to test (repeatable)."),
    tasks: str = typer.Option("mmlu", "--tasks", "-t", help="MMLU-style tasks or group."),
    variants: str = typer.Option("default", "--variants", help="default (one factor at a time), full, or dimensions e.g. labels,shift."),
    limit: int = typer.Option(100, "--limit", "-l", min=2, help="Questions (spread over the subjects)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the accuracy-per-variant plot (PNG)."),
    n_splits: int = typer.Option(50, "--n-splits", min=1, help="Random half splits for the held-out estimate."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", min=1),
    store: Optional[Path] = typer.Option(
        None, "--store", "-s",
        help="Store every variant's per-item answers (reused on rerun) and the summary as a 'sensitivity' artifact.",
    ),
    fmt: str = format_option(),
) -> None:
    """Accuracy across prompt variants: spread, best variant, majority vote and a held-out best estimate."""
    check_format(fmt)

    def go() -> None:
        from sharpbench.compare.sensitivity import plot_sensitivity, run_sensitivity

        err = _err()
        res = run_sensitivity(model, tasks=tasks, variants=variants, limit=limit, batch_size=batch_size,
                              n_splits=n_splits, progress=lambda s: err.print(f"[dim]{escape(str(s))}[/dim]"), store=store)
        art = res.to_artifact()
        per_variant = [{"variant": v, **{m.model: 100 * m.accuracy[i] for m in res.models}}
                       for i, v in enumerate(res.models[0].variants)]
        rows = []
        for m in res.models:
            d = m.to_dict()
            rows.append({"model": m.model, "n": m.n_items, "plain": d["plain"], "mean": d["mean"], "std": d["std"],
                         "min": d["min"], "max": d["max"], "best_variant": d["best_variant"],
                         "best/plain": d["best_ratio_to_plain"], "majority_vote": d["majority_vote"],
                         "held_out_best": d["held_out_best"], "optimism": d["optimism"]})
        with Output(fmt) as out:
            out.fields(art)
            out.table(per_variant, title="accuracy (%) per prompt variant")
            out.rows(rows, title="prompt sensitivity (accuracy as fractions)")
            out.note("• the best variant's accuracy is chosen on the same items it is scored on, so it is "
                     "optimistic; held_out_best picks the variant on half the items and scores the other half.")
        if plot is not None:
            err.print(f"[dim]{escape(f'plot written to {plot_sensitivity(res, plot)}')}[/dim]")
        _save_artifact(store, "sensitivity", f"{','.join(model)} on {tasks} ({variants})", art)

    _run(go)
