"""The result store: one DuckDB file holding every run, item and choice score.

>>> from sharpbench.store import Store
>>> with Store("sharpbench.duckdb") as store:          # doctest: +SKIP
...     store.runs()                                   # DataFrame of stored runs
...     store.response_matrix(tasks=["piqa"])          # models x items

A :class:`Store` keeps its DuckDB connection open until :meth:`close`; DuckDB
lets one process at a time open a file for writing, so a second process gets
a :class:`StoreLockedError` naming the holder's pid.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import duckdb
import pandas as pd

from sharpbench.engine.results import ChoiceResult, ItemResult
from sharpbench.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreVersionError,
)
from sharpbench.store.rows import (
    check_size,
    chunk_tables,
    connect,
    isna,
    jsonable,
    sql_filters,
    truncated_message,
)
from sharpbench.store.schema import DDL, METRIC_COLUMNS, SCHEMA_VERSION

__all__ = ["Store", "RunSpec", "run_key", "DEFAULT_STORE"]

DEFAULT_STORE = "sharpbench.duckdb"


def run_key(
    fingerprint: str, backend: str, dtype: str, task: str, num_fewshot: int, template_hash: str
) -> str:
    """Stable id of an evaluation setup (what makes two runs the same run).

    The model's *name* is deliberately absent: the same weights under two
    names are the same run; different weights under one name are not.
    """
    raw = "\x1f".join(map(str, (fingerprint, backend, dtype, task, int(num_fewshot), template_hash)))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class RunSpec:
    """Everything that describes a run except its results."""

    model_id: str
    fingerprint: str
    backend: str
    dtype: str
    task: str
    num_fewshot: int
    template_hash: str
    task_group: str | None = None
    task_version: str | None = None
    n_total: int | None = None
    source: str = "sharpbench"

    @property
    def run_id(self) -> str:
        return run_key(
            self.fingerprint, self.backend, self.dtype, self.task, self.num_fewshot, self.template_hash
        )


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _version() -> str:
    from sharpbench import __version__

    return __version__


class Store:
    """A DuckDB result store.

    Parameters
    ----------
    path : str or Path
        DuckDB file; created (with its schema) when missing unless ``read_only``.
    read_only : bool
        Open without write access (several readers may share the file).

    Raises
    ------
    StoreLockedError
        Another process has the file open for writing.
    StoreCorruptError
        The file is not a DuckDB database (or not a sharpbench store, read-only).
    StoreVersionError
        The file was written by a newer sharpbench.
    """

    def __init__(self, path: str | Path = DEFAULT_STORE, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path}: run `sharpbench eval` first or pass --store")
        if not read_only and self.path.parent and not self.path.parent.exists():
            raise StoreError(f"cannot create store {self.path}: folder {self.path.parent} does not exist")
        self._con = connect(self.path, read_only)
        try:
            check_size(self._con, self.path)
            self._init_schema()
        except duckdb.IOException as exc:  # the file is shorter than its own block index says
            self._con.close()
            raise StoreCorruptError(truncated_message(self.path)) from exc
        except BaseException:
            self._con.close()
            raise

    # ------------------------------------------------------------ lifecycle
    def _init_schema(self) -> None:
        con = self._con
        have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        row = None
        if "meta" in have:
            try:
                row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            except duckdb.Error:  # a foreign table that happens to be called meta
                row = None
        if (have or views) and row is None:
            # Tables but no sharpbench version stamp: someone else's database. Never write into it.
            names = sorted(have | views)
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise StoreCorruptError(
                f"{self.path} is a DuckDB file but not a sharpbench store (it holds {shown} and no "
                "sharpbench meta table); sharpbench will not read or write it: pass another --store"
            )
        if row is not None:
            found = int(row[0])
            if found > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"store {self.path} has schema version {found}, newer than this sharpbench "
                    f"({_version()}, schema {SCHEMA_VERSION}) understands: upgrade sharpbench "
                    "(`pip install -U sharpbench`) or use another --store"
                )
        elif self.read_only:  # an empty DuckDB file
            raise StoreCorruptError(f"{self.path} is a DuckDB file but not a sharpbench store (no meta table)")
        if self.read_only:
            return
        with self.transaction():
            for stmt in DDL:
                con.execute(stmt)
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )
            # The file is exclusively ours now, so a run still marked 'running' was killed.
            con.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")

    def close(self) -> None:
        """Close the connection (releases the file lock)."""
        self._con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}{', read_only=True' if self.read_only else ''})"

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying DuckDB connection (for ad-hoc SQL)."""
        return self._con

    def transaction(self) -> "_Transaction":
        """Context manager: BEGIN ... COMMIT, or ROLLBACK on any exception."""
        return _Transaction(self._con)

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"store {self.path} was opened read-only")

    # ----------------------------------------------------------------- runs
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run's row as a dict (``metrics`` decoded), or None."""
        df = self._con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).df()
        if df.empty:
            return None
        row = df.iloc[0].to_dict()
        row["metrics"] = json.loads(row["metrics"]) if isinstance(row["metrics"], str) else {}
        return {k: (None if isna(v) else v) for k, v in row.items()}

    def runs(
        self,
        *,
        models: Iterable[str] | None = None,
        tasks: Iterable[str] | None = None,
        run_ids: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Stored runs, newest first (``metrics`` decoded to dicts)."""
        where, params = sql_filters(models=models, tasks=tasks, run_ids=run_ids)
        df = self._con.execute(
            f"SELECT * FROM runs {where} ORDER BY created_at DESC, task", params
        ).df()
        df["metrics"] = [json.loads(m) if isinstance(m, str) else {} for m in df["metrics"]]
        return df

    def stored_item_ids(self, run_id: str) -> set[int]:
        """Item ids with results in ``run_id``."""
        rows = self._con.execute("SELECT item_id FROM items WHERE run_id = ?", [run_id]).fetchall()
        return {int(r[0]) for r in rows}

    def stored_item_hashes(self, run_id: str) -> dict[int, str | None]:
        """Item id -> content hash of what it was scored on (None: stored without one)."""
        try:
            rows = self._con.execute(
                "SELECT item_id, content_hash FROM items WHERE run_id = ?", [run_id]
            ).fetchall()
        except duckdb.BinderException:  # a read-only store from before content hashes
            return {i: None for i in self.stored_item_ids(run_id)}
        return {int(i): h for i, h in rows}

    def write_items(
        self,
        spec: RunSpec,
        results: Sequence[ItemResult],
        metadata: Mapping[int, Mapping[str, Any]] | None = None,
        *,
        replace: bool = False,
        content_hashes: Mapping[int, str] | None = None,
        overwrite: bool = False,
    ) -> int:
        """Store whole items of one run in ONE transaction; returns the number written.

        Creates the run row on first use. A duplicate (run, item) raises and
        nothing of the chunk is kept. ``replace=True`` first drops everything
        the run had (same transaction: on failure the old run stays intact).
        ``overwrite=True`` first drops only the stored rows of these items (an
        item recomputed because its data changed). ``content_hashes`` maps item
        id -> :attr:`~sharpbench.data.task.Item.content_hash`.
        """
        self._check_writable()
        if not results:
            return 0
        metadata = metadata or {}
        run_id = spec.run_id
        items_tbl, choices_tbl = chunk_tables(run_id, results, metadata, content_hashes)
        self._con.register("_sb_items", items_tbl)
        self._con.register("_sb_choices", choices_tbl)
        try:
            with self.transaction():
                if replace:
                    for table in ("choices", "items", "runs"):
                        self._con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
                elif overwrite:
                    for table in ("choices", "items"):
                        self._con.execute(
                            f"DELETE FROM {table} WHERE run_id = ? AND item_id IN (SELECT item_id FROM _sb_items)",
                            [run_id],
                        )
                self._ensure_run(spec)
                cols = ", ".join(items_tbl.column_names)
                self._con.execute(f"INSERT INTO items ({cols}) SELECT {cols} FROM _sb_items")
                cols = ", ".join(choices_tbl.column_names)
                self._con.execute(f"INSERT INTO choices ({cols}) SELECT {cols} FROM _sb_choices")
                self._con.execute(
                    "UPDATE runs SET n_items = (SELECT count(*) FROM items WHERE run_id = ?), "
                    "status = 'running' WHERE run_id = ?",
                    [run_id, run_id],
                )
        except duckdb.ConstraintException as exc:
            raise StoreError(
                f"run {run_id}: an item of this chunk is already stored; nothing was written ({exc})"
            ) from exc
        finally:
            self._con.unregister("_sb_items")
            self._con.unregister("_sb_choices")
        return len(results)

    def _ensure_run(self, spec: RunSpec) -> None:
        self._con.execute(
            """
            INSERT OR IGNORE INTO runs (run_id, model_id, fingerprint, backend, dtype, task,
                task_group, task_version, num_fewshot, template_hash, "limit", n_total,
                sharpbench_version, source, created_at, finished_at, status, n_items, metrics)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, NULL, 'running', 0, '{}')
            """,
            [
                spec.run_id, spec.model_id, spec.fingerprint, spec.backend, spec.dtype, spec.task,
                spec.task_group, spec.task_version, int(spec.num_fewshot), spec.template_hash,
                spec.n_total, _version(), spec.source, _now(),
            ],
        )

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        metrics: Mapping[str, Any] | None = None,
        limit: int | None | str = "keep",
    ) -> None:
        """Record a run's end: status, aggregate metrics over all stored items, requested limit.

        ``limit`` only grows: the stored value is the largest limit ever asked,
        NULL once the whole split was requested; ``"keep"`` leaves it unchanged
        (evaluations of chosen item ids).
        """
        self._check_writable()
        row = self.get_run(run_id)
        if row is None:
            return
        cur = row["limit"]
        if limit == "keep" or (cur is None and row["finished_at"] is not None):
            new_limit = cur
        elif limit is None:
            new_limit = None
        else:
            new_limit = max(int(cur or 0), int(limit))
        with self.transaction():
            self._con.execute(
                """
                UPDATE runs SET status = ?, finished_at = ?, metrics = COALESCE(?, metrics),
                    n_items = (SELECT count(*) FROM items WHERE run_id = ?), "limit" = ?
                WHERE run_id = ?
                """,
                [
                    status, _now(),
                    json.dumps(jsonable(metrics)) if metrics is not None else None,
                    run_id, new_limit, run_id,
                ],
            )

    def delete_run(self, run_id: str) -> None:
        """Remove a run with all its items and choices (one transaction)."""
        self._check_writable()
        with self.transaction():
            for table in ("choices", "items", "runs"):
                self._con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])

    # ---------------------------------------------------------------- items
    def item_results(self, run_id: str, item_ids: Iterable[int] | None = None) -> list[ItemResult]:
        """Rebuild :class:`ItemResult` objects from stored rows (ordered by item id)."""
        ids = None if item_ids is None else sorted({int(i) for i in item_ids})
        items = self.items_frame([run_id], item_ids=ids)
        choices = self.choices_frame([run_id], item_ids=ids)
        by_item: dict[int, list[ChoiceResult]] = {}
        for iid, ll, greedy, ntok in choices[["item_id", "loglik", "is_greedy", "n_tokens"]].itertuples(
            index=False
        ):
            by_item.setdefault(int(iid), []).append(
                ChoiceResult(float(ll), bool(greedy), -1 if isna(ntok) else int(ntok))
            )
        out = []
        for row in items.itertuples(index=False):
            metrics = {m: float(getattr(row, m)) for m in METRIC_COLUMNS if not isna(getattr(row, m))}
            if isinstance(row.extra_metrics, str):
                metrics.update({k: float(v) for k, v in json.loads(row.extra_metrics).items()})
            out.append(ItemResult(int(row.item_id), int(row.gold), tuple(by_item.get(int(row.item_id), ())), metrics))
        return out

    def items_frame(
        self, run_ids: Sequence[str] | None = None, *, item_ids: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """Per-item rows (JSON columns as strings), ordered by run and item."""
        where, params = sql_filters(run_ids=run_ids, item_ids=item_ids)
        return self._con.execute(f"SELECT * FROM items {where} ORDER BY run_id, item_id", params).df()

    def choices_frame(
        self, run_ids: Sequence[str] | None = None, *, item_ids: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """Per-choice rows, ordered by run, item and choice."""
        where, params = sql_filters(run_ids=run_ids, item_ids=item_ids)
        return self._con.execute(
            f"SELECT * FROM choices {where} ORDER BY run_id, item_id, choice", params
        ).df()

    # ------------------------------------------------------------ analyses
    def response_matrix(
        self,
        runs: Iterable[str] | None = None,
        tasks: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        metric: str = "acc",
    ):
        """Models x items matrix of a per-item metric; see :func:`sharpbench.store.matrix.build_matrix`."""
        from sharpbench.store.matrix import build_matrix

        return build_matrix(self, runs=runs, tasks=tasks, models=models, metric=metric)

    def save_artifact(self, kind: str, name: str, payload: Mapping[str, Any]) -> None:
        """Save (or replace) the JSON payload of analysis ``kind``/``name`` for the report."""
        self._check_writable()
        if not kind or not name:
            raise ValueError("artifact kind and name must be non-empty strings")
        try:
            text = json.dumps(jsonable(payload), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"artifact {kind}/{name}: payload is not JSON-serialisable ({exc})") from exc
        with self.transaction():
            self._con.execute(
                "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?)", [kind, name, _now(), text]
            )

    def artifacts(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Saved artifacts (newest first) as dicts ``kind, name, created_at, payload``."""
        sql = "SELECT kind, name, created_at, payload FROM artifacts"
        params: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(kind)
        rows = self._con.execute(sql + " ORDER BY created_at DESC, kind, name", params).fetchall()
        return [
            {"kind": k, "name": n, "created_at": t, "payload": json.loads(p)} for k, n, t, p in rows
        ]

    def export(self, out_dir: str | Path, *, format: str = "parquet") -> list[Path]:
        """Write every table to ``out_dir/<table>.<format>`` (parquet or csv)."""
        from sharpbench.store.export import export_tables

        return export_tables(self, out_dir, format=format)


# ---------------------------------------------------------------- helpers
class _Transaction:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __enter__(self) -> None:
        self._con.begin()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._con.commit()
        else:
            try:
                self._con.rollback()
            except duckdb.Error:
                pass
