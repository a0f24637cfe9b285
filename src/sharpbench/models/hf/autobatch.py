"""``batch_size="auto"`` for the hf backend: the largest batch whose forward fits in free GPU memory.

As lm-evaluation-harness 0.4.13's ``--batch_size auto`` (``HFLM._detect_batch_size``):
the worst case of the plan (its longest requests) runs at decreasing batch
sizes, starting from a maximum, through accelerate's
``find_executable_batch_size`` (which frees the device cache after each
out-of-memory error and tries a smaller size: ``x 0.9`` in accelerate 1.x,
halving in older releases); the first size that runs is kept.  The search
runs once per backend and per (request kind, shape): the shape is the worst
case's length rounded up to a power of two (and, for scoring, whether its
contexts share prefixes), so a task with much longer requests searches again,
and the rest reuse the cached size.

* Scoring (multiple choice, rolling): the batch is items per backend call.
  The probe scores the ``b`` longest items' requests through the backend's
  own ``loglikelihood`` as one forward pass (the backend's ``score_bounds``,
  rows and flat tokens of one scoring pass, set to that batch's; a shared
  few-shot prefix counts once, as the prefix tree computes it once).  The
  chosen bounds then stay: a later batch of ``b`` items no larger than the
  worst is one pass, a larger one (longer, or sharing less) is split.
  Generation keeps the backend's own ``batch_size`` / ``max_batch_tokens``.
* Generation: the batch is sequences decoded together.  The probe is one
  forward pass of ``b`` sequences as long as the longest prompt plus its
  ``max_gen_toks`` with the key/value cache kept (the prefill of a full
  batch at its largest); generation's own key/value memory cap still applies.

Only CUDA devices are probed.  On the CPU (and mps) ``auto`` is the default
batch size of the kind (probing host memory would swap before it fails), and
the log line says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["AUTO_MAX_ITEMS", "AUTO_MAX_SEQUENCES", "auto_batch_size", "find_batch_size", "shape_bucket"]

#: Starting maximum of the search: items per scoring call, sequences decoded together.
AUTO_MAX_ITEMS = 512
AUTO_MAX_SEQUENCES = 256

log = logging.getLogger("sharpbench")


def find_batch_size(run: Callable[[int], object], start: int) -> int:
    """The first size, from ``start`` down, at which ``run(size)`` raises no out-of-memory error.

    accelerate's ``find_executable_batch_size`` does the stepping and frees
    the device cache (``gc.collect`` + ``empty_cache``) between tries; other
    errors propagate.  If even size 1 runs out of memory, 1 is returned (as
    lm-eval does): the run then fails with the real error.
    """
    from accelerate.utils import find_executable_batch_size  # the models extra; loaded only for a search

    if start < 1:
        raise ValueError(f"start must be >= 1, got {start}")

    @find_executable_batch_size(starting_batch_size=int(start))
    def attempt(batch_size: int) -> int:
        run(batch_size)
        return batch_size

    try:
        return int(attempt())
    except RuntimeError as err:
        if "No executable batch size found" in str(err):
            return 1
        raise


def shape_bucket(n_tokens: int) -> int:
    """``n_tokens`` rounded up to a power of two (the cache key's shape)."""
    return 1 << max(0, int(n_tokens) - 1).bit_length()


def auto_batch_size(backend: Any, kind: str, worst: Callable[[int], list], *, n_items: int, default: int,
                    probe: bool | None = None) -> int:
    """The batch size for ``kind`` on ``backend`` (an :class:`~sharpbench.models.hf.backend.HFBackend`).

    Parameters
    ----------
    kind : str
        ``"multiple_choice"``, ``"loglikelihood_rolling"`` or ``"generate_until"``.
    worst : callable
        ``worst(n)``: the ``n`` longest items' requests, longest first (per item a
        tuple of token requests; for generation one generation request per item).
    n_items : int
        Items to score (the search starts at most here).
    default : int
        The kind's default batch size: the answer off CUDA.
    probe : bool, optional
        Search even off CUDA (the tests do, on the CPU, against a model that
        raises out-of-memory errors above a token budget); default: on CUDA only.
    """
    cache: dict = backend.__dict__.setdefault("_auto_batch", {})
    device = str(backend.device)
    if not (device.startswith("cuda") if probe is None else probe):
        if (kind, None) not in cache:
            cache[(kind, None)] = default
            log.warning("batch size auto: %d for %s (%s: the default; free memory is probed on CUDA only)",
                        default, kind, device)
        return default
    if kind == "generate_until":
        return _generation(backend, kind, worst, n_items, cache)
    return _scoring(backend, kind, worst, n_items, cache)


def _scoring(backend, kind, worst, n_items, cache) -> int:
    per_item: Sequence[tuple] = worst(max(1, min(n_items, AUTO_MAX_ITEMS)))
    shares = _shares(backend, per_item)  # the prefix-tree path: its forward holds each shared prefix once
    key = (kind, shape_bucket(_tokens(per_item[:1], False)), shares)
    if key not in cache:
        t0 = time.perf_counter()

        def run(b: int) -> None:
            batch = per_item[:b]
            backend.score_bounds = _rows(batch), _tokens(batch, shares)
            backend.loglikelihood([r for reqs in batch for r in reqs])
            _sync(backend.device)

        saved = backend.score_bounds
        try:
            b = find_batch_size(run, len(per_item))
        finally:
            backend.score_bounds = saved
        cache[key] = (b, (_rows(per_item[:b]), _tokens(per_item[:b], shares)))
        _found(kind, b, time.perf_counter() - t0, device=backend.device, what="items per forward")
    b, bounds = cache[key]
    # a batch of b items is one forward pass; a larger one (less shared, longer) is split, never larger than found
    backend.score_bounds = bounds
    return b


def _generation(backend, kind, worst, n_items, cache) -> int:
    import torch

    from sharpbench.models.gen_text import prompt_window

    requests = worst(max(1, min(n_items, AUTO_MAX_SEQUENCES)))
    length = max(len(prompt_window(backend.tok_encode(r.prompt), backend.max_length, r.max_gen_toks))
                 + r.max_gen_toks for r in requests)
    length = max(1, min(length, int(backend.max_length)))
    key = (kind, shape_bucket(length))
    if key not in cache:
        t0 = time.perf_counter()
        token = int(backend.prefix_token_id)
        width = min(key[1], int(backend.max_length))  # the bucket's longest: every shape in it fits

        def run(b: int) -> None:
            ids = torch.full((b, width), token, dtype=torch.long, device=backend.device)
            with torch.inference_mode():
                try:
                    out = backend.model(input_ids=ids, use_cache=True, logits_to_keep=1)
                except TypeError:  # transformers < 4.50 has no logits_to_keep: all logits (a larger probe)
                    out = backend.model(input_ids=ids, use_cache=True)
            del out
            _sync(backend.device)

        cache[key] = find_batch_size(run, len(requests))
        _found(kind, cache[key], time.perf_counter() - t0, device=backend.device, what="sequences decoded together")
    return int(cache[key])


def _sync(device: str) -> None:
    """Wait for the device's queued work (an out-of-memory error surfaces inside the try)."""
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def _rows(per_item: Sequence[tuple]) -> int:
    """Packed rows of a batch: one per distinct context."""
    return max(1, len({tuple(r.context) for reqs in per_item for r in reqs}))


def _tokens(per_item: Sequence[tuple], shared: bool) -> int:
    """Flat tokens of a batch's forward: its contexts (each distinct one once; with ``shared``, each shared
    prefix once, as the prefix tree lays them) plus every continuation but its last token."""
    from sharpbench.models.hf.prefix import distinct_tokens

    ctxs = list(dict.fromkeys(tuple(r.context) for reqs in per_item for r in reqs))
    n_ctx = distinct_tokens(ctxs) if shared else sum(len(c) for c in ctxs)
    return max(1, n_ctx + sum(len(r.continuation) for reqs in per_item for r in reqs))


def _shares(backend: Any, per_item: Sequence[tuple]) -> bool:
    """Whether the backend scores this batch through the prefix tree (its rule, on the worst items)."""
    from sharpbench.models.hf.prefix import tree_saves_work

    return bool(backend.prefix_tree) and tree_saves_work([r.context for reqs in per_item for r in reqs])


def _found(kind: str, size: int, seconds: float, *, device: str, what: str) -> None:
    log.warning("batch size auto: %d for %s (%s; found in %.1f s on %s)", size, kind, what, seconds, device)
