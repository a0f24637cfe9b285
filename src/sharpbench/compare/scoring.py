"""Bridge to the evaluation engine: per-item results of a model on tasks.

With a store, results go through :func:`sharpbench.engine.pipeline.run_eval`
(stored, and reused on the next comparison against the same base model);
without one, items are scored in memory with the engine's runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sharpbench.engine.results import ItemResult


def task_results(
    model: str | Any,
    tasks: str | Sequence[Any],
    *,
    limit: int | None = None,
    num_fewshot: int | None = None,
    batch_size: int = 16,
    store: Any = None,
) -> dict[str, list[ItemResult]]:
    """``{task name: [ItemResult, ...]}`` for ``model`` (name/path or loaded backend) on ``tasks``.

    Parameters
    ----------
    store : Store, str, Path or None
        Store to write to and reuse from; None scores in memory only.
    """
    if store is not None:
        from sharpbench.engine.pipeline import run_eval
        from sharpbench.store import Store

        own = not isinstance(store, Store)
        st = Store(store, shared=True) if own else store
        try:
            rep = run_eval(model, tasks, limit=limit, num_fewshot=num_fewshot, batch_size=batch_size, store=st)
            return {t.task: _ids(st, t.run_id, limit) for t in rep.tasks}
        finally:
            if own:
                st.close()
    from sharpbench.engine.runner import score_items

    from sharpbench.engine.pipeline import resolve_task_list

    task_list = resolve_task_list(tasks, num_fewshot)
    backend = _backend(model)
    out = {}
    for task in task_list:
        items = list(task.items(limit=limit))
        res = {r.item_id: r for r in score_items(backend, items, batch_size=batch_size)}
        out[task.name] = [res[it.item_id] for it in items]
    return out


def _ids(st, run_id: str, limit: int | None) -> list[ItemResult]:
    res = st.item_results(run_id)
    return res if limit is None else [r for r in res if r.item_id < limit]


def _backend(model):
    if isinstance(model, (str, Path)):
        from sharpbench.models import load_model

        return load_model(str(model))
    return model


def score_item_list(model: str | Any, items: Sequence[Any], *, batch_size: int = 16) -> list[ItemResult]:
    """Score hand-built :class:`~sharpbench.data.task.Item` objects in memory, in input order."""
    from sharpbench.engine.runner import score_items

    backend = _backend(model)
    res = {r.item_id: r for r in score_items(backend, list(items), batch_size=batch_size)}
    return [res[it.item_id] for it in items]
