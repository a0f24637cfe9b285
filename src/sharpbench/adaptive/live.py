"""Live adaptive testing: each selected item runs through the engine, one at a time.

The item bank's ids are matched to task items by ``metadata["question_id"]``
when items carry it (MMLU-Pro), else by ``str(item.item_id)``. Scoring goes
through ``sharpbench.engine.pipeline.evaluate_items`` when a store is given
(results are stored like any other run), else through
``sharpbench.engine.runner.score_items`` (not stored).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sharpbench.adaptive.bank import BankError, ItemBank
from sharpbench.adaptive.cat import AdaptiveError, AdaptiveResult, AdaptiveTest
from sharpbench.engine.pipeline import evaluate_items
from sharpbench.engine.runner import score_items
from sharpbench.errors import EXIT_FAILURE

__all__ = ["Evaluator", "LiveError", "bank_item_map", "make_evaluator", "run_live", "score_benchmark"]

#: Scores a list of task items and returns their ``ItemResult`` objects.
Evaluator = Callable[[Sequence[Any]], Sequence[Any]]


class LiveError(AdaptiveError):
    """The live adaptive run cannot go on (model keeps failing, task and bank do not match)."""

    exit_code = EXIT_FAILURE


def item_key(item: Any) -> str:
    """The id an item has in a response matrix / bank."""
    qid = (item.metadata or {}).get("question_id")
    return str(qid) if qid is not None else str(item.item_id)


def bank_item_map(bank: ItemBank, items: Sequence[Any]) -> dict[str, Any]:
    """Map bank item ids to task items; raise when they share none."""
    by_key = {item_key(it): it for it in items}
    mapped = {k: by_key[k] for k in bank.item_ids if k in by_key}
    if not mapped:
        example = next(iter(by_key), None)
        raise BankError(
            f"none of the {bank.n_items} items of bank {bank.name!r} is in the task (task item ids look like "
            f"{example!r}, bank ids like {bank.item_ids[0]!r}); was the bank calibrated on this benchmark?"
        )
    return mapped


def score_benchmark(bank: ItemBank, items: Sequence[Any], evaluate: Evaluator, *, metric: str = "acc") -> float:
    """Score every item of the bank's benchmark the task has; their mean is the truth for a prediction.

    The benchmark is :attr:`ItemBank.benchmark_item_ids`: the bank's items and
    the fixed-score items left out of it, which predicted accuracies count too.
    """
    by_key = {item_key(it): it for it in items}
    todo = [by_key[k] for k in bank.benchmark_item_ids if k in by_key]
    if not todo:
        bank_item_map(bank, items)  # raises the bank/task mismatch error
    scores = [_score(r, metric) for r in evaluate(todo)]
    if len(scores) != len(todo):
        raise LiveError(f"engine returned {len(scores)} results for {len(todo)} items")
    return sum(scores) / len(scores)


def make_evaluator(backend: Any, task: Any, store: Any | None = None, *, batch_size: int = 16) -> Evaluator:
    """An :data:`Evaluator` using the engine pipeline (stores results) or the bare runner."""
    if store is not None:

        def evaluate(items: Sequence[Any]) -> Sequence[Any]:
            return list(evaluate_items(backend, task, [it.item_id for it in items], store))

        return evaluate

    def evaluate_bare(items: Sequence[Any]) -> Sequence[Any]:
        return list(score_items(backend, list(items), batch_size=batch_size))

    return evaluate_bare


def _score(result: Any, metric: str) -> float:
    metrics = getattr(result, "metrics", None) or {}
    if metric not in metrics:
        raise LiveError(f"engine result for item {getattr(result, 'item_id', '?')} has no metric {metric!r} "
                        f"(has {sorted(metrics)})")
    return float(metrics[metric])


def run_live(
    test: AdaptiveTest,
    items: Sequence[Any],
    evaluate: Evaluator,
    *,
    metric: str = "acc",
    max_consecutive_failures: int = 3,
    on_step: Callable[[AdaptiveTest], None] | None = None,
    full_score: float | None = None,
) -> AdaptiveResult:
    """Administer items to a live model until the test stops.

    Parameters
    ----------
    test : AdaptiveTest
        Fresh test over the bank (its benchmark must match the task's).
    items : sequence of Item
        The task's items (matched to bank ids by :func:`item_key`).
    evaluate : Evaluator
        Scores ``[item]`` and returns ``[ItemResult]``.
    metric : str
        Per-item metric used as the response (``acc``).
    max_consecutive_failures : int
        An engine error on an item skips that item (listed in ``result.skipped``);
        this many errors in a row abort the run with :class:`LiveError`.
    """
    mapping = bank_item_map(test.bank, items)
    for missing in (k for k in test.bank.item_ids if k not in mapping):
        test.skip(missing, "not in task")
    failures = 0
    while (key := test.next_item()) is not None:
        item = mapping[key]
        try:
            results = list(evaluate([item]))
            if len(results) != 1:
                raise LiveError(f"engine returned {len(results)} results for one item")
            score = _score(results[0], metric)
        except LiveError:
            raise
        except Exception as exc:
            failures += 1
            test.skip(key, f"{type(exc).__name__}: {exc}")
            if failures >= max_consecutive_failures:
                raise LiveError(
                    f"{failures} items in a row failed in the engine (last: {type(exc).__name__}: {exc}); "
                    "check the model loads and scores a single item with `sharpbench eval --limit 1`"
                ) from exc
            continue
        failures = 0
        test.record(key, score)
        if on_step:
            on_step(test)
    return test.result(full_score=full_score)
