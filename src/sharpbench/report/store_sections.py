"""Report sections read from a result store: runs with CIs, per-subject tables, calibration."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.report import plots
from sharpbench.report.sections import Section, table_html

__all__ = [
    "DEFAULT_MIN_ITEMS",
    "calibration_section",
    "is_variant_run",
    "results_section",
    "run_labels",
    "run_metrics",
    "subject_section",
]

DEFAULT_MIN_ITEMS = 10
"""Rows (model x task group) pooling fewer items than this are listed in the table but not plotted."""

_VARIANT_PREFIX = "sensitivity:"

_EMPTY_HINT = (
    "This store holds no evaluation runs yet. Run an evaluation first, e.g. "
    "<code>sharpbench eval --model smollm2-135m --tasks arc_easy --limit 100</code>, then the analyses "
    "(<code>sharpbench irt fit</code>, <code>sharpbench distill</code>, <code>sharpbench adaptive</code>, "
    "<code>sharpbench skills</code>, <code>sharpbench rank</code>, <code>sharpbench calibration</code>), "
    "and build this report again."
)


def _value_se(v: Any) -> tuple[float, float]:
    if isinstance(v, (list, tuple)) and v:
        return float(v[0]), float(v[1]) if len(v) > 1 and v[1] is not None else float("nan")
    if isinstance(v, dict):
        val = v.get("value", v.get("mean", np.nan))
        return float(val), float(v.get("stderr", v.get("se", np.nan)) or np.nan)
    if isinstance(v, (int, float)):
        return float(v), float("nan")
    return float("nan"), float("nan")


def is_variant_run(runs: pd.DataFrame) -> pd.Series:
    """True for the runs ``sharpbench sensitivity`` stores, one per prompt variant (task ``sensitivity:...``).

    They are shown in the "Prompt sensitivity" section, not as tasks or models of their own.
    """
    task = runs["task"].astype(str).str.startswith(_VARIANT_PREFIX)
    if "task_group" in runs.columns:
        task |= runs["task_group"].fillna("").astype(str).str.startswith(_VARIANT_PREFIX)
    return task


def run_labels(runs: pd.DataFrame) -> pd.Series:
    """Model label per ``run_id``: the model name, or ``model[backend,dtype,k-shot]`` when the runs hold
    that model under several setups (the same labels as :func:`sharpbench.store.matrix.build_matrix`)."""
    setup = ["backend", "dtype", "num_fewshot"]
    n = runs.drop_duplicates(["model_id", *setup]).groupby("model_id").size()
    multi = runs["model_id"].isin(set(n[n > 1].index))
    long = (runs["model_id"].astype(str) + "[" + runs["backend"].astype(str) + "," + runs["dtype"].astype(str)
            + "," + runs["num_fewshot"].astype(int).astype(str) + "-shot]")
    return pd.Series(long.where(multi, runs["model_id"].astype(str)).to_numpy(), index=runs["run_id"].to_numpy())


def _group(runs: pd.DataFrame) -> pd.Series:
    """Task group of each run (e.g. ``mmlu`` for the 57 ``mmlu_*`` subjects), else its task."""
    g = runs["task_group"] if "task_group" in runs.columns else pd.Series(None, index=runs.index)
    return g.where(g.notna() & (g.astype(str) != ""), runs["task"]).astype(str)


def run_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """Long table ``model, task, metric, value, stderr, n_items`` from the store's runs.

    ``model`` carries backend/dtype/k-shot when a model was run under several setups.
    """
    rows = []
    labels = run_labels(runs) if not runs.empty else {}
    for r in runs.itertuples(index=False):
        metrics = r.metrics if isinstance(r.metrics, dict) else json.loads(r.metrics or "{}")
        for name, v in metrics.items():
            val, se = _value_se(v)
            if np.isfinite(val):
                rows.append((labels[r.run_id], r.task, name, val, se, int(r.n_items)))
    return pd.DataFrame(rows, columns=["model", "task", "metric", "value", "stderr", "n_items"])


def grouped_results(runs: pd.DataFrame, metric: str = "acc") -> pd.DataFrame:
    """``metric`` pooled per model label and task group over items, with 95% Wilson intervals.

    Columns ``model, group, n_tasks, n_items, value, ci_low, ci_high``. The pooled value is the
    item-weighted mean (``sum(value * n_items) / sum(n_items)``); Wilson intervals treat it as a
    fraction of items, so they stay inside [0, 1].
    """
    from sharpbench.insight.stats import wilson_interval

    rows = []
    labels = run_labels(runs)
    for r, grp in zip(runs.itertuples(index=False), _group(runs)):
        metrics = r.metrics if isinstance(r.metrics, dict) else json.loads(r.metrics or "{}")
        if metric in metrics:
            val, _ = _value_se(metrics[metric])
            if np.isfinite(val) and int(r.n_items) > 0:
                rows.append((labels[r.run_id], grp, r.task, int(r.n_items), val * int(r.n_items)))
    df = pd.DataFrame(rows, columns=["model", "group", "task", "n", "k"])
    cols = ["model", "group", "n_tasks", "n_items", "value", "ci_low", "ci_high"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    g = df.groupby(["model", "group"]).agg(n_tasks=("task", "nunique"), n_items=("n", "sum"),
                                           k=("k", "sum")).reset_index()
    lo, hi = wilson_interval(g["k"].to_numpy(float), g["n_items"].to_numpy(float))
    g = g.assign(value=g["k"] / g["n_items"], ci_low=lo, ci_high=hi)
    return g[cols].sort_values(["group", "value"], ascending=[True, False]).reset_index(drop=True)


def results_section(runs: pd.DataFrame, *, min_items: int = DEFAULT_MIN_ITEMS) -> Section:
    """Evaluation results per model and task group, with 95% Wilson intervals.

    Runs of one task group (e.g. the 57 ``mmlu_*`` subjects) are pooled into one row per model;
    rows with fewer than ``min_items`` items are listed but not plotted. Prompt-sensitivity variant
    runs are left to the "Prompt sensitivity" section. Every run and metric is in a folded table.
    """
    if runs.empty:
        return Section("Evaluation results", _EMPTY_HINT)
    variant = is_variant_run(runs)
    n_var = int(variant.sum())
    main_runs = runs[~variant]
    var_note = (f" {n_var} prompt-sensitivity variant run{'' if n_var == 1 else 's'} "
                "(task <code>sensitivity:…</code>) are not shown here; see Prompt sensitivity." if n_var else "")
    sec = Section("Evaluation results",
                  f"{len(runs)} run{'' if len(runs) == 1 else 's'}. Runs of one task group are pooled per model "
                  "(item-weighted); intervals: 95% Wilson score intervals over items." + var_note)
    if main_runs.empty:
        sec.blocks.append("<p>Only prompt-sensitivity variant runs so far: see Prompt sensitivity.</p>")
        return sec
    m = run_metrics(main_runs)
    if m.empty:
        sec.blocks.append("<p>No aggregate metrics stored yet (runs still running?).</p>")
        return sec
    main = "acc" if "acc" in set(m["metric"]) else m["metric"].iloc[0]
    g = grouped_results(main_runs, main)
    fraction = bool(len(g)) and bool(((g["value"] >= 0) & (g["value"] <= 1)).all())
    if not fraction:  # not a fraction of items: fall back to value ± 1.96 stderr per run
        mm = m[m["metric"] == main]
        se = mm["stderr"].fillna(0).to_numpy()
        g = pd.DataFrame({"model": mm["model"], "group": mm["task"], "n_tasks": 1, "n_items": mm["n_items"],
                          "value": mm["value"], "ci_low": mm["value"] - 1.96 * se,
                          "ci_high": mm["value"] + 1.96 * se}).reset_index(drop=True)
    shown = g[g["n_items"] >= min_items]
    small = len(g) - len(shown)
    if len(shown):
        sec.blocks.append(plots.interval_plot(
            [f"{a} / {b}" for a, b in zip(shown["model"], shown["group"])], shown["value"].to_numpy(),
            shown["ci_low"].to_numpy(), shown["ci_high"].to_numpy(),
            title=f"{main} per model and task group (95% {'Wilson ' if fraction else ''}CI)",
            xlabel=f"{main} (fraction)", ylabel="model / task group", xlim=(0, 1) if fraction else None))
    if small:
        sec.blocks.append(f'<p class="note">{small} row{"" if small == 1 else "s"} with fewer than {min_items} '
                          f"items {'is' if small == 1 else 'are'} not plotted (listed below; "
                          "<code>--min-items</code> changes the threshold).</p>")
    sec.blocks.append(table_html(g.rename(columns={"value": main}), max_rows=60, index=False))
    sec.blocks.append(f"<details><summary>All {len(main_runs)} runs, every metric (value ± stderr as "
                      "stored by the engine)</summary>"
                      + table_html(m.sort_values(["task", "metric", "value"], ascending=[True, True, False]),
                                   max_rows=200, index=False) + "</details>")
    return sec


def subject_section(runs: pd.DataFrame, items: pd.DataFrame, *, min_items: int = DEFAULT_MIN_ITEMS) -> Section | None:
    """Accuracy per model and subject/category (from the items' metadata), with Wilson CIs."""
    from sharpbench.insight.skills import KNOWN_SKILL_COLUMNS
    from sharpbench.insight.stats import wilson_interval

    if items.empty or "metadata" not in items.columns:
        return None
    meta = pd.DataFrame([json.loads(x) if isinstance(x, str) else {} for x in items["metadata"]])
    col = next((c for c in KNOWN_SKILL_COLUMNS if c in meta.columns), None)
    if col is None:
        return None
    runs = runs[~is_variant_run(runs)]
    items = items[items["run_id"].isin(set(runs["run_id"]))].reset_index(drop=True)
    if runs.empty or items.empty:
        return None
    meta = pd.DataFrame([json.loads(x) if isinstance(x, str) else {} for x in items["metadata"]])
    if col not in meta.columns:
        return None
    names = run_labels(runs)
    df = pd.DataFrame({"model": items["run_id"].map(names).to_numpy(), "skill": meta[col].astype(str).to_numpy(),
                       "acc": items["acc"].to_numpy(float)}).dropna()
    g = df.groupby(["model", "skill"])["acc"].agg(["sum", "count"]).reset_index()
    lo, hi = wilson_interval(g["sum"].to_numpy(), g["count"].to_numpy())
    g = g.assign(accuracy=g["sum"] / g["count"], ci_low=lo, ci_high=hi).rename(columns={"count": "n_items"})
    sec = Section(f"Per-{col} results", f"Accuracy per model and {col}; 95% Wilson intervals.")
    size = g.groupby("skill")["n_items"].sum()
    big = size[size >= min_items].sort_values(ascending=False)
    wide = g[g["skill"].isin(set(big.index[:30]))].pivot(index="model", columns="skill", values="accuracy")
    if wide.shape[1] >= 2:
        sec.blocks.append(plots.heatmap(wide, title=f"Accuracy per model and {col}", xlabel=col, ylabel="model",
                                        cbar="accuracy (fraction correct)"))
    cols = ["model", "skill", "n_items", "accuracy", "ci_low", "ci_high"]
    small = g[g["n_items"] < min_items]
    if len(small) == len(g):  # nothing reaches the threshold: list every row, fold nothing
        sec.blocks.append(f'<p class="note">No model × {html.escape(col)} row has {min_items} or more items.</p>')
        sec.blocks.append(table_html(g[cols], max_rows=60, index=False))
        return sec
    if len(big) > 30 or len(big) < len(size):
        sec.blocks.append(f'<p class="note">{len(size)} {html.escape(col)} values; the heatmap shows '
                          f"{min(len(big), 30)} with at least {min_items} items over all models (the largest 30).</p>")
    sec.blocks.append(table_html(g.loc[g["n_items"] >= min_items, cols], max_rows=60, index=False))
    if len(small):
        sec.blocks.append(f"<details><summary>{len(small)} model × {html.escape(col)} rows with fewer than "
                          f"{min_items} items</summary>" + table_html(small[cols], max_rows=200, index=False)
                          + "</details>")
    return sec


def calibration_section(runs: pd.DataFrame, choices: pd.DataFrame, items: pd.DataFrame, *,
                        min_items: int = DEFAULT_MIN_ITEMS) -> Section | None:
    """ECE, Brier, DCS and the reliability diagram per model and task group, in one table.

    Runs of one task group are pooled (their items together); prompt-sensitivity variant runs are left
    out; groups with fewer than ``min_items`` items are in the table but not in the diagram.
    """
    from sharpbench.insight.calibration import calibration_from_frames
    from sharpbench.insight.stats import InsightError

    if choices.empty:
        return None
    runs = runs[~is_variant_run(runs)]
    unit = pd.Series([f"{m} / {g}" for m, g in zip(run_labels(runs).to_numpy(), _group(runs))],
                     index=runs["run_id"].to_numpy())
    choices = choices[choices["run_id"].isin(set(unit.index))]
    items = items[items["run_id"].isin(set(unit.index))]
    if choices.empty:
        return None

    def pooled(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(unit=df["run_id"].map(unit), item_id=df["run_id"] + ":" + df["item_id"].astype(str))

    try:
        res = calibration_from_frames(pooled(choices), pooled(items), by="unit")
    except InsightError:
        return None
    if not res:
        return None
    rows = [{"model / task group": k, **{m: v[m] for m in ("n_items", "accuracy", "mean_confidence", "ece",
                                                            "brier", "dcs")}} for k, v in res.items()]
    binning = next(iter(res.values()))["binning"]
    sec = Section("Calibration", "From the stored per-choice log-likelihoods (softmax over choices), pooled "
                  f"per model and task group. ECE: top-label, {binning}. Brier: multi-class, range 0–2. DCS: "
                  "Distributional Correctness Score (Burns 2025), range −1–1, 0 = full abstention.")
    curves = {k: v["reliability"] for k, v in res.items() if int(v["n_items"]) >= min_items}
    if curves:
        sec.blocks.append(plots.reliability_plot(curves, title="Reliability diagram"))
    if len(curves) < len(res):
        sec.blocks.append(f'<p class="note">{len(res) - len(curves)} row(s) with fewer than {min_items} items '
                          "are not in the diagram.</p>")
    sec.blocks.append(table_html(pd.DataFrame(rows), index=False, max_rows=60))
    return sec
