"""One evaluation end to end: tasks -> model -> engine -> store -> report.

>>> from sharpbench.engine.pipeline import run_eval
>>> report = run_eval("smollm2-135m", "piqa", limit=50, store="sharpbench.duckdb")  # doctest: +SKIP
>>> report.tasks[0].metrics["acc"]                                                 # doctest: +SKIP
(0.62, 0.069)

Results are stored per item as they finish, a chunk of whole items per
transaction; items already in the store for the same run key are reused,
so an interrupted or extended evaluation computes only what is missing.
:func:`evaluate_items` is the lower-level entry point (e.g. adaptive
testing: score a few chosen items with an already-loaded backend).

The plan API (:class:`TaskPlan`, :func:`resolve_task_list`, :func:`select_items`,
:func:`run_spec`, :func:`plan_tasks`, :func:`store_scores`, :func:`finish_run`)
is what other packages (fan-out, prompt sensitivity, comparisons, the in-memory
:class:`~sharpbench.engine.evaluator.Evaluator`) build on.
"""

from __future__ import annotations

import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from sharpbench.engine.batching import DEFAULT_BATCH_SIZE  # noqa: F401  (its old home: still importable here)
from sharpbench.engine.batching import BatchSize, parse_batch_size, resolve_batch_size
from sharpbench.engine.results import ItemResult
from sharpbench.errors import RunInterrupted
from sharpbench.metrics import common_metric_names as _metric_names
from sharpbench.metrics import summarize
from sharpbench.store import DEFAULT_STORE, RunSpec, Store

if TYPE_CHECKING:
    from sharpbench.models.base import Backend

__all__ = [
    "KEEP_LIMIT",
    "TaskPlan",
    "finish_run",
    "pending_items",
    "plan_tasks",
    "resolve_task_list",
    "run_spec",
    "select_items",
    "store_scores",
    "task_metric_names",
    "task_summary",
    "run_eval",
    "evaluate_items",
    "summarize",
    "group_metrics",
    "EvalReport",
    "TaskReport",
    "GroupReport",
    "EvalInterrupted",
    "ContextTooLongWarning",
    "ChangedItemsWarning",
]

# progress(done_increment, task_name) after every finished item.
ProgressFn = Callable[[int, str], None]

#: ``limit`` value of :func:`store_scores` / :func:`finish_run` that keeps the run's recorded limit
#: (items chosen by id, not by a first-N limit).
KEEP_LIMIT = "keep"


@dataclass(frozen=True)
class TaskPlan:
    """What one task's evaluation will do: its run, its items and those still to score.

    Attributes
    ----------
    task : Task
        The resolved task.
    spec : RunSpec
        The stored run the items belong to (model identity x task configuration).
    items : list of Item
        Every item of this evaluation (``limit`` / ``item_ids`` applied).
    todo : list of Item
        The items to score now (not stored, or stored with other content).
    changed : list of int
        Ids of stored items whose content changed since (part of ``todo``).
    unverified : list of int
        Ids of stored items without a content hash (part of ``todo``).
    """

    task: Any
    spec: RunSpec
    items: list[Any]
    todo: list[Any]
    changed: list[int] = field(default_factory=list)
    unverified: list[int] = field(default_factory=list)


class EvalInterrupted(RunInterrupted, RuntimeError):
    """The evaluation was interrupted (Ctrl-C); whole items scored so far are stored."""


class ContextTooLongWarning(UserWarning):
    """Some requests exceed the model's context window and are left-truncated."""


class ChangedItemsWarning(UserWarning):
    """Stored items no longer match the task's data (or predate content hashes); they were recomputed."""


@dataclass
class TaskReport:
    """Scores of one task for one model."""

    task: str
    run_id: str
    num_fewshot: int
    n_items: int  # items in this report (limit / item_ids applied)
    n_computed: int  # scored now
    n_reused: int  # read back from the store
    metrics: dict[str, tuple[float, float]]  # name -> (value, stderr)
    group: str | None = None
    version: str | None = None
    n_truncated: int = 0  # items with a request longer than the context window
    n_changed: int = 0  # stored items whose data changed since (recomputed, part of n_computed)
    changed_ids: list[int] = field(default_factory=list)
    n_unverified: int = 0  # stored items without a content hash (older sharpbench; recomputed)
    kind: str = "multiple_choice"  # the request kind of the task's items
    # generative tasks: samples, tokens, stop reasons, unextracted answers per filter (with examples)
    generation: dict[str, Any] = field(default_factory=dict)


@dataclass
class GroupReport:
    """Size-weighted aggregate of a task group (lm-eval's ``weight_by_size``)."""

    group: str
    num_fewshot: int
    n_items: int
    tasks: list[str]
    metrics: dict[str, tuple[float, float]]


@dataclass
class EvalReport:
    """What :func:`run_eval` returns (and ``--output-json`` writes)."""

    model_id: str
    fingerprint: str
    backend: str
    dtype: str
    store: str
    tasks: list[TaskReport] = field(default_factory=list)
    groups: list[GroupReport] = field(default_factory=list)
    elapsed_s: float = 0.0
    max_length: int | None = None

    @property
    def n_computed(self) -> int:
        return sum(t.n_computed for t in self.tasks)

    @property
    def n_truncated(self) -> int:
        return sum(t.n_truncated for t in self.tasks)

    @property
    def n_changed(self) -> int:
        return sum(t.n_changed + t.n_unverified for t in self.tasks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; metrics as ``{name: {"value": v, "stderr": s}}``."""
        out = asdict(self)
        for section in ("tasks", "groups"):
            for entry in out[section]:
                entry["metrics"] = {
                    k: {"value": _num(v[0]), "stderr": _num(v[1])} for k, v in entry["metrics"].items()
                }
        out["n_computed"] = self.n_computed
        out["n_truncated"] = self.n_truncated
        out["n_changed"] = self.n_changed
        return out


# -------------------------------------------------------------- aggregation
def group_metrics(reports: Sequence[TaskReport]) -> list[GroupReport]:
    """Group rows as lm-eval computes them (:func:`sharpbench.engine.metrics.aggregate_groups`):
    size-weighted mean with pooled-sample stderr for ``weight_by_size`` groups (e.g. mmlu),
    else the plain mean with ``sqrt(sum se^2) / k``."""
    from sharpbench.engine.metrics import aggregate_groups

    by_group: dict[str, list[TaskReport]] = {}
    for rep in reports:
        if rep.group:
            by_group.setdefault(rep.group, []).append(rep)
    out = []
    for name, reps in by_group.items():
        weighted = _weight_by_size(name)
        common = set.intersection(*(set(r.metrics) for r in reps))
        metrics = {
            m: aggregate_groups({r.task: (*r.metrics[m], r.n_items) for r in reps}, weight_by_size=weighted)
            for m in reps[0].metrics
            if m in common
        }
        out.append(
            GroupReport(name, reps[0].num_fewshot, int(sum(r.n_items for r in reps)),
                        [r.task for r in reps], metrics)
        )
    return out


def _weight_by_size(group: str) -> bool:
    try:
        from sharpbench.data.registry import group_info

        return bool(group_info(group).weight_by_size)
    except (LookupError, ValueError):
        return True


# ------------------------------------------------------------------ pipeline
def run_eval(
    model: str | Path | Backend = "smollm2-135m",
    tasks: Any = "piqa",
    *,
    limit: int | None = None,
    num_fewshot: int | None = None,
    dtype: str = "float32",
    batch_size: BatchSize | None = None,
    device: str | None = None,
    backend: str = "hf",
    store: Store | str | Path = DEFAULT_STORE,
    item_ids: Mapping[str, Iterable[int]] | Iterable[int] | None = None,
    progress: ProgressFn | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    chunk_size: int | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    gen_kwargs: Mapping[str, Any] | None = None,
    repeats: int | None = None,
    seed: int | None = None,
    chat: Any = None,
    tokens: Callable[[int], None] | None = None,
) -> EvalReport:
    """Evaluate ``model`` on ``tasks``, storing every item; reuse what the store already has.

    Parameters
    ----------
    model : str or Backend
        Packaged short name, local path or hub id (loaded with
        :func:`sharpbench.models.load_model`), or an already-loaded backend.
    tasks : str, list of str or list of Task
        Comma-separated names / groups (``"piqa,mmlu"``) or resolved tasks.
    limit : int, optional
        First ``limit`` documents of each task (lm-eval ``--limit``).
    item_ids : mapping task -> ids, or ids, optional
        Evaluate only these document ids (a bare iterable needs a single task).
    progress : callable, optional
        ``progress(n, task)`` after items finish (``n`` newly stored items).
    on_plan : callable, optional
        ``on_plan(n_to_compute, n_reused)`` once the work is known, before scoring.
    batch_size : int or "auto", optional
        Items per forward batch for multiple choice (default 16); sequences
        decoded together for generative tasks (default 128).  ``"auto"``: the
        largest batch that fits in free GPU memory, searched once per task
        shape on CUDA (lm-eval's ``--batch_size auto``); the default on the CPU.
    chunk_size : int, optional
        Items per store transaction (default ``batch_size``: the engine yields
        a batch at a time, so an interrupted run loses at most one batch).
    gen_kwargs : mapping, optional
        Generative tasks: overrides of ``max_gen_toks``, ``do_sample``,
        ``temperature``, ``top_p``, ``top_k``, ``until`` (lm-eval's ``--gen_kwargs``).
    repeats : int, optional
        Generative tasks: samples per item (stored one by one: more repeats extend a run).
    seed : int, optional
        Base seed of sampled generation (default 1234).
    chat : sharpbench.data.chat.ChatSetup, optional
        Chat template / system prompt / few-shot as multi-turn, for every task.
    tokens : callable, optional
        ``tokens(n)`` with newly generated token counts (generative tasks).

    Raises
    ------
    EvalInterrupted
        On Ctrl-C, after storing every whole item scored so far.
    """
    t0 = time.perf_counter()
    parse_batch_size(batch_size)  # a bad batch size fails now, before the store opens or the model loads
    if isinstance(model, (str, Path)):  # bad options fail now, not after the model has loaded
        from sharpbench.models import check_device, check_model_args

        check_model_args(backend, dict(model_kwargs or {}))
        check_device(device, backend)
    task_list = resolve_task_list(tasks, num_fewshot)
    task_list = _with_gen_options(task_list, gen_kwargs, repeats, seed)
    ids_by_task = _ids_by_task(item_ids, task_list)
    own_store = not isinstance(store, Store)
    # shared: the file is opened only to read the plan and to commit each chunk, so `results`,
    # `report` and other evals take turns with this one (scoring runs outside the lock)
    st = Store(store, shared=True) if own_store else store  # before loading the model: a bad store fails fast
    try:
        loaded = None
        if chat is not None and not chat.is_plain:  # prompts depend on the model's chat template
            loaded = _load(model, dtype=dtype, device=device, backend=backend, model_kwargs=model_kwargs)
            task_list = [t.with_style(prompt_style(loaded, chat)) for t in task_list]
        items_by_task = {t.name: select_items(t, limit, ids_by_task.get(t.name)) for t in task_list}
        # Everything already stored? Then the model's identity (known without loading it) is enough.
        lm = loaded or _identity(model, dtype=dtype, backend=backend, model_kwargs=model_kwargs)
        plans = plan_tasks(lm, st, task_list, items_by_task, limit) if lm is not None else None
        if plans is None or any(p.todo for p in plans):
            lm = _load(model, dtype=dtype, device=device, backend=backend, model_kwargs=model_kwargs)
            plans = plan_tasks(lm, st, task_list, items_by_task, limit)
        if on_plan is not None:
            todo_n = sum(len(p.todo) for p in plans)
            on_plan(todo_n, sum(len(p.items) for p in plans) - todo_n)
        def run_limit(task: Any) -> Any:
            return limit if ids_by_task.get(task.name) is None else KEEP_LIMIT

        n_trunc_of = {id(p): _count_truncated(lm, p.todo) for p in plans}
        gen_plans = [p for p in plans if p.task.kind == "generate_until" and p.todo]
        together = {id(p) for p in gen_plans} if len(gen_plans) > 1 else set()
        if together:  # many small generative tasks (MMLU subjects): one decoding stream for all
            bs = resolve_batch_size(lm, batch_size, "generate_until", [it for p in gen_plans for it in p.todo])
            store_generations(lm, st, [(p.spec, p.todo, run_limit(p.task)) for p in gen_plans], batch_size=bs,
                              chunk_size=chunk_size or min(bs, 16), progress=progress, tokens=tokens)
        for plan in plans:  # score what is missing (outside the store's lock: it is taken per chunk)
            task = plan.task
            if id(plan) not in together and plan.todo:
                bs = resolve_batch_size(lm, batch_size, task.kind, plan.todo)
                # generated items finish one by one: store them 16 at a time rather than a whole batch of sequences
                chunk = chunk_size or (min(bs, 16) if task.kind == "generate_until" else max(bs, 1))
                store_scores(lm, st, plan.spec, plan.todo, batch_size=bs, chunk_size=chunk, progress=progress,
                             limit=run_limit(task), tokens=tokens)
        reports = []
        with st.session():  # read every task's results back in one turn (57 MMLU subjects: one open, not 200)
            for plan in plans:
                task, spec, items, todo = plan.task, plan.spec, plan.items, plan.todo
                if not todo:  # fully stored: close the run record if it is not closed yet
                    store_scores(lm, st, spec, todo, limit=run_limit(task))
                ids = [it.item_id for it in items]
                results = st.item_results(spec.run_id, ids)
                reports.append(
                    TaskReport(
                        task=task.name, run_id=spec.run_id, num_fewshot=spec.num_fewshot,
                        n_items=len(results), n_computed=len(todo), n_reused=len(items) - len(todo),
                        metrics=task_summary(task, results),
                        group=spec.task_group, version=spec.task_version, n_truncated=n_trunc_of[id(plan)],
                        n_changed=len(plan.changed), changed_ids=plan.changed, n_unverified=len(plan.unverified),
                        kind=task.kind, generation=_generation_stats(st, spec.run_id, task, ids),
                    )
                )
        report = EvalReport(
            model_id=str(lm.model_id), fingerprint=str(lm.fingerprint), backend=str(lm.name),
            dtype=str(lm.dtype), store=str(st.path), tasks=reports, groups=group_metrics(reports),
            max_length=getattr(lm, "max_length", None),
        )
    finally:
        if own_store:
            st.close()
    report.elapsed_s = time.perf_counter() - t0
    if report.n_truncated:
        warnings.warn(
            f"{report.n_truncated} item(s) have a context longer than the model window "
            f"({report.max_length} tokens); they were left-truncated as lm-eval does",
            ContextTooLongWarning,
            stacklevel=2,
        )
    for t in report.tasks:
        _warn_changed(t.task, t.changed_ids, t.n_unverified)
    return report


def _warn_changed(task: str, changed: Sequence[int], n_unverified: int) -> None:
    if changed:
        shown = ", ".join(map(str, changed[:10])) + (", ..." if len(changed) > 10 else "")
        warnings.warn(
            f"{task}: {len(changed)} stored item(s) no longer match the task's data (question, choices, "
            f"answer or prompt changed) and were recomputed: item ids {shown}",
            ChangedItemsWarning,
            stacklevel=3,
        )
    if n_unverified:
        warnings.warn(
            f"{task}: {n_unverified} stored item(s) were written by an older sharpbench without a content "
            "hash, so they cannot be checked against the data; they were recomputed",
            ChangedItemsWarning,
            stacklevel=3,
        )


def evaluate_items(
    backend: Any,
    task: Any,
    item_ids: Iterable[int],
    store: Store,
    *,
    batch_size: int = 16,
) -> list[ItemResult]:
    """Score the given documents of ``task`` with a loaded ``backend``, storing new ones.

    Items already stored for this (model, task) run are read back, not
    recomputed. Returns the results in the order of ``item_ids``.
    """
    wanted = [int(i) for i in item_ids]
    items = select_items(task, None, wanted)
    spec = run_spec(backend, task, None, None)
    todo, changed, unverified = pending_items(store, spec.run_id, items)
    _warn_changed(spec.task, changed, len(unverified))
    store_scores(backend, store, spec, todo, batch_size=batch_size,
                 chunk_size=max(len(todo), 1), progress=None, limit=KEEP_LIMIT)
    by_id = {r.item_id: r for r in store.item_results(spec.run_id, wanted)}
    return [by_id[i] for i in wanted]


# ------------------------------------------------------------ plan API
def store_scores(lm, st: Store, spec: RunSpec, todo: Sequence[Any], *, batch_size: int = 16,
                 chunk_size: int | None = None, progress: ProgressFn | None = None,
                 limit: Any = KEEP_LIMIT, tokens: Callable[[int], None] | None = None) -> None:
    """Score ``todo`` with the loaded backend ``lm`` and store whole items in chunks; finish the run record.

    Parameters
    ----------
    chunk_size : int, optional
        Items per store transaction (default ``batch_size``).
    limit : int, None or KEEP_LIMIT
        The first-N limit recorded on the run; :data:`KEEP_LIMIT` keeps the
        recorded one (items chosen by id).

    tokens : callable, optional
        ``tokens(n)`` with newly generated token counts (generative items).

    Raises
    ------
    EvalInterrupted
        On Ctrl-C, after storing every whole item scored so far.
    """
    chunk_size = chunk_size or max(batch_size, 1)
    generative = bool(todo) and getattr(todo[0], "kind", "multiple_choice") == "generate_until"
    if not todo:
        with st.session():
            row = st.get_run(spec.run_id)
            if row is not None and not _already_closed(row, limit):
                finish_run(st, spec, "complete", limit)
        return
    if generative:
        store_generations(lm, st, [(spec, todo, limit)], batch_size=batch_size, chunk_size=chunk_size,
                          progress=progress, tokens=tokens)
        return
    from sharpbench.engine.runner import score_items

    if getattr(todo[0], "kind", "") == "loglikelihood_rolling":
        from sharpbench.engine.rolling import score_rolling

        stream = score_rolling(lm, todo, batch_size=batch_size)
    else:
        stream = score_items(lm, todo, batch_size=batch_size)
    if callable(getattr(todo[0], "rescore", None)):  # items with their own per-item metrics (lm-eval bridge)
        by_id = {it.item_id: it for it in todo}
        stream = (by_id[r.item_id].rescore(r) for r in stream)
    writer = _RunWriter(st, spec, todo, chunk_size=chunk_size, progress=progress, limit=limit)
    _drain([writer], ((0, r) for r in stream))


def store_generations(lm, st: Store, runs: Sequence[tuple[RunSpec, Sequence[Any], Any]], *, batch_size: int = 128,
                      chunk_size: int | None = None, progress: ProgressFn | None = None,
                      tokens: Callable[[int], None] | None = None) -> None:
    """Generate the items of several generative runs in one stream and store each run's items as they finish.

    ``runs`` holds ``(spec, todo, limit)`` per run. The items of all runs decode
    together, so the 57 small runs of an MMLU subject sample fill the batch as
    one task would; each item is stored in its own run (samples the store holds
    are kept, only the missing ones computed).
    """
    from sharpbench.engine.generation import generate_indexed

    runs = [r for r in runs if r[1]]
    items, owner, stored = [], [], []
    for k, (spec, todo, _) in enumerate(runs):
        have = st.stored_samples(spec.run_id, todo)  # samples of earlier runs are kept, only new ones computed
        for it in todo:
            items.append(it)
            owner.append(k)
            stored.append(have.get(it.item_id, ()))
    writers = [_RunWriter(st, spec, todo, chunk_size=chunk_size or min(batch_size, 16), progress=progress,
                          limit=limit, gen_items={it.item_id: it for it in todo}) for spec, todo, limit in runs]
    stream = generate_indexed(lm, items, batch_size=batch_size, tokens=tokens, stored=stored)
    _drain(writers, ((owner[n], res) for n, res in stream))


class _RunWriter:
    """Stores one run's finished items in chunks (whole items only) and closes its run record."""

    def __init__(self, st: Store, spec: RunSpec, todo: Sequence[Any], *, chunk_size: int,
                 progress: ProgressFn | None, limit: Any, gen_items: Mapping[int, Any] | None = None) -> None:
        self.st, self.spec, self.limit, self.progress = st, spec, limit, progress
        self.chunk_size = max(int(chunk_size), 1)
        self.meta = {it.item_id: dict(it.metadata) for it in todo if it.metadata}
        self.hashes = {it.item_id: it.content_hash for it in todo}
        self.wanted = {it.item_id for it in todo}
        self.write_kw: dict[str, Any] = {"gen_items": gen_items} if gen_items is not None else {}
        self.buffer: list[Any] = []

    def add(self, res: Any) -> None:
        if res.item_id not in self.wanted:
            raise RuntimeError(f"engine returned item {res.item_id} that was not asked for")
        self.wanted.discard(res.item_id)
        self.buffer.append(res)
        if len(self.buffer) >= self.chunk_size:
            self.flush()

    def flush(self, recheck: bool = False) -> None:
        if recheck:  # after an interrupt the last chunk may have committed just before it
            have = self.st.stored_item_hashes(self.spec.run_id)
            self.buffer = [r for r in self.buffer if have.get(r.item_id) != self.hashes[r.item_id]]
        if self.buffer:
            # overwrite: an item in todo may be stored with content that has changed since
            self.st.write_items(self.spec, self.buffer, self.meta, content_hashes=self.hashes, overwrite=True,
                                **self.write_kw)
            if self.progress is not None:
                self.progress(len(self.buffer), self.spec.task)
            self.buffer = []

    def interrupted(self) -> None:
        self.flush(recheck=True)  # whole items only: each is complete
        finish_run(self.st, self.spec, "interrupted", self.limit)

    def done(self) -> None:
        self.flush()
        if self.wanted:
            raise RuntimeError(f"engine did not return {len(self.wanted)} item(s) of {self.spec.task}, "
                               f"e.g. {sorted(self.wanted)[:3]}")
        finish_run(self.st, self.spec, "complete", self.limit)


def _drain(writers: Sequence[_RunWriter], stream: Iterable[tuple[int, Any]]) -> None:
    """Feed ``(writer index, result)`` pairs to the writers; on any interruption store what is whole."""
    from sharpbench.engine.requests import TruncationWarning

    try:
        with warnings.catch_warnings():
            # The runner warns per request; run_eval reports truncated *items* once.
            warnings.simplefilter("ignore", TruncationWarning)
            for k, res in stream:
                writers[k].add(res)
        for w in writers:
            w.done()
    except KeyboardInterrupt:
        for w in writers:
            w.interrupted()
        stored = ", ".join(f"{w.spec.task} has {len(w.st.stored_item_ids(w.spec.run_id))}" for w in writers)
        raise EvalInterrupted(
            f"interrupted: {stored} items stored in {writers[0].st.path}; run the same command again to resume"
        ) from None
    except BaseException:
        try:
            for w in writers:
                w.interrupted()
        except Exception:  # the original error matters more
            pass
        raise


def _already_closed(row: Mapping[str, Any], limit: Any) -> bool:
    """Whether a stored run record already says "complete" with the limit ``limit`` would record.

    Re-running a fully stored evaluation then writes nothing (its run keeps
    its ``finished_at``); see
    :meth:`~sharpbench.store.Store.finish_run` for how the limit grows.
    """
    if row.get("status") != "complete" or row.get("finished_at") is None:
        return False
    cur = row.get("limit")
    if limit == KEEP_LIMIT or cur is None:  # kept, or the whole split already recorded
        return True
    return limit is not None and int(cur) >= int(limit)


def finish_run(st: Store, spec: RunSpec, status: str, limit: Any = KEEP_LIMIT) -> None:
    """Close the run record: ``status`` and the metrics of the items stored now."""
    with st.session():  # one turn: the metrics are those of the items stored when the run is closed
        stored = st.item_results(spec.run_id)
        if spec.kind == "loglikelihood_rolling":  # lm-eval's weighted perplexities, not means of per-item values
            from sharpbench.engine.rolling import rolling_metrics

            metrics = rolling_metrics(stored)
        else:
            metrics = summarize(stored)
        st.finish_run(spec.run_id, status=status, metrics=metrics, limit=limit)


def resolve_task_list(tasks: Any, num_fewshot: int | None = None) -> list[Any]:
    """Tasks to evaluate: names / groups / task files (``"piqa,mmlu"`` or a list of names) or task objects."""
    if isinstance(tasks, str) or (
        isinstance(tasks, Sequence) and tasks and all(isinstance(t, str) for t in tasks)
    ):
        from sharpbench.data.registry import resolve_tasks

        names = tasks if isinstance(tasks, str) else ",".join(tasks)
        return list(resolve_tasks(names, num_fewshot=num_fewshot))
    task_list = list(tasks) if isinstance(tasks, Iterable) else [tasks]
    if not task_list:
        raise ValueError("no task given")
    return task_list


def plan_tasks(lm, st: Store | None, task_list: Sequence[Any], items_by_task: Mapping[str, Sequence[Any]],
               limit: int | None) -> list[TaskPlan]:
    """One :class:`TaskPlan` per task for the model ``lm`` (a backend or a model identity).

    With ``st=None`` nothing is looked up: every item is to be scored.
    """
    plans = []
    with st.session() if st is not None else nullcontext():  # one turn on a shared store for every task
        for task in task_list:
            items = list(items_by_task[task.name])
            spec = run_spec(lm, task, limit, len(items))
            if st is None:
                plans.append(TaskPlan(task, spec, items, list(items)))
            else:
                todo, changed, unverified = pending_items(st, spec.run_id, items)
                plans.append(TaskPlan(task, spec, items, todo, changed, unverified))
    return plans


def pending_items(st: Store, run_id: str, items: Sequence[Any]) -> tuple[list[Any], list[int], list[int]]:
    """(items to compute, ids stored with other content, ids stored without a content hash).

    An item is reused only when the store holds it with the same
    :attr:`~sharpbench.data.task.Item.content_hash`: the run key hashes the
    task's configuration, this hashes each item's actual requests and gold.
    A generative item is also to compute while it lacks samples (a run with
    more ``repeats`` computes only the new ones).
    """
    stored = st.stored_item_hashes(run_id)
    missing = _missing_samples(st, run_id, items)
    todo, changed, unverified = [], [], []
    for it in items:
        if it.item_id not in stored:
            todo.append(it)
            continue
        have = stored[it.item_id]
        if have == it.content_hash:
            if missing.get(it.item_id):
                todo.append(it)
            continue
        todo.append(it)
        (unverified if have is None else changed).append(it.item_id)
    return todo, changed, unverified


def _identity(model: Any, *, dtype: str, backend: str, model_kwargs) -> Any:
    """The model's store identity without loading it, or None (already loaded, hub id, unknown)."""
    if not isinstance(model, (str, Path)):
        return model
    from sharpbench.models.identity import identify

    kw = dict(model_kwargs or {})
    try:
        return with_adapter(identify(str(model), backend=backend, dtype=dtype, **kw), kw)
    except Exception:  # loading will raise the proper error
        return None


def with_adapter(ident: Any, model_kwargs: Mapping[str, Any]) -> Any:
    """``ident`` with the fingerprint of base weights + the ``peft=`` adapter in ``model_kwargs``, if any."""
    if ident is None or not model_kwargs.get("peft") or model_kwargs.get("fingerprint"):
        return ident
    from dataclasses import replace

    from sharpbench.models.model_args import adapter_fingerprint

    return replace(ident, fingerprint=adapter_fingerprint(ident.fingerprint, str(model_kwargs["peft"])))


def _load(model: Any, *, dtype: str, device: str | None, backend: str, model_kwargs) -> Any:
    if not isinstance(model, (str, Path)):
        return model
    from sharpbench.models import load_model

    return load_model(str(model), dtype=dtype, device=device, backend=backend, **dict(model_kwargs or {}))


def _ids_by_task(item_ids, task_list) -> dict[str, list[int]]:
    if item_ids is None:
        return {}
    if isinstance(item_ids, Mapping):
        names = {t.name for t in task_list}
        unknown = set(item_ids) - names
        if unknown:
            raise ValueError(f"item_ids names task(s) not being evaluated: {sorted(unknown)}")
        return {k: [int(i) for i in v] for k, v in item_ids.items()}
    if len(task_list) != 1:
        raise ValueError("a bare list of item_ids needs exactly one task; pass {task: ids} instead")
    return {task_list[0].name: [int(i) for i in item_ids]}


def select_items(task, limit: int | None = None, ids: Iterable[int] | None = None) -> list[Any]:
    """The items of ``task`` to evaluate: the first ``limit`` documents, or those with the given ids.

    Every prompt is checked (:func:`~sharpbench.data.task.check_text`) before any model loads.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit}")
    from sharpbench.data.task import check_text

    if ids is None:
        items = list(task.items(limit=limit))
        check_text(task.name, items)  # before the model loads: a bad prompt fails in a second
        return items
    wanted = list(dict.fromkeys(int(i) for i in ids))
    need = max(wanted) + 1 if wanted else 0
    by_id = {it.item_id: it for it in task.items(limit=need)}
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise ValueError(f"task {task.name} has no item(s) {missing[:5]} (it has {len(by_id)} items)")
    items = [by_id[i] for i in wanted]
    check_text(task.name, items)
    return items


def run_spec(lm, task, limit: int | None = None, n_items: int | None = None) -> RunSpec:
    """The stored run of ``task`` for the model ``lm`` (a backend or a model identity)."""
    n_total = getattr(task, "n_docs", None)
    if n_total is None and limit is None and n_items is not None:
        n_total = n_items
    version = getattr(task, "version", None)
    kind = getattr(task, "kind", "multiple_choice")
    extra: dict[str, Any] = {"kind": kind}
    if kind == "generate_until":
        names = list(task.metric_names)
        extra["primary_metric"] = names[0] if names else None
        extra["run_config"] = _run_config(task)
    return RunSpec(
        model_id=str(lm.model_id), fingerprint=str(lm.fingerprint), backend=str(lm.name),
        dtype=str(lm.dtype), task=task.name, num_fewshot=int(task.num_fewshot or 0),
        template_hash=str(task.template_hash), task_group=getattr(task, "group", None),
        task_version=None if version is None else str(version),
        n_total=None if n_total is None else int(n_total), **extra,
    )


def _count_truncated(lm, items) -> int:
    """Items with a request whose context + continuation exceeds the model window."""
    max_len = getattr(lm, "max_length", None)
    if not max_len:
        return 0
    n = 0
    for it in items:
        if getattr(it, "kind", "multiple_choice") == "loglikelihood_rolling":
            continue  # rolling windows always fit the window
        if getattr(it, "kind", "multiple_choice") == "generate_until":
            room = max_len - it.max_gen_toks
            if len(it.prompt.encode("utf-8")) + 4 > room and len(lm.tok_encode(it.prompt)) > room:
                n += 1
            continue
        # A token covers at least one byte (byte-level BPE / byte fallback), plus a few specials:
        # only requests longer than the window in bytes need tokenizing.
        long = [r for r in it.requests
                if len(r.context.encode("utf-8")) + len(r.continuation.encode("utf-8")) + 4 > max_len]
        ctx_len: dict[str, int] = {}
        for r in long:
            if r.context not in ctx_len:
                ctx_len[r.context] = len(lm.tok_encode(r.context)) if r.context else 1
            if ctx_len[r.context] + len(lm.tok_encode(r.continuation, add_special_tokens=False)) > max_len:
                n += 1
                break
    return n


def task_summary(task, results: Sequence[Any]) -> dict[str, tuple[float, float]]:
    """A task's reported metrics ``{name: (value, stderr)}`` over its item results.

    A task with its own ``summarize(results)`` (the lm-eval bridge: lm-eval's
    aggregation functions) reports through it; rolling-loglikelihood tasks report
    lm-eval's weighted perplexities; every other task the mean and stderr of each metric.
    """
    own = getattr(task, "summarize", None)
    if callable(own):
        return dict(own(results))
    if getattr(task, "kind", "") == "loglikelihood_rolling":
        from sharpbench.engine.rolling import rolling_metrics

        return rolling_metrics(results)
    return summarize(results, task_metric_names(task, results))


def task_metric_names(task, results: Sequence[ItemResult]) -> list[str]:
    """The metrics a task reports, in its order, restricted to those every result has."""
    names = getattr(task, "metric_names", None)
    stored = set(_metric_names(results))
    if names:
        return [m for m in names if m in stored]
    return sorted(stored)


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


# ------------------------------------------------------------ generative tasks
def _with_gen_options(task_list: Sequence[Any], gen_kwargs, repeats, seed) -> list[Any]:
    """Apply ``--gen-kwargs``/``--repeats``/``--seed`` to the generative tasks of the list."""
    if not gen_kwargs and repeats is None and seed is None:
        return list(task_list)
    from sharpbench.data.base import DEFAULT_FEWSHOT_SEED
    from sharpbench.data.gen import GenOptions, with_gen_options

    if not any(getattr(t, "kind", "") == "generate_until" for t in task_list):
        raise ValueError("--gen-kwargs / --repeats / --seed apply to generative tasks; none was given")
    opts = GenOptions(dict(gen_kwargs or {}), repeats, DEFAULT_FEWSHOT_SEED if seed is None else int(seed))
    return with_gen_options(task_list, opts)


def prompt_style(lm: Any, chat: Any) -> Any:
    """The :class:`~sharpbench.data.chat.PromptStyle` of a loaded backend for a chat setup."""
    from sharpbench.data.chat import ChatTemplateError, PromptStyle

    tokenizer = getattr(lm, "tokenizer", None) if chat.apply_chat_template else None
    if chat.apply_chat_template and tokenizer is None:
        raise ChatTemplateError(
            f"the {lm.name} backend ({lm.model_id}) has no local tokenizer to render a chat template with; "
            "give it one (openai: -M tokenizer=PATH) or drop --apply-chat-template"
        )
    return PromptStyle(chat, tokenizer, model=str(lm.model_id))


def _run_config(task: Any) -> dict[str, Any]:
    """What a generative run was run with (stored with the run; the run key holds its hash)."""
    settings = dict(task.settings())
    out: dict[str, Any] = {"gen_kwargs": {k: v for k, v in settings.items() if k != "repeats"},
                           "repeats": settings["repeats"], "seed": task.options.seed}
    style = getattr(task, "style", None)
    if style is not None:
        out.update(style.key)
    return out


def _missing_samples(st: Store, run_id: str, items: Sequence[Any]) -> dict[int, list[int]]:
    gen = [it for it in items if getattr(it, "kind", "multiple_choice") == "generate_until"]
    return st.missing_samples(run_id, gen) if gen else {}


def _generation_stats(st: Store, run_id: str, task: Any, ids: Sequence[int]) -> dict[str, Any]:
    if getattr(task, "kind", "multiple_choice") != "generate_until":
        return {}
    return dict(st.generation_stats(run_id))
