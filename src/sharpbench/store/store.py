"""The result store: one DuckDB file holding every run, item, choice score and generated sample.

>>> from sharpbench.store import Store
>>> with Store("sharpbench.duckdb") as store:          # doctest: +SKIP
...     store.runs()                                   # DataFrame of stored runs
...     store.response_matrix(tasks=["piqa"])          # models x items
...     store.response_matrix(tasks=["gsm8k_cot"], metric="exact_match,flexible-extract")

Multiple-choice results (:class:`~sharpbench.results.ItemResult`) and
generative ones (:class:`~sharpbench.results.GenItemResult`, every sample's
full text) go through the same :meth:`Store.write_items` and come back from
:meth:`Store.item_results`; :meth:`Store.missing_samples` and
:meth:`Store.stored_samples` tell a resumed generative run which samples it
still needs. The layout is in :mod:`sharpbench.store.schema`.

A :class:`Store` keeps its DuckDB connection open until :meth:`close`; DuckDB
lets one process at a time open a file for writing, so a second process gets
a :class:`StoreLockedError` naming the holder's pid.

``Store(path, shared=True)`` instead opens the file only around each
operation (each method call, or a :meth:`Store.session` block), under a lock
on the sidecar file ``PATH.lock`` (exclusive to write, shared to read), waiting
up to ``lock_timeout`` seconds for its turn. ``eval``, ``results`` and
``report`` use it, so a long evaluation can be watched and two evaluations
can write into one store in turns; each run row records the pid and host of
the process writing it, so :func:`shown_status` tells a live run from a
killed one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import duckdb
import pandas as pd

from sharpbench.results import ChoiceResult, GenItemResult, GenSample, ItemResult
from sharpbench.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreLookupError,
    StoreVersionError,
)
import sharpbench.store.locking as locking
from sharpbench.store.rows import (
    check_size,
    chunk_tables,
    connect,
    isna,
    jsonable,
    sql_filters,
    truncated_message,
)
from sharpbench.store.schema import DDL, KINDS, METRIC_COLUMNS, RUN_TABLES, SCHEMA_VERSION, v1_read_views

__all__ = ["Store", "RunSpec", "run_key", "DEFAULT_STORE", "shown_status"]

DEFAULT_STORE = "sharpbench.duckdb"
_FOREIGN_HOLDER_WAIT = 5.0  # seconds a shared Store waits for a process holding the file without PATH.lock


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
    """Everything that describes a run except its results.

    ``kind`` (``multiple_choice``, ``generate_until``, ``loglikelihood_rolling``;
    None: taken from the first results written, ``generate_until`` for
    :class:`~sharpbench.results.GenItemResult`), ``primary_metric`` (None:
    ``acc`` for multiple choice, the first metric of the first generative
    result written) and ``run_config`` (JSON-able dict: gen_kwargs, chat
    template hash, system prompt, repeats, ...) describe the run without
    entering its key.
    """

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
    kind: str | None = None
    primary_metric: str | None = None
    run_config: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"run kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    @property
    def run_id(self) -> str:
        return run_key(
            self.fingerprint, self.backend, self.dtype, self.task, self.num_fewshot, self.template_hash
        )


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def shown_status(run: Mapping[str, Any]) -> str:
    """A run row's status as a user should see it: ``running`` only while its writer process exists.

    A run left ``running`` by a killed process reads ``interrupted`` (the store
    marks it so on the next write). A writer on another host cannot be checked.
    """
    status = str(run.get("status"))
    if status != "running":
        return status
    pid = run.get("writer_pid")
    alive = locking.writer_alive(
        None if isna(pid) else pid,
        None if isna(run.get("writer_host")) else run.get("writer_host"),
        None if isna(run.get("writer_start")) else run.get("writer_start"),
    )
    return "interrupted" if alive is False else status


def _version() -> str:
    from sharpbench import __version__

    return __version__


def _in_session(method):
    """Run a Store method inside one turn on the file (shared mode; a no-op otherwise)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.session():
            return method(self, *args, **kwargs)

    return wrapper


class Store:
    """A DuckDB result store.

    Parameters
    ----------
    path : str or Path
        DuckDB file; created (with its schema) when missing unless ``read_only``.
    read_only : bool
        Open without write access (several readers may share the file).
    shared : bool
        Open the file only around each operation, taking turns with other
        processes through ``PATH.lock`` (see the module docs). Without it the
        file is held from construction to :meth:`close`.
    lock_timeout : float, optional
        Shared mode: seconds to wait for a turn before :class:`StoreLockedError`
        (default ``$SHARPBENCH_STORE_TIMEOUT`` or 60).

    Raises
    ------
    StoreLockedError
        Another process has the file open for writing (shared mode: for longer than ``lock_timeout``).
    StoreCorruptError
        The file is not a DuckDB database (or not a sharpbench store, read-only).
    StoreVersionError
        The file was written by a newer sharpbench.
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_STORE,
        *,
        read_only: bool = False,
        shared: bool = False,
        lock_timeout: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.shared = shared
        self.lock_timeout = locking.default_timeout() if lock_timeout is None else float(lock_timeout)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._depth = 0
        self._schema_checked = False
        if read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path}: run `sharpbench eval` first or pass --store")
        if not read_only and self.path.parent and not self.path.parent.exists():
            raise StoreError(f"cannot create store {self.path}: folder {self.path.parent} does not exist")
        if shared:
            with self.session():  # creates / checks the schema now: a bad file fails here
                pass
        else:
            self._open()

    def _open(self) -> None:
        self._con = connect(self.path, self.read_only)
        try:
            check_size(self._con, self.path)
            if not self._schema_checked:
                self._init_schema()
                self._schema_checked = True
            if self.read_only:
                self._legacy_views()
        except duckdb.IOException as exc:  # the file is shorter than its own block index says
            self._con.close()
            self._con = None
            raise StoreCorruptError(truncated_message(self.path)) from exc
        except BaseException:
            self._con.close()
            self._con = None
            raise

    @contextmanager
    def session(self) -> Iterator["Store"]:
        """Hold the file for a block of operations (one turn); nested calls share it.

        In shared mode the lock is taken (exclusive unless ``read_only``) and
        the file opened on entry, closed and unlocked on exit. Otherwise the
        file is already held and this does nothing.
        """
        if not self.shared or self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        t0 = time.monotonic()
        deadline = t0 + self.lock_timeout
        # A process holding the file itself, outside the turn-taking (a Store opened without
        # shared=True, an older sharpbench), will not let go between chunks: wait only briefly.
        foreign_deadline = t0 + min(self.lock_timeout, _FOREIGN_HOLDER_WAIT)
        while True:
            token = locking.acquire(
                self.path, exclusive=not self.read_only, timeout=max(0.0, deadline - time.monotonic()),
                told=self.lock_timeout,
            )
            self._depth = 1  # the schema set-up inside _open runs in this turn
            try:
                self._open()
                break
            except StoreLockedError:  # a process holding the file without the lock (no shared mode)
                self._depth = 0
                locking.release(token)
                if time.monotonic() >= foreign_deadline:
                    raise
                time.sleep(0.1)
            except BaseException:
                self._depth = 0
                locking.release(token)
                raise
        try:
            yield self
        finally:
            self._depth = 0
            con, self._con = self._con, None
            try:
                con.close()
            finally:
                locking.release(token)

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
            self._mark_dead_runs()

    def _legacy_views(self) -> None:
        """A file older than this schema, opened read-only: read it through version-2 views."""
        con = self._con
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except duckdb.Error:
            return
        if row is not None and int(row[0]) < SCHEMA_VERSION:
            v1_read_views(con, con.execute("SELECT current_database()").fetchone()[0])

    def _mark_dead_runs(self) -> None:
        """Runs still marked 'running' whose writer is gone become 'interrupted'."""
        con = self._con
        rows = con.execute(
            "SELECT run_id, writer_pid, writer_host, writer_start FROM runs WHERE status = 'running'"
        ).fetchall()
        me = locking.writer_identity()
        dead = []
        for run_id, pid, host, start in rows:
            if not self.shared and (pid is None or (pid == me[0] and host == me[1])):
                dead.append(run_id)  # the file is exclusively ours: our own earlier runs ended
                continue
            if pid == me[0] and host == me[1]:
                continue  # another Store of this process may be writing it
            if locking.writer_alive(pid, host, start) is False:
                dead.append(run_id)
        for run_id in dead:
            con.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = ?", [run_id])

    def close(self) -> None:
        """Close the connection (releases the file lock)."""
        if self._con is not None and not (self.shared and self._depth):
            self._con.close()
            self._con = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}{', read_only=True' if self.read_only else ''})"

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying DuckDB connection (for ad-hoc SQL; shared mode: inside :meth:`session`)."""
        if self._con is None:
            raise StoreError(
                f"store {self.path} is not open: "
                + ("use `with store.session():` around ad-hoc SQL on a shared store" if self.shared
                   else "it was closed")
            )
        return self._con

    def transaction(self) -> "_Transaction":
        """Context manager: BEGIN ... COMMIT, or ROLLBACK on any exception (shared mode: one turn)."""
        return _Transaction(self)

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"store {self.path} was opened read-only")

    # ----------------------------------------------------------------- runs
    @_in_session
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run's row as a dict (``metrics`` decoded), or None."""
        df = self._con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).df()
        if df.empty:
            return None
        row = df.iloc[0].to_dict()
        row["metrics"] = json.loads(row["metrics"]) if isinstance(row["metrics"], str) else {}
        row["run_config"] = json.loads(row["run_config"]) if isinstance(row.get("run_config"), str) else None
        return {k: (None if isna(v) else v) for k, v in row.items()}

    @_in_session
    def find_run(self, ref: str) -> dict[str, Any]:
        """The run whose id is ``ref`` or starts with it (``results`` shows 10 characters), as :meth:`get_run`.

        Raises
        ------
        StoreLookupError
            No run id starts with ``ref``, or several do.
        """
        ref = str(ref).strip()
        if not ref:
            raise StoreLookupError("name a run: its id (or the first characters `sharpbench results` shows)")
        exact = self.get_run(ref)
        if exact is not None:
            return exact
        rows = self._con.execute(
            "SELECT run_id, model_id, task FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id", [ref]
        ).fetchall()
        if not rows:
            raise StoreLookupError(f"no run {ref!r} in {self.path}; `sharpbench results` lists the stored runs")
        if len(rows) > 1:
            shown = ", ".join(f"{r} ({m} on {t})" for r, m, t in rows[:4]) + (" ..." if len(rows) > 4 else "")
            raise StoreLookupError(f"run {ref!r} is ambiguous in {self.path}: {shown}; give more characters")
        return self.get_run(rows[0][0])

    @_in_session
    def generation_stats(self, run_id: str, examples: int = 3) -> dict[str, Any]:
        """What a generative run's samples look like: counts by stop reason, tokens, unextracted answers.

        Returns ``n_samples``, ``stop_reasons`` (reason -> count), ``mean_tokens``,
        ``max_tokens``, ``seconds`` (sum) and ``unextracted``: filter -> (number
        of samples whose extracted answer is lm-eval's ``[invalid]``, up to
        ``examples`` item ids of such samples).
        """
        from sharpbench.store.generations import generation_stats

        return generation_stats(self._con, run_id, examples)

    @_in_session
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
        df["run_config"] = [json.loads(m) if isinstance(m, str) else None for m in df["run_config"]]
        return df

    @_in_session
    def stored_item_ids(self, run_id: str) -> set[int]:
        """Item ids with results in ``run_id``."""
        rows = self._con.execute("SELECT item_id FROM items WHERE run_id = ?", [run_id]).fetchall()
        return {int(r[0]) for r in rows}

    @_in_session
    def stored_item_hashes(self, run_id: str) -> dict[int, str | None]:
        """Item id -> content hash of what it was scored on (None: stored without one)."""
        try:
            rows = self._con.execute(
                "SELECT item_id, content_hash FROM items WHERE run_id = ?", [run_id]
            ).fetchall()
        except duckdb.BinderException:  # a read-only store from before content hashes
            return {i: None for i in self.stored_item_ids(run_id)}
        return {int(i): h for i, h in rows}

    @_in_session
    def write_items(
        self,
        spec: RunSpec,
        results: Sequence[ItemResult | GenItemResult],
        metadata: Mapping[int, Mapping[str, Any]] | None = None,
        *,
        replace: bool = False,
        content_hashes: Mapping[int, str] | None = None,
        overwrite: bool = False,
        gen_items: Mapping[int, Any] | None = None,
    ) -> int:
        """Store whole items of one run in ONE transaction; returns the number written.

        Creates the run row on first use. A duplicate (run, item) raises and
        nothing of the chunk is kept. ``replace=True`` first drops everything
        the run had (same transaction: on failure the old run stays intact).
        ``overwrite=True`` first drops only the stored rows of these items (an
        item recomputed because its data changed, or a generative item given
        again with more samples). ``content_hashes`` maps item id ->
        :attr:`~sharpbench.data.task.Item.content_hash` (or
        :attr:`~sharpbench.data.task.GenItem.content_hash`).

        A :class:`~sharpbench.results.GenItemResult` is written whole: its
        items row and one ``generations`` row per sample it carries (to add
        samples to a stored item, pass it again with the stored samples plus
        the new ones, ``overwrite=True``). ``gen_items`` maps item id -> the
        :class:`~sharpbench.data.task.GenItem` it was generated from: its
        prompt is stored for ``results show`` and its
        :func:`~sharpbench.store.generations.sample_hash` marks the samples for
        :meth:`missing_samples` (without it the samples are never reused).
        Generative and multiple-choice results cannot share a run.
        """
        self._check_writable()
        if not results:
            return 0
        metadata = metadata or {}
        run_id = spec.run_id
        gen_flags = {isinstance(r, GenItemResult) for r in results}
        if len(gen_flags) > 1:
            raise StoreError(f"run {run_id}: one chunk mixes generative and multiple-choice results")
        generative = gen_flags.pop()
        items_tbl, choices_tbl, gens_tbl = chunk_tables(run_id, results, metadata, content_hashes, gen_items)
        self._con.register("_sb_items", items_tbl)
        self._con.register("_sb_choices", choices_tbl)
        self._con.register("_sb_gens", gens_tbl)
        try:
            with self.transaction():
                if replace:
                    for table in RUN_TABLES:
                        self._con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
                elif overwrite:
                    for table in RUN_TABLES[:-1]:
                        self._con.execute(
                            f"DELETE FROM {table} WHERE run_id = ? AND item_id IN (SELECT item_id FROM _sb_items)",
                            [run_id],
                        )
                self._ensure_run(spec, results[0])
                kind = self._con.execute("SELECT kind FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]
                if generative != (kind == "generate_until"):
                    raise StoreError(
                        f"run {run_id} ({spec.task}) is a {kind} run; it cannot hold "
                        f"{'generative' if generative else 'multiple-choice'} results"
                    )
                if spec.run_config is not None:
                    self._con.execute("UPDATE runs SET run_config = ? WHERE run_id = ?",
                                      [json.dumps(jsonable(dict(spec.run_config))), run_id])
                cols = ", ".join(items_tbl.column_names)
                self._con.execute(f"INSERT INTO items ({cols}) SELECT {cols} FROM _sb_items")
                if choices_tbl.num_rows:
                    cols = ", ".join(choices_tbl.column_names)
                    self._con.execute(f"INSERT INTO choices ({cols}) SELECT {cols} FROM _sb_choices")
                if gens_tbl.num_rows:
                    cols = ", ".join(f'"{c}"' for c in gens_tbl.column_names)
                    self._con.execute(f"INSERT INTO generations ({cols}) SELECT {cols} FROM _sb_gens")
                pid, host, start = locking.writer_identity()
                self._con.execute(
                    "UPDATE runs SET n_items = (SELECT count(*) FROM items WHERE run_id = ?), "
                    "status = 'running', writer_pid = ?, writer_host = ?, writer_start = ? WHERE run_id = ?",
                    [run_id, pid, host, start, run_id],
                )
        except duckdb.ConstraintException as exc:
            raise StoreError(
                f"run {run_id}: an item of this chunk is already stored; nothing was written ({exc})"
            ) from exc
        finally:
            for name in ("_sb_items", "_sb_choices", "_sb_gens"):
                self._con.unregister(name)
        return len(results)

    def _ensure_run(self, spec: RunSpec, first: ItemResult | GenItemResult | None = None) -> None:
        kind = spec.kind or (first.kind if first is not None else "multiple_choice")
        primary = spec.primary_metric
        names = list(first.metrics) if first is not None else []
        if primary is None and kind != "generate_until":
            primary = "acc"
        elif primary is None and names:
            primary = names[0]  # the task's first metric of its first filter, e.g. exact_match,strict-match
        self._con.execute(
            """
            INSERT OR IGNORE INTO runs (run_id, model_id, fingerprint, backend, dtype, task,
                task_group, task_version, num_fewshot, template_hash, "limit", n_total,
                sharpbench_version, source, created_at, finished_at, status, n_items, metrics,
                kind, primary_metric, run_config)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, NULL, 'running', 0, '{}', ?, ?, ?)
            """,
            [
                spec.run_id, spec.model_id, spec.fingerprint, spec.backend, spec.dtype, spec.task,
                spec.task_group, spec.task_version, int(spec.num_fewshot), spec.template_hash,
                spec.n_total, _version(), spec.source, _now(), kind, primary,
                None if spec.run_config is None else json.dumps(jsonable(dict(spec.run_config))),
            ],
        )
        if primary is not None:  # a generative run created from results without metrics learns it now
            self._con.execute(
                "UPDATE runs SET primary_metric = ? WHERE run_id = ? AND primary_metric IS NULL", [primary, spec.run_id]
            )

    @_in_session
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

    @_in_session
    def delete_run(self, run_id: str) -> None:
        """Remove a run with all its items, choices and generations (one transaction)."""
        self._check_writable()
        with self.transaction():
            for table in RUN_TABLES:
                self._con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])

    # ---------------------------------------------------------------- items
    @_in_session
    def item_results(
        self, run_id: str, item_ids: Iterable[int] | None = None
    ) -> list[ItemResult | GenItemResult]:
        """Rebuild result objects from stored rows (ordered by item id).

        Multiple-choice items come back as :class:`ItemResult`, generative
        items (``n_choices = 0``) as :class:`GenItemResult` with every stored
        sample, in sample order.
        """
        from sharpbench.store.generations import gen_results

        ids = None if item_ids is None else sorted({int(i) for i in item_ids})
        items = self.items_frame([run_id], item_ids=ids)
        gen_rows = [r for r in items.itertuples(index=False) if int(r.n_choices) == 0]
        gens = gen_results(gen_rows, self.generations_frame([run_id], item_ids=ids), _row_metrics) if gen_rows else {}
        by_item: dict[int, list[ChoiceResult]] = {}
        if len(gen_rows) < len(items):
            choices = self.choices_frame([run_id], item_ids=ids)
            for iid, ll, greedy, ntok in choices[["item_id", "loglik", "is_greedy", "n_tokens"]].itertuples(
                index=False
            ):
                by_item.setdefault(int(iid), []).append(
                    ChoiceResult(float(ll), bool(greedy), -1 if isna(ntok) else int(ntok))
                )
        out = []
        for row in items.itertuples(index=False):
            if int(row.item_id) in gens:
                out.append(gens[int(row.item_id)])
                continue
            out.append(ItemResult(int(row.item_id), int(row.gold), tuple(by_item.get(int(row.item_id), ())),
                                  _row_metrics(row)))
        return out

    @_in_session
    def generations_frame(
        self, run_ids: Sequence[str] | None = None, *, item_ids: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """Per-sample rows of generative items (JSON columns as strings), ordered by run, item and sample."""
        where, params = sql_filters(run_ids=run_ids, item_ids=item_ids)
        return self._con.execute(
            f"SELECT * FROM generations {where} ORDER BY run_id, item_id, sample", params
        ).df()

    @_in_session
    def missing_samples(self, run_id: str, items: Sequence[Any]) -> dict[int, list[int]]:
        """Sample indices each generative item still needs: item id -> indices in ``range(item.repeats)``.

        A sample counts as stored only with the item's current
        :func:`~sharpbench.store.generations.sample_hash` (same prompt, stop
        sequences, sampling settings and scoring; the number of repeats may
        differ). Every item of ``items`` (:class:`~sharpbench.data.task.GenItem`)
        is a key; an empty list means all its samples are stored. After a run
        with ``repeats=4``, asking for 8 gives ``[4, 5, 6, 7]``.
        """
        valid = self._valid_samples(run_id, items)
        return {int(it.item_id): [i for i in range(int(it.repeats)) if i not in valid.get(int(it.item_id), ())]
                for it in items}

    @_in_session
    def stored_samples(self, run_id: str, items: Sequence[Any]) -> dict[int, list[GenSample]]:
        """The reusable stored samples of each generative item: item id -> samples with index < repeats.

        Only samples stored with the item's current
        :func:`~sharpbench.store.generations.sample_hash` (see
        :meth:`missing_samples`), in index order; items with none are absent.
        """
        from sharpbench.store.generations import samples_by_item

        valid = self._valid_samples(run_id, items)
        keep = {(iid, s) for iid, idx in valid.items() for s in idx}
        if not keep:
            return {}
        gens = self.generations_frame([run_id], item_ids=sorted({i for i, _ in keep}))
        mask = [(int(i), int(s)) in keep for i, s in zip(gens["item_id"], gens["sample"])]
        return samples_by_item(gens[mask])

    def _valid_samples(self, run_id: str, items: Sequence[Any]) -> dict[int, set[int]]:
        from sharpbench.store.generations import valid_samples

        return valid_samples(self._con, run_id, items)

    @_in_session
    def items_frame(
        self, run_ids: Sequence[str] | None = None, *, item_ids: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """Per-item rows (JSON columns as strings), ordered by run and item."""
        where, params = sql_filters(run_ids=run_ids, item_ids=item_ids)
        return self._con.execute(f"SELECT * FROM items {where} ORDER BY run_id, item_id", params).df()

    @_in_session
    def choices_frame(
        self, run_ids: Sequence[str] | None = None, *, item_ids: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """Per-choice rows, ordered by run, item and choice."""
        where, params = sql_filters(run_ids=run_ids, item_ids=item_ids)
        return self._con.execute(
            f"SELECT * FROM choices {where} ORDER BY run_id, item_id, choice", params
        ).df()

    # ------------------------------------------------------------ analyses
    @_in_session
    def response_matrix(
        self,
        runs: Iterable[str] | None = None,
        tasks: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        metric: str | None = None,
    ):
        """Models x items matrix of a per-item metric; see :func:`sharpbench.store.matrix.build_matrix`.

        ``metric=None``: each run's primary metric (``acc`` for multiple choice,
        e.g. ``exact_match,strict-match`` for a generative run).
        """
        from sharpbench.store.matrix import build_matrix

        return build_matrix(self, runs=runs, tasks=tasks, models=models, metric=metric)

    @_in_session
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

    @_in_session
    def artifacts(self, kind: str | None = None, *, name: str | None = None) -> list[dict[str, Any]]:
        """Saved artifacts (newest first) as dicts ``kind, name, created_at, payload``; optionally one kind / name."""
        sql = "SELECT kind, name, created_at, payload FROM artifacts"
        params: list[Any] = []
        where = []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._con.execute(sql + " ORDER BY created_at DESC, kind, name", params).fetchall()
        return [
            {"kind": k, "name": n, "created_at": t, "payload": json.loads(p)} for k, n, t, p in rows
        ]

    @_in_session
    def export(self, out_dir: str | Path, *, format: str = "parquet") -> list[Path]:
        """Write every table to ``out_dir/<table>.<format>`` (parquet or csv)."""
        from sharpbench.store.export import export_tables

        return export_tables(self, out_dir, format=format)


# ---------------------------------------------------------------- helpers
def _row_metrics(row: Any) -> dict[str, float]:
    """Per-item metrics of an ``items`` row: the metric columns, then ``extra_metrics``."""
    metrics = {m: float(getattr(row, m)) for m in METRIC_COLUMNS if not isna(getattr(row, m))}
    if isinstance(row.extra_metrics, str):
        metrics.update({k: float(v) for k, v in json.loads(row.extra_metrics).items()})
    return metrics


class _Transaction:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._session = None

    def __enter__(self) -> None:
        self._session = self._store.session()
        self._session.__enter__()
        try:
            self._con = self._store.connection
            self._con.begin()
        except BaseException:
            self._session.__exit__(None, None, None)
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._con.commit()
            else:
                try:
                    self._con.rollback()
                except duckdb.Error:
                    pass
        finally:
            self._session.__exit__(None, None, None)
