"""DuckDB schema of the result store (version 2) and its migration from version 1.

Layout (one row per ...):

``runs``
    one evaluation of one model on one task with one prompt setup. ``run_id``
    is the *run key*: a hash of (fingerprint, backend, dtype, task,
    num_fewshot, template_hash), so re-running the same evaluation lands in
    the same run and reuses its stored items. ``kind`` is the run's request
    kind: ``multiple_choice``, ``generate_until`` or
    ``loglikelihood_rolling`` (runs of a version-1 store read as
    ``multiple_choice``). ``primary_metric`` is the per-item metric a response
    matrix takes when none is asked for: ``acc`` for multiple choice, the
    first metric of a generative run's first filter (e.g.
    ``exact_match,strict-match``). ``run_config`` (JSON object) records the
    generation and chat setup (``gen_kwargs``, ``chat_template_hash``,
    ``system_prompt``, ``repeats``, ...), NULL when there is none.
``items``
    (run, item): the standard per-item metrics of multiple choice as real
    columns (``acc, acc_norm, acc_bytes, brier, acc_mutual_info``: fast
    columnar aggregation and pivots into response matrices), any other
    metric in ``extra_metrics`` (JSON object; a generative item's
    ``"exact_match,strict-match"``-style metrics live here, keyed as lm-eval
    reports them), the item's metadata (``metadata`` JSON, e.g.
    ``{"subject": "anatomy"}``) and ``content_hash``, the fingerprint of the
    requests, choices and gold the item was scored on
    (:attr:`sharpbench.data.task.Item.content_hash`): an item whose data
    changed since is recomputed, not reused.

    Multiple choice: ``gold`` is the gold index, ``n_choices`` the number of
    choices, ``gold_text`` and ``prompt`` are NULL. A generative item has
    ``gold = -1`` and ``n_choices = 0`` (the columns stay NOT NULL, as in
    version 1), its reference answer in ``gold_text`` and its full prompt
    (few-shot examples and chat template included) in ``prompt``.
``choices``
    (run, item, choice): loglikelihood, greedy flag, continuation tokens
    (multiple-choice items only).
``generations``
    (run, item, sample): one generated sample of a generative item: the full
    ``text``, ``n_tokens``, ``stop_reason`` (``stop``/``eos``/``length``),
    the extracted answer per filter (``extracted``, JSON object filter ->
    text), the per-sample metric per filter (``correct``, JSON object filter
    -> 1.0/0.0), ``seconds`` and ``content_hash``: the fingerprint of what the
    sample was generated from, *without* the number of repeats
    (:func:`sharpbench.store.generations.sample_hash`), so asking for more
    repeats later reuses the samples already stored.
``artifacts``
    (kind, name): JSON payloads that analyses save for the HTML report.
``meta``
    key/value pairs; ``schema_version`` guards against files from a newer
    sharpbench.

Primary keys make a duplicated item, choice or sample row impossible; the
store writes each chunk of items (with their choices or samples) in one
transaction so an interrupted run leaves only whole items behind.

Migration: opening a version-1 file for writing adds the version-2 columns
(appended, with their defaults) and the ``generations`` table in one
transaction under the store's write lock, then stamps version 2; the data is
untouched. A version-1 file opened read-only is not changed: the store shows
it through temporary views with the version-2 columns (see
:func:`v1_read_views`).
"""

from __future__ import annotations

SCHEMA_VERSION = 2

# Per-item metrics kept as their own DOUBLE columns (others go to extra_metrics JSON).
METRIC_COLUMNS: tuple[str, ...] = ("acc", "acc_norm", "acc_bytes", "brier", "acc_mutual_info")

DDL: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY,
        model_id VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        backend VARCHAR NOT NULL,
        dtype VARCHAR NOT NULL,
        task VARCHAR NOT NULL,
        task_group VARCHAR,
        task_version VARCHAR,
        num_fewshot INTEGER NOT NULL,
        template_hash VARCHAR NOT NULL,
        "limit" INTEGER,
        n_total INTEGER,
        sharpbench_version VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        status VARCHAR NOT NULL,
        n_items INTEGER NOT NULL,
        metrics JSON
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS items (
        run_id VARCHAR NOT NULL,
        item_id INTEGER NOT NULL,
        gold INTEGER NOT NULL,
        n_choices INTEGER NOT NULL,
        acc DOUBLE,
        acc_norm DOUBLE,
        acc_bytes DOUBLE,
        brier DOUBLE,
        acc_mutual_info DOUBLE,
        extra_metrics JSON,
        metadata JSON,
        content_hash VARCHAR,
        PRIMARY KEY (run_id, item_id)
    )
    """,
    # Stores written before content hashes existed gain the column (NULL: content unknown).
    "ALTER TABLE items ADD COLUMN IF NOT EXISTS content_hash VARCHAR",
    # The process writing a run (pid, host, start ticks): `results` tells a live run from a killed one.
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS writer_pid INTEGER",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS writer_host VARCHAR",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS writer_start BIGINT",
    """
    CREATE TABLE IF NOT EXISTS choices (
        run_id VARCHAR NOT NULL,
        item_id INTEGER NOT NULL,
        choice INTEGER NOT NULL,
        loglik DOUBLE NOT NULL,
        is_greedy BOOLEAN NOT NULL,
        n_tokens INTEGER,
        PRIMARY KEY (run_id, item_id, choice)
    )
    """,
    # ---- version 2: request kinds and generative items (appended: a migrated v1 file and a new
    # file have the same column order).
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS kind VARCHAR DEFAULT 'multiple_choice'",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS primary_metric VARCHAR DEFAULT 'acc'",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS run_config JSON",
    "ALTER TABLE items ADD COLUMN IF NOT EXISTS gold_text VARCHAR",
    "ALTER TABLE items ADD COLUMN IF NOT EXISTS prompt VARCHAR",
    """
    CREATE TABLE IF NOT EXISTS generations (
        run_id VARCHAR NOT NULL,
        item_id INTEGER NOT NULL,
        sample INTEGER NOT NULL,
        text VARCHAR NOT NULL,
        n_tokens INTEGER NOT NULL,
        stop_reason VARCHAR NOT NULL,
        extracted JSON,
        correct JSON,
        seconds DOUBLE,
        content_hash VARCHAR,
        PRIMARY KEY (run_id, item_id, sample)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS artifacts (
        kind VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        payload JSON NOT NULL,
        PRIMARY KEY (kind, name)
    )
    """,
)

TABLES: tuple[str, ...] = ("runs", "items", "choices", "generations", "artifacts")

# Tables holding rows of one run (deleted together with the run).
RUN_TABLES: tuple[str, ...] = ("choices", "generations", "items", "runs")

KINDS: tuple[str, ...] = ("multiple_choice", "generate_until", "loglikelihood_rolling")

# What a version-1 file lacks, as (table, column, SQL value shown for it) and whole tables.
_V2_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "runs": (("kind", "'multiple_choice'"), ("primary_metric", "'acc'"), ("run_config", "CAST(NULL AS JSON)")),
    "items": (("gold_text", "CAST(NULL AS VARCHAR)"), ("prompt", "CAST(NULL AS VARCHAR)")),
}


def v1_read_views(con, catalog: str) -> None:
    """Show a version-1 file opened read-only as version 2: temporary views and an empty table.

    The views shadow ``runs`` and ``items`` (the temporary catalog is searched
    first) with the version-2 columns at their defaults; ``generations`` is an
    empty temporary table. Nothing is written to the file.
    """
    have_cols = {
        (t, c) for t, c in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ?", [catalog]
        ).fetchall()
    }
    quoted = catalog.replace('"', '""')
    for table, cols in _V2_COLUMNS.items():
        missing = [(c, v) for c, v in cols if (table, c) not in have_cols]
        if not missing:
            continue
        extra = ", ".join(f"{v} AS {c}" for c, v in missing)
        con.execute(f'CREATE OR REPLACE TEMP VIEW {table} AS SELECT *, {extra} FROM "{quoted}".main.{table}')
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [catalog]).fetchall()}
    if "generations" not in tables:
        ddl = next(d for d in DDL if "CREATE TABLE IF NOT EXISTS generations" in d)
        con.execute(ddl.replace("CREATE TABLE IF NOT EXISTS generations", "CREATE TEMP TABLE IF NOT EXISTS generations"))
