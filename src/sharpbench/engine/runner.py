"""Score items with a backend and yield per-item results as batches complete."""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator

from sharpbench.engine.metrics import item_metrics
from sharpbench.engine.requests import EncodedItem, TruncationWarning, encode_item
from sharpbench.engine.results import ItemResult
from sharpbench.models.base import Backend, prefix_session
from sharpbench.models.errors import NonFiniteLogitsError, ScoringError
from sharpbench.models.hf.prefix import tree_saves_work

log = logging.getLogger(__name__)


def _windows(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def default_window(batch_size: int) -> int:
    """Items tokenized and length-sorted together by :func:`score_items` by default."""
    return max(256, 32 * batch_size)


def tree_order(backend: Backend) -> bool:
    """Whether ``backend`` wants items in prefix-tree order (items sharing a prefix together).

    Backends say so with a ``tree_order`` attribute: the HF backend when its
    prefix tree is on, the openai backend by default (it sends one request
    at a time, so a server's own prefix cache, vLLM's APC or llama.cpp's
    slot, serves the part shared with the previous request).  Others (the
    in-process llama.cpp backend evaluates every context whole: its kernels
    depend on the batch size, so pieces would change the logits) go longest
    first, which keeps padding low.
    """
    return bool(getattr(backend, "tree_order", False))


def _shares_prefixes(encoded: list[EncodedItem]) -> bool:
    """Whether the window's contexts share enough for tree order to pay (the backend's own rule).

    Otherwise (0-shot tasks) items go longest first, exactly as without a prefix cache.
    """
    return tree_saves_work([r.context for e in encoded for r in e.requests])


def score_items(
    backend: Backend,
    items: Iterable,
    *,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    mutual_info: bool = False,
    window: int | None = None,
) -> Iterator[ItemResult]:
    """Score ``items`` and yield an :class:`ItemResult` per item, a batch at a time.

    Generative items (:class:`~sharpbench.data.task.GenItem`) go to
    :func:`sharpbench.engine.generation.generate_items` and yield
    :class:`~sharpbench.results.GenItemResult` objects.

    Items are tokenized a window at a time (``window`` items, default
    ``max(256, 32 * batch_size)``), ordered inside the window (in prefix-tree
    order, so items sharing a few-shot prefix go together, when the backend
    shares prefixes, see :func:`tree_order`; else longest first, to avoid
    padding), and scored ``batch_size`` items per backend call; the
    results of a batch are yielded (in item order within the batch) as soon as
    it finishes, so an interrupted run loses at most one batch.

    Parameters
    ----------
    backend : Backend
    items : iterable of sharpbench.data.task.Item
    batch_size : int
        Items per backend call (each item is one packed row for the HF backend).
    progress : callable, optional
        Called with the cumulative number of finished items after each batch.
    mutual_info : bool
        Also score ``("", continuation)`` per choice and add ``acc_mutual_info``
        (doubles the requests, though all unconditional requests of a batch
        share the single prefix-token context and so one packed row).

    Warns
    -----
    TruncationWarning
        Once at the end if any request exceeded ``backend.max_length`` and
        was cut from the left (lm-eval behaviour), with the count.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    items = items if isinstance(items, list) else list(items)
    if items and getattr(items[0], "kind", "multiple_choice") == "generate_until":
        from sharpbench.engine.generation import (
            generate_items,  # one entry point for every request kind
        )

        yield from generate_items(backend, items, batch_size=batch_size, progress=progress)
        return
    window = window or default_window(batch_size)
    done = n_trunc = n_req = 0
    by_tree = tree_order(backend)
    with prefix_session(backend):
        for chunk in _windows(items, window):
            encoded = [encode_item(backend, item, unconditional=mutual_info) for item in chunk]
            n_trunc += sum(e.n_truncated for e in encoded)
            n_req += sum(len(e.requests) for e in encoded)
            if by_tree and _shares_prefixes(encoded):
                ordered = sorted(encoded, key=lambda e: min(r.context for r in e.requests))
            else:
                ordered = sorted(encoded, key=lambda e: -e.packed_length)
            for start in range(0, len(ordered), batch_size):
                batch = ordered[start : start + batch_size]
                yield from _score_batch(backend, batch)
                done += len(batch)
                if progress is not None:
                    progress(done)
    if n_trunc:
        msg = (
            f"{n_trunc} of {n_req} requests exceeded the model window of {backend.max_length} tokens "
            "and were truncated from the left (as lm-eval does)"
        )
        log.warning(msg)
        warnings.warn(msg, TruncationWarning, stacklevel=2)


def _score_batch(backend: Backend, batch: list[EncodedItem]) -> list[ItemResult]:
    reqs = [r for e in batch for r in e.requests]
    try:
        scored = backend.loglikelihood(reqs)
    except NonFiniteLogitsError as err:
        owners, offset = [], 0
        for e in batch:
            if any(offset <= i < offset + len(e.requests) for i in err.request_indices):
                owners.append(e.item.item_id)
            offset += len(e.requests)
        raise ScoringError(
            f"non-finite logits while scoring item(s) {sorted(owners)[:10]} on {backend.model_id}: {err}"
        ) from err
    if len(scored) != len(reqs):
        raise ScoringError(f"backend returned {len(scored)} results for {len(reqs)} requests")
    out, offset, pos = [], 0, {}
    for e in batch:
        pos[id(e)] = offset
        offset += len(e.requests)
    for e in sorted(batch, key=lambda e: e.item.item_id):
        start = pos[id(e)]
        res = scored[start : start + len(e.requests)]
        n = len(e.item.requests)
        choices, unc = res[:n], res[n:]
        metrics = item_metrics(
            [c.loglik for c in choices],
            e.item.gold,
            e.item.choices,
            unconditional=[u.loglik for u in unc] if e.n_unconditional else None,
        )
        out.append(
            ItemResult(item_id=e.item.item_id, gold=e.item.gold, choices=tuple(choices), metrics=metrics)
        )
    return out
