"""Merge several result stores into a new one (``sharpbench results merge A B -o C``).

Runs are matched by run key, items by (run key, item id). An item stored in
several inputs is kept once, with its choices (or generated samples) from the same input; if two
inputs scored it on different content (their ``content_hash`` differ) the
merge is refused, naming the run, the item and both files. An item with a hash
wins over the same item stored without one (an older sharpbench). Artifacts
are matched by (kind, name), the newest kept. The output is written to a
temporary file and renamed into place, so a failed merge leaves nothing behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from sharpbench.metrics import summarize
from sharpbench.store.errors import StoreError
import sharpbench.store.locking as locking
from sharpbench.store.schema import TABLES

__all__ = ["merge_stores", "MergeSummary"]


@dataclass
class MergeSummary:
    out: Path
    n_runs: int = 0
    n_items: int = 0
    n_duplicates: int = 0  # (run, item) pairs found in more than one input, kept once
    n_artifacts: int = 0
    notes: list[str] = field(default_factory=list)


def _read(path: Path) -> dict[str, pd.DataFrame]:
    from sharpbench.store.store import Store

    with Store(path, read_only=True, shared=True) as st, st.session():
        return {t: st.connection.execute(f"SELECT * FROM {t}").df() for t in TABLES}


def merge_stores(sources: Sequence[str | Path], out: str | Path, *, force: bool = False) -> MergeSummary:
    """Write the union of ``sources`` to ``out``; see the module docs for the rules."""
    from sharpbench.store.store import Store, shown_status

    srcs = [Path(s) for s in sources]
    out = Path(out)
    if len(srcs) < 2:
        raise StoreError("results merge needs at least two stores to merge")
    for s in srcs:
        if not s.exists():
            raise StoreError(f"no store at {s}")
        if out.exists() and s.resolve() == out.resolve():
            raise StoreError(f"-o {out} is one of the stores being merged; write the merge to a new file")
    if out.exists():
        if not force:
            raise StoreError(f"{out} already exists; pass --force to overwrite it")
        Store(out, read_only=True, shared=True).close()  # never overwrite someone else's database
    if out.parent and not out.parent.exists():
        raise StoreError(f"cannot write {out}: folder {out.parent} does not exist")

    tables = [_read(s) for s in srcs]
    summary = MergeSummary(out)
    runs = pd.concat([t["runs"].assign(_src=i) for i, t in enumerate(tables)], ignore_index=True)
    items = pd.concat([t["items"].assign(_src=i) for i, t in enumerate(tables)], ignore_index=True)
    choices = pd.concat([t["choices"].assign(_src=i) for i, t in enumerate(tables)], ignore_index=True)
    gens = pd.concat([t["generations"].assign(_src=i) for i, t in enumerate(tables)], ignore_index=True)
    arts = pd.concat([t["artifacts"] for t in tables], ignore_index=True)
    if "content_hash" not in items:
        items["content_hash"] = None

    # ---- items: one per (run, item); refuse different content
    items["_has_hash"] = items["content_hash"].notna()
    conflicts = []
    dup_mask = items.duplicated(["run_id", "item_id"], keep=False)
    for (run_id, item_id), grp in items[dup_mask].groupby(["run_id", "item_id"], sort=True):
        hashes = grp.loc[grp["_has_hash"], ["content_hash", "_src"]].drop_duplicates("content_hash")
        if len(hashes) > 1:
            (h1, s1), (h2, s2) = list(hashes.itertuples(index=False, name=None))[:2]
            conflicts.append(
                f"run {run_id} item {item_id}: content hash {h1} in {srcs[s1]} but {h2} in {srcs[s2]}"
            )
    if conflicts:
        more = f" (and {len(conflicts) - 3} more)" if len(conflicts) > 3 else ""
        raise StoreError(
            f"cannot merge: {len(conflicts)} item(s) were scored on different content in different stores: "
            + "; ".join(conflicts[:3]) + more
            + "; re-run them on the current data (`sharpbench eval` recomputes changed items) before merging"
        )
    summary.n_duplicates = int(items.duplicated(["run_id", "item_id"]).sum())
    items = items.sort_values(["run_id", "item_id", "_has_hash", "_src"], ascending=[True, True, False, True])
    kept = items.drop_duplicates(["run_id", "item_id"], keep="first")
    choices = choices.merge(kept[["run_id", "item_id", "_src"]], on=["run_id", "item_id", "_src"], how="inner")
    gens = gens.merge(kept[["run_id", "item_id", "_src"]], on=["run_id", "item_id", "_src"], how="inner")

    # ---- runs: one row per run key
    n_by_run = kept.groupby("run_id").size()
    srcs_by_run = kept.groupby("run_id")["_src"].nunique()
    run_rows = []
    for run_id, grp in runs.sort_values("_src").groupby("run_id", sort=False):
        row = grp.iloc[0].to_dict()
        statuses = set(grp["status"])
        live = [r for r in grp.to_dict("records") if shown_status(r) == "running"]
        if live:
            names = ", ".join(str(srcs[int(r["_src"])]) for r in live)
            summary.notes.append(
                f"run {run_id} ({row['model_id']} on {row['task']}) was still running in {names}: "
                "copied what it had stored, marked interrupted"
            )
        row["status"] = "complete" if statuses == {"complete"} else (
            "interrupted" if statuses & {"running", "interrupted"} else sorted(statuses)[0])
        row["created_at"] = grp["created_at"].min()
        row["finished_at"] = grp["finished_at"].max() if grp["finished_at"].notna().any() else None
        whole = grp[grp["limit"].isna() & grp["finished_at"].notna()]
        row["limit"] = None if len(whole) or grp["limit"].isna().all() else int(grp["limit"].max())
        row["n_items"] = int(n_by_run.get(run_id, 0))
        for col in ("writer_pid", "writer_host", "writer_start"):
            row[col] = None  # nobody writes the merged file
        row["_recompute"] = len(grp) > 1 and int(srcs_by_run.get(run_id, 0)) > 1
        run_rows.append(row)
    runs_out = pd.DataFrame(run_rows, columns=list(runs.columns) + ["writer_pid", "writer_host",
                                                                    "writer_start", "_recompute"])
    runs_out = runs_out.loc[:, ~runs_out.columns.duplicated()]
    arts = arts.sort_values("created_at", ascending=False).drop_duplicates(["kind", "name"], keep="first")

    # ---- write a temporary store, then rename it into place
    tmp = out.with_name(f".{out.name}.merge-{os.getpid()}.tmp")
    for p in (tmp, Path(f"{tmp}.wal")):
        p.unlink(missing_ok=True)
    try:
        with Store(tmp) as st:
            con = st.connection
            with st.transaction():
                for table, df in (("runs", runs_out), ("items", kept), ("choices", choices),
                                  ("generations", gens), ("artifacts", arts)):
                    have = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
                    cols = [c for c in have if c in df.columns]
                    frame = df[cols]
                    con.register("_sb_merge", frame)
                    try:
                        quoted = ", ".join(f'"{c}"' for c in cols)
                        con.execute(f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM _sb_merge")
                    finally:
                        con.unregister("_sb_merge")
            _recompute_metrics(st, [r["run_id"] for r in run_rows if r["_recompute"]])
        token = locking.acquire(out, exclusive=True, timeout=locking.default_timeout())
        try:
            Path(f"{out}.wal").unlink(missing_ok=True)
            os.replace(tmp, out)
        finally:
            locking.release(token)
    finally:
        for p in (tmp, Path(f"{tmp}.wal")):
            p.unlink(missing_ok=True)
    summary.n_runs, summary.n_items, summary.n_artifacts = len(run_rows), len(kept), len(arts)
    return summary


def _recompute_metrics(st, run_ids: Sequence[str]) -> None:
    """Runs whose items came from several inputs: their metrics over the merged items."""
    import json

    from sharpbench.store.rows import jsonable

    for run_id in run_ids:
        metrics = summarize(st.item_results(run_id))
        with st.transaction():
            st.connection.execute(
                "UPDATE runs SET metrics = ? WHERE run_id = ?", [json.dumps(jsonable(metrics)), run_id]
            )

