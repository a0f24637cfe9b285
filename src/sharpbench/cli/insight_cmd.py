"""CLI commands: ``skills``, ``rank`` and ``calibration`` (the insight layer)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sharpbench.choices import CALIBRATION_BINNINGS, P_CORRECTIONS, RANK_METHODS, SKILL_SOURCES
from sharpbench.cli.common import choice_enum, choice_help, save_artifact
from sharpbench.cli.output import Output, check_format, format_option

__all__ = ["register"]


SkillFrom = choice_enum("SkillFrom", SKILL_SOURCES)
RankMethod = choice_enum("RankMethod", (*RANK_METHODS, "all"))
Correction = choice_enum("Correction", P_CORRECTIONS)
Binning = choice_enum("Binning", CALIBRATION_BINNINGS)


def _load(results: Path, items: Path | None, items_as_rows: bool | None):
    from sharpbench.matrix import attach_item_meta, read_item_table, read_matrix

    if results.suffix == ".duckdb":
        from sharpbench.store import Store

        with Store(results, read_only=True, shared=True) as store:
            matrix = store.response_matrix()
        return attach_item_meta(matrix, read_item_table(items), source=items) if items else matrix
    return read_matrix(results, items_as_rows=items_as_rows, items=items)


def _save(store: Path | None, kind: str, name: str, payload: dict) -> None:
    if save_artifact(store, kind, name, payload):
        typer.echo(f"saved artifact {kind}/{name} to {store}", err=True)


def skills(
    results: Path = typer.Argument(..., help="Response matrix (CSV/TSV/Parquet, long table or lm-eval samples; models as rows) or a store .duckdb."),
    source: SkillFrom = typer.Option(SKILL_SOURCES[0], "--from", help="Where skill labels come from."),
    items: Path | None = typer.Option(None, help="Item table (JSONL/JSON/CSV/TSV/Parquet; ids in item, item_id, question_id or id) with metadata and texts."),
    column: str | None = typer.Option(None, help="Metadata column to use (default: category/subject/...)."),
    n_clusters: int = typer.Option(12, help="Clusters for --from embeddings."),
    encoder: str | None = typer.Option(None, help="Sentence encoder dir (default: packaged all-MiniLM-L6-v2)."),
    generator: str = typer.Option("smollm2-135m", help="Generative model for --from rationales (HF dir, .gguf, name)."),
    limit: int | None = typer.Option(None, help="Use a random sample of this many items (embeddings/rationales)."),
    compare: str | None = typer.Option(None, help="Two models 'A,B' to compare skill by skill."),
    tol: float = typer.Option(0.02, help="Without --compare: compare pairs within this overall accuracy."),
    correction: Correction = typer.Option(P_CORRECTIONS[0], help="Multiple-comparison correction (Holm, Benjamini-Hochberg, Bonferroni)."),
    splits: int = typer.Option(20, help="Random split-halves for the routing evaluation."),
    items_as_rows: bool | None = typer.Option(
        None, "--items-as-rows/--models-as-rows", help="The matrix file has one row per item / per model (default: per model, checked)."
    ),
    fmt: str = format_option(),
    store: Path | None = typer.Option(None, help="Save the results as a 'skills' artifact in this store."),
    seed: int = typer.Option(0),
) -> None:
    """Skill slices: per-skill accuracy with CIs, significant skill gaps, and skill routing."""
    check_format(fmt)
    with Output(fmt) as out:
        _skills(out, results, source.value, items, column, n_clusters, encoder, generator, limit, compare, tol,
                correction.value, splits, items_as_rows, store, seed)


def _skills(out: Output, results: Path, source: str, items, column, n_clusters, encoder, generator, limit, compare,
            tol, correction, splits, items_as_rows, store, seed) -> None:
    import numpy as np
    import pandas as pd

    from sharpbench.insight import skills as sk
    from sharpbench.insight.stats import InsightError

    matrix = _load(results, items, items_as_rows)
    if source == "metadata":
        labels = sk.skills_from_metadata(matrix, column)
    else:
        from sharpbench.insight.items import item_texts

        texts = item_texts(matrix.item_meta) if len(matrix.item_meta.columns) else None
        if texts is None or texts.empty:
            raise sk.NoSkillSourceError(
                f"--from {source} needs item texts: pass --items with a question column"
                + ("" if len(matrix.item_meta.columns) else "; this matrix has no metadata, so only "
                   "--from embeddings/--from rationales with --items remain")
            )
        if limit:
            texts = texts.sample(min(limit, len(texts)), random_state=seed)
        if source == "embeddings":
            from sharpbench.insight.embed_skills import cluster_skills, embed_texts

            emb = embed_texts(texts.tolist(), encoder)
            labels, _ = cluster_skills(emb, texts.tolist(), texts.index.tolist(), n_clusters, seed=seed)
        else:
            from sharpbench.insight.rationale_skills import (
                load_generator,
                skills_from_rationales,
            )

            labels, table = skills_from_rationales(texts, load_generator(generator))
            out.rows(table.reset_index(), name="rationales", title="Rationales", max_rows=60)
    labelled = set(labels.index)
    matrix = matrix.select(items=[i for i in matrix.items if i in labelled])
    acc = sk.skill_accuracy(matrix, labels)
    out.rows(acc, title=f"Accuracy per model and skill ({labels.name}, 95% Wilson CI)", max_rows=60)
    pairs = None
    if compare:
        pairs = [tuple(m.strip() for m in compare.split(","))]
        if len(pairs[0]) != 2:
            raise InsightError("--compare takes exactly two model names: 'A,B'")
    else:
        pairs = sk.close_pairs(matrix, tol) or None
    diffs = sk.skill_differences(matrix, labels, pairs, correction=correction)
    sig = diffs[diffs["significant"]]
    out.rows(sig, name="differences", max_rows=25,
             title=f"Significant skill gaps ({correction}-corrected, {len(sig)} of {len(diffs)} tests)")
    route = sk.routing_evaluation(matrix, labels, n_splits=splits, seed=seed)
    summary = {k: v for k, v in route.items() if k != "routes"}
    out.fields({"routing": summary})
    out.table(pd.DataFrame([summary]), title="Routing (split-half)")
    _save(store, "skills", f"{results.stem}:{labels.name}", {
        "source": source, "accuracy": acc.replace({np.nan: None}).to_dict(orient="records"),
        "differences": sig.head(200).to_dict(orient="records"), "routing": route,
    })


def rank(
    results: Path = typer.Argument(..., help="Response matrix (CSV/TSV/Parquet, long table or lm-eval samples) or a store .duckdb."),
    method: RankMethod = typer.Option("all", help=f"{choice_help((*RANK_METHODS, 'all'))}."),
    items: Path | None = typer.Option(None, help="Item table with the benchmark column."),
    by: str | None = typer.Option(None, help="Item-metadata column whose values are the 'benchmarks'."),
    n_boot: int = typer.Option(100, help="Bootstrap resamples over items for rank intervals (0 = none)."),
    on_missing: str = typer.Option("refuse", help="Complete-data method on sparse data: refuse or switch."),
    items_as_rows: bool | None = typer.Option(
        None, "--items-as-rows/--models-as-rows", help="The matrix file has one row per item / per model (default: per model, checked)."
    ),
    fmt: str = format_option(),
    store: Path | None = typer.Option(None, help="Save the table as a 'rank' artifact in this store."),
    seed: int = typer.Option(0),
) -> None:
    """Aggregate model rankings across benchmarks, with bootstrap rank intervals."""
    check_format(fmt)
    from sharpbench.insight.rank import METHODS
    from sharpbench.insight.rank_ci import disagreements, method_agreement, rank_table
    from sharpbench.insight.skills import metadata_skill_columns
    from sharpbench.insight.stats import InsightError

    matrix = _load(results, items, items_as_rows)
    cols = metadata_skill_columns(matrix.item_meta)
    col = by or (cols[0] if cols else None)
    if col is not None and col not in matrix.item_meta.columns:
        raise InsightError(f"no item-metadata column {col!r}; available: {list(matrix.item_meta.columns)}")
    bench = matrix.item_meta[col].dropna().astype(str) if col else None
    methods = METHODS if method.value == "all" else (method.value,)
    tab = rank_table(matrix, bench, methods, n_boot=n_boot, on_missing=on_missing, seed=seed)
    switched = tab[tab["method"] != tab["used"]]
    if len(switched):
        typer.secho(f"note: {sorted(set(switched['method']))} need complete data; switched to bradley-terry",
                    fg=typer.colors.YELLOW, err=True)
    with Output(fmt) as out:
        out.rows(tab.sort_values(["method", "rank"]), title=f"Ranks by method (benchmarks = {col or 'whole matrix'})",
                 max_rows=60)
        if len(methods) > 1 and out.is_table:  # table mode only: the JSON stays the list of rank rows
            out.table(method_agreement(tab).reset_index(), title="Kendall tau-b between methods", max_rows=60)
            out.table(disagreements(tab).reset_index(), title="Where methods disagree (spread >= 2 places)",
                      max_rows=60)
    _save(store, "rank", f"{results.stem}:{col}", {"benchmarks": col, "table": tab.to_dict(orient="records")})


def calibration(
    store: Path = typer.Option(Path("sharpbench.duckdb"), help="Result store with per-choice log-likelihoods."),
    runs: str | None = typer.Option(None, help="Comma-separated run ids (default: all)."),
    bins: int = typer.Option(15, help="Number of ECE bins."),
    binning: Binning = typer.Option(CALIBRATION_BINNINGS[0], help="Confidence bins: equal width (uniform) or equal mass (quantile)."),
    length_normalise: bool = typer.Option(False, help="Divide choice log-likelihoods by token count first."),
    idk_choice: int | None = typer.Option(None, help="Index of an 'I don't know' option, if the task has one."),
    fmt: str = format_option(),
    save: bool = typer.Option(False, help="Save the summaries as 'calibration' artifacts in the store."),
) -> None:
    """ECE, Brier score, reliability data and the Distributional Correctness Score per run."""
    check_format(fmt)
    import pandas as pd

    from sharpbench.insight.calibration_store import calibration_from_store

    ids = [r.strip() for r in runs.split(",")] if runs else None
    res = calibration_from_store(store, ids, n_bins=bins, strategy=binning.value,
                                 length_normalise=length_normalise, idk_choice=idk_choice)
    rows = [{"run": k, **{m: v[m] for m in ("n_items", "accuracy", "mean_confidence", "ece", "brier", "dcs")}}
            for k, v in res.items()]
    with Output(fmt) as out:
        out.rows(pd.DataFrame(rows), title=f"Calibration ({next(iter(res.values()))['binning']})", max_rows=60)
    if save:
        for k, v in res.items():
            save_artifact(store, "calibration", k, {**{m: x for m, x in v.items() if m != "reliability"},
                                                    "reliability": json.loads(v["reliability"].to_json(orient="records"))})


def register(app: typer.Typer) -> None:
    """Add ``skills``, ``rank`` and ``calibration`` to the main app."""
    app.command("skills")(skills)
    app.command("rank")(rank)
    app.command("calibration")(calibration)
