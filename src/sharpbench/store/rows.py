"""Row-level helpers of the store: connecting, chunk tables, SQL filters, JSON conversion."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from sharpbench.results import GenItemResult, ItemResult
from sharpbench.store.errors import StoreCorruptError, StoreError, StoreLockedError
from sharpbench.store.schema import METRIC_COLUMNS

_LOCK_PID = re.compile(r"\(PID (\d+)\)")


_DUCKDB_HEADERS = 3 * 4096  # a DuckDB file: main header + two database headers, then its blocks


def truncated_message(path: Path, expected: int | None = None) -> str:
    """What to say about a store file cut short (a copy or download that stopped, a full disk)."""
    size = path.stat().st_size if path.exists() else 0
    need = f"of the {expected}" if expected else "fewer than"
    return (
        f"store {path} is truncated or damaged: it has {size} bytes, {need} its index refers to; "
        "restore it from a copy, or move it away and pass another --store"
    )


def check_size(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Raise :class:`StoreCorruptError` if the file is shorter than the blocks DuckDB says it uses.

    A truncated file otherwise opens fine and fails on the first query that
    reads a missing block. Only *used* blocks count: ``total_blocks`` also
    counts free blocks that DuckDB cuts off the file's end when it closes it
    (a healthy store after a few writes is shorter than its total). Skipped while a write-ahead
    log is pending (its blocks are not in the file yet).
    """
    if Path(f"{path}.wal").exists() or not path.exists():
        return
    try:
        rows = con.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchall()
        row = rows[0] if rows else None  # fetchall: no unfinished result left on the connection
    except duckdb.Error:
        return
    if not row or not row[0] or row[1] is None:
        return
    expected = _DUCKDB_HEADERS + int(row[0]) * int(row[1])
    if path.stat().st_size < expected:
        raise StoreCorruptError(truncated_message(path, expected))


def connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        msg = str(exc)
        if "lock" in msg.lower():
            pid = _LOCK_PID.search(msg)
            who = f"pid {pid.group(1)}" if pid else "unknown pid"
            raise StoreLockedError(
                f"store {path} is in use by another process ({who}); wait for it to finish, "
                "stop it, or pass another --store"
            ) from exc
        if "could not read enough bytes" in msg.lower():
            raise StoreCorruptError(truncated_message(path)) from exc
        if "not a valid duckdb" in msg.lower() or "corrupt" in msg.lower():
            raise StoreCorruptError(
                f"{path} is not a readable DuckDB store ({msg.split(': ', 1)[-1]}); "
                "move it away or pass another --store"
            ) from exc
        raise StoreError(f"cannot open store {path}: {msg}") from exc
    except duckdb.ConnectionException as exc:
        if "different configuration" not in str(exc):
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        if read_only:  # this process already has it open for writing: share that database
            return duckdb.connect(str(path), read_only=False)
        raise StoreLockedError(
            f"store {path} is open read-only elsewhere in this process; close that Store first"
        ) from exc
    except duckdb.Error as exc:
        raise StoreCorruptError(f"cannot open store {path}: {exc}") from exc


def chunk_tables(
    run_id: str,
    results: Sequence[ItemResult | GenItemResult],
    metadata: Mapping[int, Mapping[str, Any]],
    content_hashes: Mapping[int, str] | None = None,
    gen_items: Mapping[int, Any] | None = None,
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Arrow tables of the ``items``, ``choices`` and ``generations`` rows of one chunk of results.

    ``gen_items`` maps item id -> the :class:`~sharpbench.data.task.GenItem` a
    :class:`GenItemResult` was generated from: its prompt is stored and its
    :func:`~sharpbench.store.generations.sample_hash` marks the samples (none given: NULL, never reused).
    """
    from sharpbench.store.generations import GEN_COLUMNS, clean_text, generation_rows, sample_hash

    content_hashes = content_hashes or {}
    gen_items = gen_items or {}
    items: dict[str, list[Any]] = {k: [] for k in ("run_id", "item_id", "gold", "n_choices")}
    for m in METRIC_COLUMNS:
        items[m] = []
    for k in ("extra_metrics", "metadata", "content_hash", "gold_text", "prompt"):
        items[k] = []
    choices: dict[str, list[Any]] = {
        k: [] for k in ("run_id", "item_id", "choice", "loglik", "is_greedy", "n_tokens")
    }
    gens: dict[str, list[Any]] = {k: [] for k in GEN_COLUMNS}
    for res in results:
        generative = isinstance(res, GenItemResult)
        if not generative and not isinstance(res, ItemResult):
            raise TypeError(f"expected ItemResult or GenItemResult, got {type(res).__name__}")
        if not generative and not res.choices:
            raise ValueError(f"item {res.item_id}: no choice results to store")
        iid = int(res.item_id)
        if generative:
            src = gen_items.get(iid)
            generation_rows(run_id, res, None if src is None else sample_hash(src), gens)
        items["run_id"].append(run_id)
        items["item_id"].append(iid)
        items["gold"].append(-1 if generative else int(res.gold))
        items["n_choices"].append(0 if generative else len(res.choices))
        items["gold_text"].append(clean_text(res.gold) if generative else None)
        src = gen_items.get(iid) if generative else None
        items["prompt"].append(clean_text(src.prompt) if src is not None else None)
        extra = {}
        for name, value in res.metrics.items():
            v = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
            if name in METRIC_COLUMNS:
                continue
            if v is not None:
                extra[name] = v
        for m in METRIC_COLUMNS:
            v = res.metrics.get(m)
            items[m].append(None if v is None or math.isnan(float(v)) else float(v))
        items["extra_metrics"].append(json.dumps(extra) if extra else None)
        meta = metadata.get(iid)
        items["metadata"].append(json.dumps(jsonable(dict(meta))) if meta else None)
        items["content_hash"].append(content_hashes.get(iid))
        if generative:
            continue
        for c, ch in enumerate(res.choices):
            if not math.isfinite(ch.loglik) and not ch.loglik == -math.inf:
                raise ValueError(f"item {iid} choice {c}: loglik is {ch.loglik}")
            choices["run_id"].append(run_id)
            choices["item_id"].append(iid)
            choices["choice"].append(c)
            choices["loglik"].append(float(ch.loglik))
            choices["is_greedy"].append(bool(ch.is_greedy))
            choices["n_tokens"].append(None if ch.n_tokens is None or ch.n_tokens < 0 else int(ch.n_tokens))
    types = {"run_id": pa.string(), "item_id": pa.int32(), "gold": pa.int32(), "n_choices": pa.int32(),
             "extra_metrics": pa.string(), "metadata": pa.string(), "content_hash": pa.string(),
             "gold_text": pa.string(), "prompt": pa.string(),
             "choice": pa.int32(),
             "loglik": pa.float64(), "is_greedy": pa.bool_(), "n_tokens": pa.int32(),
             "sample": pa.int32(), "text": pa.string(), "stop_reason": pa.string(), "extracted": pa.string(),
             "correct": pa.string(), "seconds": pa.float64()}
    items_tbl = pa.table({k: pa.array(v, type=types.get(k, pa.float64())) for k, v in items.items()})
    choices_tbl = pa.table({k: pa.array(v, type=types[k]) for k, v in choices.items()})
    gens_tbl = pa.table({k: pa.array(v, type=types[k]) for k, v in gens.items()})
    return items_tbl, choices_tbl, gens_tbl


def sql_filters(
    *,
    models: Iterable[str] | None = None,
    tasks: Iterable[str] | None = None,
    run_ids: Iterable[str] | None = None,
    item_ids: Iterable[int] | None = None,
) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for col, values in (("model_id", models), ("task", tasks), ("run_id", run_ids), ("item_id", item_ids)):
        if values is None:
            continue
        vals = [values] if isinstance(values, str) else list(values)
        clauses.append(f"{col} IN (SELECT unnest(?))")
        params.append(vals)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def isna(v: Any) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples, paths and timestamps to JSON-friendly values."""
    import numpy as np

    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (Path, datetime)):
        return str(obj)
    return obj
