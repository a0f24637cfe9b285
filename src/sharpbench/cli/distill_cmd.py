"""CLI: ``sharpbench distill hard|tiny|evaluate`` and ``sharpbench predict``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sharpbench.choices import HARD_RANKINGS, TINY_ESTIMATORS, TINY_METHODS
from sharpbench.cli.common import App, choice_enum, fail, save_artifact
from sharpbench.cli.output import Output, check_format, format_option
from sharpbench.errors import EXIT_INPUT

distill_app = App(
    name="distill",
    help="Distil a benchmark: hard/discriminative subsets (MAGI) and tiny subsets that predict the full score.",
    no_args_is_help=True,
)


HardMethod = choice_enum("HardMethod", HARD_RANKINGS)
TinyMethod = choice_enum("TinyMethod", TINY_METHODS)


def _load(path: Path, items_as_rows: bool | None, item_meta: Path | None):
    from sharpbench.distill.common import item_features
    from sharpbench.matrix import attach_item_meta, read_item_table, read_matrix

    m = read_matrix(path, items_as_rows=items_as_rows)
    return m if item_meta is None else attach_item_meta(m, item_features(read_item_table(item_meta)), source=item_meta)


def _save_artifact(store: Path | None, kind: str, name: str, payload: dict, png: Path | None = None) -> None:
    """Save ``payload`` (plus the plot as base64 PNG under ``plot_png_base64``) in the result store."""
    if png is not None and png.exists():
        import base64

        payload = {**payload, "plot_png_base64": base64.b64encode(png.read_bytes()).decode("ascii")}
    save_artifact(store, kind, name, payload)


MATRIX_ARG = typer.Argument(..., help="Response matrix: wide CSV/TSV/Parquet (rows = models unless --items-as-rows), "
                                      "long table (model,item,score) or lm-eval samples.")
ITEMS_AS_ROWS = typer.Option(
    None, "--items-as-rows/--models-as-rows",
    help="Rows are items, columns models (ChemBench layout), or rows are models. Without either, rows are "
    "models and a file whose ids say otherwise is refused.",
)
ITEM_META = typer.Option(None, "--item-meta", help="Item table JSONL/JSON/CSV/TSV/Parquet, ids in item, item_id, "
                        "question_id or id (subject, options -> n_choices, text).")


@distill_app.command("hard")
def hard(
    matrix: Path = MATRIX_ARG,
    reference: str | None = typer.Option(None, "--reference", help="Reference model (needed by ref-vs-others)."),
    method: HardMethod = typer.Option(HARD_RANKINGS[0], "--method", help="Item ranking."),
    fraction: float = typer.Option(0.8, "--fraction", help="Fraction of items deleted in the chosen subset."),
    top_n: int = typer.Option(10, "--top-n", help="N of 'std. dev. of the top-N model scores'."),
    exclude_voter: list[str] = typer.Option([], "--exclude-voter", help="Keep a model out of the voter pool."),
    pad: bool = typer.Option(True, "--pad/--no-pad", help="Offset padding for the voter penalty."),
    lift_to_chance: bool = typer.Option(True, "--lift-to-chance/--no-lift-to-chance",
                                        help="Re-add items until no model scores below chance (MAGI's objective)."),
    voter_penalty: bool = typer.Option(True, "--voter-penalty/--no-voter-penalty",
                                       help="Voter penalties: the whole pipeline rerun without each voter "
                                            "(IRT rankings with padding refit once per voter pair)."),
    jobs: int = typer.Option(1, "--jobs", help="Parallel processes for the leave-one-voter-out reruns."),
    optimize: bool = typer.Option(False, "--optimize", help="Bayesian optimisation (optuna) of the parameters."),
    trials: int = typer.Option(60, "--trials", help="Optuna trials with --optimize."),
    penalty_tol: float = typer.Option(0.5, "--penalty-tol",
                                      help="--optimize: largest whole-pipeline voter penalty (points) allowed."),
    n_choices: int = typer.Option(4, "--n-choices", help="Choices per item when the metadata lacks n_choices."),
    items_as_rows: bool | None = ITEMS_AS_ROWS,
    item_meta: Path | None = ITEM_META,
    out: Path = typer.Option(Path("distill_hard"), "--out", help="Output folder (items, task file, tables, plot)."),
    base_task: str | None = typer.Option(None, "--base-task", help="Base task of the task file (e.g. mmlu_pro)."),
    item_id_field: str = typer.Option("question_id", "--item-id-field", help="Item metadata field holding ids."),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = format_option(),
    store: Path | None = typer.Option(None, "--store", help="Save the result as an artifact in this store."),
) -> None:
    """Hard, discriminative subset by progressive deletion (MAGI method)."""
    check_format(fmt)
    from sharpbench.distill.common import chance_rates, describe_chance
    from sharpbench.distill.hard import select_hard
    from sharpbench.distill.hard_optimize import optimize_hard
    from sharpbench.distill.plots import plot_score_trends
    from sharpbench.distill.taskfile import write_task_file

    m = _load(matrix, items_as_rows, item_meta)
    chance = chance_rates(m, default_choices=n_choices)
    source = describe_chance(m, default_choices=n_choices)
    if optimize:
        res = optimize_hard(m, reference=reference, n_trials=trials, seed=seed, top_n=top_n,
                            exclude_voters=exclude_voter, chance=chance, chance_source=source, n_jobs=jobs,
                            penalty_tol=penalty_tol / 100)
    else:
        res = select_hard(m, method.value, reference=reference, fraction=fraction, top_n=top_n,
                          exclude_voters=exclude_voter, pad=pad, lift_to_chance=lift_to_chance, chance=chance,
                          chance_source=source, voter_penalty=voter_penalty, n_jobs=jobs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "items.txt").write_text("\n".join(res.selected_items) + "\n")
    base = base_task or matrix.stem.replace("_matrix", "")
    write_task_file(out / "subset.toml", base, res.selected_items, name=f"{base}_hard", item_id_field=item_id_field)
    res.scores.to_csv(out / "score_trend.csv")
    res.metrics.to_csv(out / "metrics.csv")
    res.guessers.to_csv(out / "guessers.csv")
    if res.pareto is not None:
        res.pareto.to_csv(out / "pareto.csv", index=False)
    plot_score_trends(res, out / "score_trend.png")
    (out / "result.json").write_text(json.dumps(res.to_artifact(), default=float))
    _save_artifact(store, "distill_hard", f"{matrix.stem}:{res.method}:{reference or ''}", res.to_artifact(),
                   out / "score_trend.png")
    flagged = [g for g, v in res.guessers["is_guesser"].items() if v]
    cost = res.lovo_cost
    extra = {
        "method": res.method, "reference (unfairly scored)": reference, "fraction deleted": round(res.selected_fraction, 4),
        "guessers excluded from voters": flagged or "none",
        "chance baseline": res.chance_source,
        "no model below chance (MAGI)": res.chance_note,
        "voter penalty": (f"whole pipeline rerun without each voter: {cost['pipelines']} pipelines in "
                          f"{cost['seconds']:.1f} s ({cost['n_jobs']} job(s))") if cost.get("pipelines")
        else cost.get("skipped", "not computed"),
        "outputs": str(out),
    }
    if "search_seconds" in cost:
        extra["optimisation"] = (f"{cost['trials']} trials in {cost['search_seconds']:.1f} s, each scored by the "
                                 f"whole-pipeline voter penalty; chosen: {cost['choice']}")
    with Output(fmt) as shown:
        shown.rows(res.summary(), title="Hard subset: baseline vs subset")
        shown.fields(extra, show=True)


@distill_app.command("tiny")
def tiny(
    matrix: Path = MATRIX_ARG,
    n_items: int = typer.Option(100, "--n-items", help="Subset size."),
    method: TinyMethod = typer.Option(TINY_METHODS[0], "--method", help="Selection method."),
    embedding: str = typer.Option("correctness", "--embedding",
                                  help="anchor: 'correctness' answer columns or 'irt' item parameters."),
    embedder: str = typer.Option("minilm", "--embedder", help="text: minilm, tfidf, or a sentence-transformers path."),
    irt: bool = typer.Option(True, "--irt/--no-irt", help="Fit 2PL item parameters for the IRT estimators."),
    lambda_folds: int = typer.Option(3, "--lambda-folds", help="Inner folds for the gp-IRT lambda (0 = off)."),
    balance: bool = typer.Option(True, "--balance/--no-balance", help="Balance per subject when known."),
    seed: int = typer.Option(0, "--seed"),
    items_as_rows: bool | None = ITEMS_AS_ROWS,
    item_meta: Path | None = ITEM_META,
    scores: Path | None = typer.Option(None, "--scores",
                                       help="Full scores of the matrix's models (CSV: model, score; fractions or "
                                            "percent) when the matrix is not the whole benchmark."),
    out: Path = typer.Option(Path("tiny_subset.json"), "--out", help="Subset file for `sharpbench predict`."),
    task_file: Path | None = typer.Option(None, "--task-file", help="Also write a TOML task file here."),
    base_task: str | None = typer.Option(None, "--base-task"),
    fmt: str = format_option(),
    store: Path | None = typer.Option(None, "--store"),
) -> None:
    """Tiny subset whose answers predict the full score (anchor points, IRT information, strata, random, text)."""
    check_format(fmt)
    import pandas as pd

    from sharpbench.distill.taskfile import write_task_file
    from sharpbench.distill.tiny_fit import build_tiny

    m = _load(matrix, items_as_rows, item_meta)
    text_emb = None
    if method.value == "text":
        from sharpbench.distill.coldstart import embed_texts

        if "text" not in m.item_meta.columns:
            raise fail("method 'text' needs item texts: pass --item-meta with question/options or a text column", EXIT_INPUT)
        text_emb = embed_texts(m.item_meta["text"].fillna("").tolist(), embedder)
    if irt:
        m.require_binary()
    full = None
    if scores is not None:
        from sharpbench.distill.predictor import read_scores

        given = _read_scores(scores)
        unscored = [x for x in m.models if x not in given.index]
        if unscored:
            raise fail(f"{scores}: no full score for {len(unscored)} model(s), e.g. {unscored[:3]}", EXIT_INPUT)
        full, unit = read_scores(given.reindex(list(m.models)))
        typer.echo(f"note: full scores read as {unit}", err=True)
    from sharpbench.distill.predictor import MIN_MODELS_PREDICT

    fit_predictor = m.n_models >= MIN_MODELS_PREDICT
    if not fit_predictor:
        typer.echo(f"note: {m.n_models} models (< {MIN_MODELS_PREDICT}): no cross-validated estimator choice; "
                   "`predict` will need --estimator", err=True)
    sub = build_tiny(m, n_items, method.value, seed=seed, irt=irt and m.n_models > 0,
                     lambda_folds=lambda_folds, embedding=embedding, balance=balance, text_embeddings=text_emb,
                     fit_predictor=fit_predictor, scores=full)
    sub.save(out)
    if task_file is not None:
        base = base_task or matrix.stem.replace("_matrix", "")
        write_task_file(task_file, base, sub.items, name=f"{base}_tiny{n_items}")
    _save_artifact(store, "distill_tiny", f"{matrix.stem}:{sub.method}:{n_items}", sub.to_artifact())
    frame = pd.DataFrame({"item": sub.items, "weight": sub.weights}).set_index("item")
    extra = {"gp-IRT lambda": sub.lam, "subset file": str(out)}
    if sub.predictor is not None:
        cv = {r["estimator"]: r["mae"] for r in sub.predictor["cv"]}
        extra["estimator chosen by cross-validation"] = sub.predictor["estimator"]
        extra["its CV MAE (points)"] = round(100 * cv[sub.predictor["estimator"]], 3)
        extra["baselines' CV MAE (points)"] = ", ".join(f"{b} {100 * cv[b]:.3f}" for b in ("mean-cubic", "ridge")
                                                         if b in cv)
    with Output(fmt) as shown:
        shown.rows(frame, title=f"Tiny subset ({sub.method}, {sub.n_items} items)")
        shown.fields(extra, show=True)


@distill_app.command("evaluate")
def evaluate(
    matrix: Path = MATRIX_ARG,
    n_items: int = typer.Option(100, "--n-items"),
    methods: str = typer.Option("anchor,irt-info,stratified,random", "--methods", help="Comma-separated methods."),
    estimators: str = typer.Option(",".join((*TINY_ESTIMATORS, "auto")), "--estimators",
                                   help=f"Comma-separated: {', '.join(TINY_ESTIMATORS)}, auto (chosen by "
                                        "cross-validation on each fold's training models, the subset selection "
                                        "repeated in its folds)."),
    folds: int = typer.Option(0, "--folds", help="k for k-fold over models; 0 = leave-one-model-out."),
    seeds: int = typer.Option(3, "--seeds", help="Repeated seeds."),
    random_repeats: int = typer.Option(10, "--random-repeats", help="Random subsets per seed for the baseline."),
    lambda_folds: int = typer.Option(3, "--lambda-folds"),
    embedding: str = typer.Option("correctness", "--embedding", help="anchor embedding: correctness or irt."),
    items_as_rows: bool | None = ITEMS_AS_ROWS,
    item_meta: Path | None = ITEM_META,
    plot: Path | None = typer.Option(None, "--plot", help="PNG of predicted vs true scores."),
    fmt: str = format_option(extra=("markdown",)),
    store: Path | None = typer.Option(None, "--store"),
) -> None:
    """K-fold over models: MAE/RMSE/Kendall tau of predicted vs true full scores, vs random subsets."""
    check_format(fmt, ("markdown",))
    from sharpbench.distill.evaluate import evaluate_tiny
    from sharpbench.distill.plots import plot_tiny_eval

    m = _load(matrix, items_as_rows, item_meta)
    res = evaluate_tiny(m, n_items=n_items, methods=[s.strip() for s in methods.split(",") if s.strip()],
                        estimators=[s.strip() for s in estimators.split(",") if s.strip()],
                        folds=folds or None, seeds=list(range(seeds)), random_repeats=random_repeats,
                        lambda_folds=lambda_folds, embedding=embedding)
    if plot is not None:
        names = [e.strip() for e in estimators.split(",") if e.strip()]
        est = next((e for e in ("auto", "gpirt") if e in names), names[0])
        plot_tiny_eval(res.predictions, plot, estimator=est)
    _save_artifact(store, "distill_tiny", f"{matrix.stem}:evaluate:{n_items}", res.to_artifact(), plot)
    if fmt == "markdown":
        typer.echo(res.to_markdown())
        return
    with Output(fmt) as shown:
        shown.rows(res.table(), title=f"Tiny subsets of {n_items} items, {res.folds} (MAE/RMSE in points)")


def predict(
    responses: Path = typer.Option(..., "--responses", help="New models' answers (rows = models, columns = items)."),
    subset: Path | None = typer.Option(None, "--subset", help="Subset file from `sharpbench distill tiny`."),
    train: Path | None = typer.Option(None, "--train", help="Earlier models' subset answers (rows = models)."),
    train_scores: Path | None = typer.Option(None, "--train-scores",
                                             help="Earlier models' full scores: CSV, model column then score column."),
    estimator: str = typer.Option("auto", "--estimator",
                                  help=f"auto (chosen by cross-validation), {', '.join(TINY_ESTIMATORS)}, or all "
                                       "(--subset mode); --train mode always chooses by cross-validation."),
    score_unit: str = typer.Option("auto", "--score-unit", help="Unit of --train-scores: auto, fraction or percent."),
    items_as_rows: bool | None = ITEMS_AS_ROWS,
    confidence: float = typer.Option(0.95, "--confidence"),
    fmt: str = format_option(),
) -> None:
    """Predict full-benchmark scores of new models from their answers to a subset.

    Two modes: --subset SUBSET (from `distill tiny`: it carries the training models' answers
    and the cross-validated estimator choice), or --train ANSWERS --train-scores SCORES
    (earlier models that ran the same subset, with their full scores; metabench's setting).
    Next to the predictions it prints the cross-validated error of every candidate estimator
    and of the two plain baselines (cubic fit on the subset mean, ridge on the item answers).
    """
    check_format(fmt)
    from sharpbench.distill.prediction import predict_from_subset, predict_from_train

    if not 0 < confidence < 1:
        raise fail("--confidence must be between 0 and 1", EXIT_INPUT)
    new = _read_answers(responses, items_as_rows)
    if subset is not None and train is None:
        result = predict_from_subset(subset, new, estimator, confidence)
    elif train is not None and train_scores is not None:
        if estimator not in ("auto", "all"):
            raise fail("--train mode chooses the estimator by cross-validation: leave --estimator at auto", EXIT_INPUT)
        result = predict_from_train(_read_answers(train, items_as_rows), _read_scores(train_scores), new,
                                    confidence, score_unit)
    else:
        raise fail("give --subset SUBSET, or --train ANSWERS with --train-scores SCORES", EXIT_INPUT)
    if fmt == "table":
        for note in result.notes:
            typer.echo(f"note: {note}", err=True)
    with Output(fmt) as out:
        out.rows(result.predictions, name="predictions",
                 title=f"Predicted full-benchmark scores ({result.unit}, {confidence:.0%} intervals)")
        out.fields({"score_unit": result.unit, "auto": result.chosen, "notes": result.notes})
        if result.cv:
            out.rows(result.cv, name="cv", title=f"Cross-validated error on the training models ({result.unit}); "
                                                 f"auto = {result.chosen}")


def _read_answers(path: Path, items_as_rows: bool | None):
    from sharpbench.matrix import read_matrix

    return read_matrix(path, items_as_rows=items_as_rows).to_frame()


def _read_scores(path: Path):
    import pandas as pd

    if not path.exists():
        raise fail(f"file {path} does not exist", EXIT_INPUT)
    frame = pd.read_csv(path, index_col=0)
    if frame.shape[1] < 1:
        raise fail(f"{path} needs a model column and a score column", EXIT_INPUT)
    col = "score" if "score" in frame.columns else frame.columns[0]
    series = pd.to_numeric(frame[col], errors="coerce")
    series.index = series.index.map(str)
    return series


def register(app: typer.Typer) -> None:
    """Add the ``distill`` group and the top-level ``predict`` command."""
    app.add_typer(distill_app, name="distill")
    app.command("predict")(predict)
