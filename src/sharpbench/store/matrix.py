"""Build a :class:`~sharpbench.matrix.ResponseMatrix` from stored per-item results."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterable

import pandas as pd

from sharpbench.matrix import ResponseMatrix
from sharpbench.store.errors import StoreError
from sharpbench.store.schema import METRIC_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    from sharpbench.store.store import Store

__all__ = ["build_matrix"]

_SETUP = ("backend", "dtype", "num_fewshot")


def build_matrix(
    store: "Store",
    *,
    runs: Iterable[str] | None = None,
    tasks: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
    metric: str | None = None,
) -> ResponseMatrix:
    """Models x items matrix of ``metric`` over the selected runs.

    ``metric`` names a per-item metric as it is stored: ``acc``, ``acc_norm``,
    ... for multiple choice, ``"exact_match,strict-match"`` (metric, comma,
    filter, as lm-eval reports it) for a generative run, whose cells are then
    0/1 per item for that filter. ``None`` (the default) takes each run's
    *primary metric* (``runs.primary_metric``): ``acc`` for multiple choice,
    the first metric of the first filter for a generative run (e.g.
    ``exact_match,strict-match`` for ``gsm8k_cot``), so one matrix can hold
    both kinds.

    Rows are respondents: the run's ``model_id``, or ``model_id[backend,dtype,k-shot]``
    when one model was evaluated under several setups. Columns are
    ``"<task>/<item_id>"``. ``item_meta`` has ``task, group, n_choices`` plus
    every key of the items' stored metadata (e.g. ``subject``); ``model_meta``
    has ``model_id, fingerprint, backend, dtype, num_fewshot``.

    Raises
    ------
    StoreError
        No run matches, or two runs would fill the same cell (pass ``runs=``).
    """
    from sharpbench.store.rows import sql_filters

    check_metric_name(metric)
    where, params = sql_filters(
        models=models, tasks=tasks, run_ids=None if runs is None else list(runs)
    )
    where = where.replace("model_id", "r.model_id").replace("task IN", "r.task IN").replace(
        "run_id IN", "r.run_id IN"
    )
    value, value_params = _value_sql(metric)
    with store.session():
        df = store.connection.execute(
            f"""
            SELECT r.run_id, r.model_id, r.fingerprint, r.backend, r.dtype, r.num_fewshot,
                   r.task, r.task_group, i.item_id, i.n_choices, i.metadata, {value} AS score,
                   i.extra_metrics AS extra, {", ".join(f"i.{m} IS NOT NULL AS has_{m}" for m in METRIC_COLUMNS)}
            FROM items i JOIN runs r ON i.run_id = r.run_id {where}
            ORDER BY r.created_at, r.run_id, i.item_id
            """,
            value_params + params,
        ).df()
    if df.empty:
        raise StoreError(
            f"no stored items match (runs={runs}, tasks={tasks}, models={models}); "
            "see `sharpbench results` for what the store holds"
        )
    if df["score"].isna().all():
        if metric is None:
            raise StoreError("the selected runs store no value of their primary metric; pass metric=")
        raise StoreError(f"metric {metric!r} is not stored for the selected runs{_known_hint(df)}")
    df["respondent"] = _respondent_labels(df)
    dup = df.duplicated(["respondent", "task", "item_id"])
    if dup.any():
        row = df.loc[dup].iloc[0]
        clash = df.loc[(df.respondent == row.respondent) & (df.task == row.task), "run_id"].unique()
        raise StoreError(
            f"model {row.respondent!r} has several runs on task {row.task!r} "
            f"({', '.join(clash)}); pick one with runs=[...] / --run"
        )
    df["item"] = df["task"] + "/" + df["item_id"].astype(str)

    first = df.drop_duplicates("item")
    meta = pd.DataFrame(
        {"task": first["task"].to_numpy(), "group": first["task_group"].to_numpy(),
         "n_choices": first["n_choices"].to_numpy()},
        index=pd.Index(first["item"].to_numpy(), name="item"),
    )
    extra = [json.loads(m) if isinstance(m, str) else {} for m in first["metadata"]]
    extra_df = pd.DataFrame(extra, index=meta.index)
    for col in extra_df.columns:
        if col not in meta.columns:
            meta[col] = extra_df[col]

    models_df = df.drop_duplicates("respondent").set_index("respondent")
    model_meta = models_df[["model_id", "fingerprint", "backend", "dtype", "num_fewshot"]]
    model_meta.index.name = "model"

    wide = df.pivot(index="respondent", columns="item", values="score")
    wide = wide.reindex(index=list(models_df.index), columns=list(meta.index))
    return ResponseMatrix.from_frame(wide, item_meta=meta, model_meta=model_meta)


def check_metric_name(metric: str | None) -> None:
    """Raise ValueError for a metric name that cannot be a stored per-item metric."""
    if metric is None:
        return
    if not isinstance(metric, str) or not metric.strip() or any(c in metric for c in "\"\\'") or any(
        ord(c) < 32 for c in metric
    ):
        raise ValueError(f"invalid metric name {metric!r}")


def _json_path(name_sql: str) -> str:
    """SQL for the JSON path ``$."<name>"`` of a metric name given as SQL text."""
    return f"""'$."' || {name_sql} || '"'"""


def _value_sql(metric: str | None) -> tuple[str, list]:
    """The SELECT expression of a cell's score and its parameters."""
    from_json = "TRY_CAST(json_extract_string(i.extra_metrics, {path}) AS DOUBLE)"
    if metric is not None:
        if metric in METRIC_COLUMNS:
            return f"i.{metric}", []
        return from_json.format(path="?"), [f'$."{metric}"']
    cases = " ".join(f"WHEN '{m}' THEN i.{m}" for m in METRIC_COLUMNS)
    primary = "COALESCE(r.primary_metric, 'acc')"
    return f"CASE {primary} {cases} ELSE {from_json.format(path=_json_path(primary))} END", []


def _known_hint(df: pd.DataFrame) -> str:
    """`` (stored: a, b)``: the per-item metric names the selected items have."""
    names: dict[str, None] = {}
    for extra in df["extra"].dropna().head(50):
        names.update(dict.fromkeys(json.loads(extra)))
    for m in METRIC_COLUMNS:
        if df[f"has_{m}"].any():
            names[m] = None
    return f" (stored: {', '.join(names)})" if names else ""


def _respondent_labels(df: pd.DataFrame) -> pd.Series:
    setups = df.drop_duplicates(["model_id", *_SETUP]).groupby("model_id").size()
    multi = df["model_id"].isin(set(setups[setups > 1].index))
    long = (
        df["model_id"] + "[" + df["backend"] + "," + df["dtype"] + ","
        + df["num_fewshot"].astype(int).astype(str) + "-shot]"
    )
    return df["model_id"].where(~multi, long)
