"""DuckDB schema of the result store and its version check.

Layout (one row per ...):

``runs``
    one evaluation of one model on one task with one prompt setup. ``run_id``
    is the *run key*: a hash of (fingerprint, backend, dtype, task,
    num_fewshot, template_hash), so re-running the same evaluation lands in
    the same run and reuses its stored items.
``items``
    (run, item): gold index, number of choices, the standard per-item
    metrics as real columns (``acc, acc_norm, acc_bytes, brier,
    acc_mutual_info``: fast columnar aggregation and pivots into response
    matrices), any other metric in ``extra_metrics`` (JSON object) and the
    item's metadata (``metadata`` JSON, e.g. ``{"subject": "anatomy"}``) and
    ``content_hash``, the fingerprint of the requests, choices and gold the
    item was scored on (:attr:`sharpbench.data.task.Item.content_hash`): an
    item whose data changed since is recomputed, not reused.
``choices``
    (run, item, choice): loglikelihood, greedy flag, continuation tokens.
``artifacts``
    (kind, name): JSON payloads that analyses save for the HTML report.
``meta``
    key/value pairs; ``schema_version`` guards against files from a newer
    sharpbench.

Primary keys make a duplicated item or choice row impossible; the store
writes each chunk of items in one transaction so an interrupted run leaves
only whole items behind.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

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

TABLES: tuple[str, ...] = ("runs", "items", "choices", "artifacts")
