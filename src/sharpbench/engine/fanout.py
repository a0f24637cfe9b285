"""Many models x many tasks: one job per (model, task shard), on Ray or in sequence.

The driver resolves the tasks, builds every item once, asks the store what
is already there (by each model's identity, known without loading it where
possible) and cuts the rest into shards of whole items.  A shard carries its
items, so a worker needs the model but no benchmark data.  Workers return
per-item results; only the driver writes to the DuckDB store (it has one
writer), a shard's results in one transaction as each shard comes back, so
an interrupted job resumes with only the missing shards.

Without Ray the same shards run here, in order, through the same
:func:`score_shard`; with ``ray`` each shard is a Ray task (one GPU each
when the cluster has GPUs, else one CPU), retried ``retries`` times, and a
shard that still fails is reported in :attr:`FanoutReport.failures`, never
dropped silently.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sharpbench.data.task import Item
from sharpbench.engine.results import ItemResult
from sharpbench.models.identity import ModelIdentity
from sharpbench.store import RunSpec, Store

__all__ = [
    "FanoutReport",
    "ModelRef",
    "Shard",
    "ShardFailure",
    "ShardOutput",
    "read_models_file",
    "run_fanout",
    "score_shard",
]


@dataclass(frozen=True)
class ModelRef:
    """How a worker loads one model."""

    name: str
    backend: str = "hf"
    dtype: str = "float32"
    device: str | None = None
    kwargs: tuple[tuple[str, Any], ...] = ()

    def load(self) -> Any:
        from sharpbench.models import load_model

        return load_model(self.name, dtype=self.dtype, device=self.device, backend=self.backend,
                          **dict(self.kwargs))


@dataclass(frozen=True)
class Shard:
    """Whole items of one task for one model."""

    model: ModelRef
    task: str
    index: int
    items: tuple[Item, ...]

    @property
    def key(self) -> str:
        return f"{self.model.name}/{self.task}#{self.index}"


@dataclass
class ShardOutput:
    """What a worker sends back."""

    identity: ModelIdentity
    max_length: int | None
    results: list[ItemResult]
    seconds: float
    host: str


@dataclass
class ShardFailure:
    """A shard that failed after its retries; its items are not stored."""

    shard: str
    model: str
    task: str
    n_items: int
    error: str


@dataclass
class FanoutReport:
    """Per-model evaluation reports plus the shards that failed."""

    reports: list[Any] = field(default_factory=list)  # EvalReport, one per model with stored results
    failures: list[ShardFailure] = field(default_factory=list)
    n_shards: int = 0
    executor: str = "local"
    elapsed_s: float = 0.0


_LOADED: dict[ModelRef, Any] = {}  # per worker process: consecutive shards of a model reuse it


def _prefix_order(items) -> list:
    """Items sorted by their prompt text, so that items sharing a prompt prefix land in the same shard.

    A shard is scored in one worker with one prefix cache (see
    :mod:`sharpbench.models.hf.prefix`): few-shot items of a subject, or one
    question's prompt variants, then share their prefix's computation.
    """
    def prompt(it):
        return it.prompt if it.kind == "generate_until" else min(r.context for r in it.requests)

    return sorted(items, key=lambda it: (prompt(it), it.item_id))


def score_shard(shard: Shard, batch_size: int | str | None = None) -> ShardOutput:
    """Load (or reuse) the shard's model in this process and score its items."""
    from sharpbench.engine.runner import score_items

    t0 = time.perf_counter()
    lm = _LOADED.get(shard.model)
    if lm is None:
        _LOADED.clear()  # one model per worker process at a time
        lm = _LOADED[shard.model] = shard.model.load()
    from sharpbench.engine.batching import resolve_batch_size

    kind = getattr(shard.items[0], "kind", "multiple_choice") if shard.items else "multiple_choice"
    bs = resolve_batch_size(lm, batch_size, kind, shard.items)  # "auto": searched once per loaded model and shape
    results = list(score_items(lm, list(shard.items), batch_size=bs))
    identity = ModelIdentity(str(lm.model_id), str(lm.fingerprint), str(lm.name), str(lm.dtype))
    return ShardOutput(identity, getattr(lm, "max_length", None), results, time.perf_counter() - t0,
                       socket.gethostname())


def read_models_file(path: str | os.PathLike) -> list[str]:
    """Model names from a file: one per line, ``#`` comments and blank lines ignored."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"models file {p} does not exist")
    names = [line.split("#", 1)[0].strip() for line in p.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"models file {p} lists no model")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"models file {p} lists {dup} more than once")
    return names


@dataclass
class _Entry:
    """One (model, task) pair of the job."""

    model: ModelRef
    task: Any
    items: list[Item]
    spec: RunSpec | None
    todo: list[Item]
    identity: ModelIdentity | None = None
    max_length: int | None = None


ProgressFn = Callable[[str, int, int], None]  # (shard key, items done in it, items failed in it)


def run_fanout(
    models: Sequence[str],
    tasks: Any,
    *,
    store: Store | str,
    limit: int | None = None,
    num_fewshot: int | None = None,
    dtype: str = "float32",
    backend: str = "hf",
    device: str | None = None,
    batch_size: int | str | None = None,
    shard_size: int = 100,
    ray: str | None = None,
    retries: int = 1,
    model_kwargs: dict[str, Any] | None = None,
    on_plan: Callable[[dict[str, int], int, int], None] | None = None,
    progress: ProgressFn | None = None,
) -> FanoutReport:
    """Evaluate every model on every task; results end up in ``store``.

    Parameters
    ----------
    models : sequence of str
        Model names / paths (one backend and dtype for all).
    ray : str, optional
        ``None``: run the shards here, in sequence.  ``"auto"``: ``ray.init()``
        (joins ``RAY_ADDRESS`` or starts a local cluster); anything else is a
        cluster address for ``ray.init(address=...)``.
    shard_size : int
        Items per shard (per Ray task).
    retries : int
        Extra attempts of a failed shard (Ray retries it on another try; the
        local executor retries in place).
    on_plan : callable, optional
        ``on_plan({model: n_items_to_score}, n_items_reused, n_shards)`` before scoring.
    progress : callable, optional
        ``progress(shard_key, n_items_stored, n_items_failed)`` as each shard ends.
    """
    from sharpbench.engine.pipeline import resolve_task_list, run_spec, select_items

    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if not models:
        raise ValueError("no model given")
    t0 = time.perf_counter()
    task_list = resolve_task_list(tasks, num_fewshot)
    items_by_task = {t.name: select_items(t, limit) for t in task_list}
    kw = tuple(sorted((model_kwargs or {}).items()))
    own = not isinstance(store, Store)
    st = Store(store, shared=True) if own else store
    report = FanoutReport(executor="local" if ray is None else f"ray({ray})")
    try:
        entries = _plan(models, task_list, items_by_task, st, limit, backend, dtype, device, kw, run_spec)
        shards = [
            Shard(e.model, e.task.name, i // shard_size, tuple(todo[i : i + shard_size]))
            for e in entries
            for todo in [_prefix_order(e.todo)]
            for i in range(0, len(todo), shard_size)
        ]
        report.n_shards = len(shards)
        if on_plan is not None:
            todo_by_model: dict[str, int] = {}
            for s in shards:
                todo_by_model[s.model.name] = todo_by_model.get(s.model.name, 0) + len(s.items)
            n_reused = sum(len(e.items) for e in entries) - sum(todo_by_model.values())
            on_plan(todo_by_model, n_reused, len(shards))
        by_key = {(e.model, e.task.name): e for e in entries}

        def done(shard: Shard, out: ShardOutput | None, err: BaseException | None) -> None:
            entry = by_key[(shard.model, shard.task)]
            if out is not None:
                try:
                    _store_shard(st, entry, shard, out, limit, run_spec)
                except Exception as exc:  # a bad result is a failed shard, not a crashed job
                    out, err = None, exc
            if out is None:
                report.failures.append(ShardFailure(shard.key, shard.model.name, shard.task, len(shard.items),
                                                    _one_line(err)))
            if progress is not None:
                progress(shard.key, 0 if out is None else len(shard.items), len(shard.items) if out is None else 0)

        if shards:
            if ray is None:
                _run_local(shards, batch_size, retries, done)
            else:
                _run_ray(shards, ray, batch_size, retries, done)
        report.reports = _reports(st, entries, limit, bool(report.failures))
    finally:
        if own:
            st.close()
    report.elapsed_s = time.perf_counter() - t0
    return report


def _plan(models, task_list, items_by_task, st: Store, limit, backend, dtype, device, kw, spec_fn) -> list[_Entry]:
    from sharpbench.engine.pipeline import pending_items, with_adapter
    from sharpbench.models.identity import identify

    entries = []
    for name in models:
        ref = ModelRef(name, backend, dtype, device, kw)
        identity = with_adapter(identify(name, backend=backend, dtype=dtype, **dict(kw)), dict(kw))
        for task in task_list:
            items = items_by_task[task.name]
            spec = spec_fn(identity, task, limit, len(items)) if identity else None
            todo = pending_items(st, spec.run_id, items)[0] if spec else list(items)
            entries.append(_Entry(ref, task, items, spec, todo, identity))
    return entries


def _store_shard(st: Store, entry: _Entry, shard: Shard, out: ShardOutput, limit, spec_fn) -> None:
    if entry.identity is not None and entry.identity.fingerprint != out.identity.fingerprint:
        raise RuntimeError(
            f"worker loaded weights {out.identity.fingerprint[:23]} for {shard.model.name}, "
            f"expected {entry.identity.fingerprint[:23]} (the model changed during the job?)"
        )
    if entry.spec is None:  # identity only known after loading (hub ids)
        entry.identity = out.identity
        entry.spec = spec_fn(out.identity, entry.task, limit, len(entry.items))
    entry.max_length = out.max_length
    wanted = {it.item_id for it in shard.items}
    got = {r.item_id for r in out.results}
    if got != wanted:
        raise RuntimeError(f"worker returned items {sorted(got ^ wanted)[:5]} not matching the shard")
    hashes = {it.item_id: it.content_hash for it in shard.items}
    have = st.stored_item_hashes(entry.spec.run_id)
    new = [r for r in out.results if have.get(r.item_id) != hashes[r.item_id]]
    meta = {it.item_id: dict(it.metadata) for it in shard.items if it.metadata}
    gen = {it.item_id: it for it in shard.items if getattr(it, "kind", "") == "generate_until"}
    st.write_items(entry.spec, new, meta, content_hashes=hashes, overwrite=True, gen_items=gen or None)


def _reports(st: Store, entries: list[_Entry], limit, failed: bool) -> list[Any]:
    from sharpbench.engine.pipeline import (
        EvalReport,
        TaskReport,
        finish_run,
        group_metrics,
        summarize,
        task_metric_names,
    )

    by_model: dict[ModelRef, list[_Entry]] = {}
    for e in entries:
        by_model.setdefault(e.model, []).append(e)
    out = []
    for ref, group in by_model.items():
        tasks = []
        for e in group:
            if e.spec is None:
                continue
            results = st.item_results(e.spec.run_id, [it.item_id for it in e.items])
            if not results:
                continue
            complete = len(results) == len(e.items)
            if e.todo or st.get_run(e.spec.run_id) is not None:
                finish_run(st, e.spec, "complete" if complete else ("failed" if failed else "interrupted"), limit)
            tasks.append(TaskReport(
                task=e.task.name, run_id=e.spec.run_id, num_fewshot=e.spec.num_fewshot, n_items=len(results),
                n_computed=len(e.todo) if complete else len(results) - (len(e.items) - len(e.todo)),
                n_reused=len(e.items) - len(e.todo), metrics=summarize(results, task_metric_names(e.task, results)),
                group=e.spec.task_group, version=e.spec.task_version,
            ))
        if tasks:
            ident = next(e.identity for e in group if e.identity is not None)
            out.append(EvalReport(model_id=ident.model_id, fingerprint=ident.fingerprint, backend=ident.backend,
                                  dtype=ident.dtype, store=str(st.path), tasks=tasks, groups=group_metrics(tasks),
                                  max_length=next((e.max_length for e in group if e.max_length), None)))
    return out


def _run_local(shards: list[Shard], batch_size: int, retries: int, done) -> None:
    for shard in shards:
        for attempt in range(retries + 1):
            try:
                out = score_shard(shard, batch_size)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                if attempt == retries:
                    done(shard, None, exc)
                continue
            done(shard, out, None)
            break


def _run_ray(shards: list[Shard], address: str, batch_size: int, retries: int, done) -> None:
    try:
        import ray
    except ImportError as err:
        raise RuntimeError('--ray needs Ray: pip install "sharpbench[ray]"') from err
    if not ray.is_initialized():
        ray.init(address=None if address == "auto" else address, include_dashboard=False,
                 ignore_reinit_error=True, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    task = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=retries,
                      retry_exceptions=True)(score_shard)
    pending = {task.remote(s, batch_size): s for s in shards}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            shard = pending.pop(ready[0])
            try:
                out = ray.get(ready[0])
            except Exception as exc:  # RayTaskError, WorkerCrashedError, ...
                done(shard, None, exc)
                continue
            done(shard, out, None)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def _one_line(err: BaseException | None) -> str:
    if err is None:
        return "unknown error"
    cause = getattr(err, "cause", None) or err  # RayTaskError wraps the worker's exception
    text = f"{type(cause).__name__}: {cause}".strip().splitlines()
    return text[0] if text else type(cause).__name__
