"""Batch sizes: a positive integer, or ``"auto"`` (the largest batch that fits, as lm-eval's ``--batch_size auto``).

:func:`parse_batch_size` checks what a user gave (``16``, ``"16"``, ``"auto"``);
:func:`resolve_batch_size` turns it into the integer one task's items are
scored with.  ``"auto"`` asks the backend: a backend with an
``auto_batch_size(kind, worst, n_items=, default=)`` method (the hf backend,
see :mod:`sharpbench.models.hf.autobatch`) runs the worst case of the task (its
longest requests) at decreasing sizes on a CUDA GPU and keeps the largest that
fits; on the CPU, and for backends without such a method, ``"auto"`` is the
default batch size of the kind.  The engine stays backend-neutral: it only
builds the worst case, lazily, when the backend asks for it.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from sharpbench.errors import InputError

__all__ = [
    "AUTO", "DEFAULT_BATCH_SIZE", "BatchSize", "BatchSizeError", "parse_batch_size", "resolve_batch_size", "worst_case",
]

AUTO = "auto"

#: What ``batch_size=`` takes: a positive integer, or ``"auto"``.
BatchSize = int | str

# Default --batch-size per request kind: items per forward batch; sequences decoded together for generation
# (a decode step on a CPU costs about the same for 16 or 64 rows: the weights are read once per step).
# Generation: 128 sequences decode together. On this project's 2-core CPU, in bfloat16, 128 slots decode
# SmolLM2-135M 2.1-2.4x faster than 64 (per-step overhead is shared by more rows) and Qwen2.5-Coder-1.5B
# as fast (benchmarks/gen_slots_ab.py); the key/value slots stay within half the free memory (fewer slots
# when they would not).
DEFAULT_BATCH_SIZE = {"multiple_choice": 16, "loglikelihood_rolling": 16, "generate_until": 128}

log = logging.getLogger("sharpbench")
_noted: set[tuple[str, str]] = set()


class BatchSizeError(InputError, ValueError):
    """A batch size that is neither a positive integer nor ``"auto"``."""


def parse_batch_size(value: Any) -> int | str | None:
    """``None``, a positive ``int``, or ``"auto"`` from what a user gave (``8``, ``"8"``, ``"auto"``, ``" AUTO "``).

    Raises
    ------
    BatchSizeError
        Anything else (``0``, ``"foo"``, ``True``, ``"auto:4"``); the message says what is accepted.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if text.startswith(AUTO + ":"):
            raise BatchSizeError(
                f"batch size {value!r}: lm-eval's auto:N (search again N times during the run) is not "
                "supported; use auto (searched once per task shape)"
            )
        if text.isdigit() and int(text) >= 1:
            return int(text)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:  # int, numpy ints
        return int(value)
    raise BatchSizeError(f"batch size must be a positive integer or 'auto', got {value!r}")


def resolve_batch_size(backend: Any, batch_size: Any, kind: str, items: Sequence[Any]) -> int:
    """The batch size to score ``items`` (all of request ``kind``) with on ``backend``.

    ``None`` gives the kind's default (:data:`DEFAULT_BATCH_SIZE`), an integer
    itself, and ``"auto"`` the backend's ``auto_batch_size`` answer (the hf
    backend searches on CUDA and caches the result; elsewhere it is the
    default).  Backends without ``auto_batch_size`` get the default, and a
    line saying so is logged once per backend name and kind.
    """
    default = DEFAULT_BATCH_SIZE.get(kind, 16)
    size = parse_batch_size(batch_size)
    if size is None:
        return default
    if size != AUTO:
        return int(size)
    items = list(items)
    if not items:
        return default
    probe = getattr(backend, "auto_batch_size", None)
    if not callable(probe):
        name = str(getattr(backend, "name", type(backend).__name__))
        if (name, kind) not in _noted:
            _noted.add((name, kind))
            log.warning("batch size auto: %d (the %s backend does not probe memory: the default for %s)",
                        default, name, kind)
        return default
    return max(1, int(probe(kind, worst_case(backend, kind, items), n_items=len(items), default=default)))


def worst_case(backend: Any, kind: str, items: Sequence[Any]) -> Callable[[int], list]:
    """``worst(n)``: the requests of the ``n`` longest items, longest first (built only when called).

    Multiple choice: per item, its token requests (encoded as the runner
    encodes them), ordered by packed length; rolling: per item, its windows;
    generation: one :class:`~sharpbench.results.GenerationRequest` per item,
    longest prompt first.  Items are pre-chosen by character length (a
    tokenizer-free proxy) so that only ``n`` of them are tokenized.
    """

    def worst(n: int) -> list:
        if kind == "generate_until":
            from sharpbench.engine.generation import sample_request

            ranked = sorted(items, key=lambda it: -len(it.prompt))[:n]
            return [sample_request(it, 0) for it in ranked]
        if kind == "loglikelihood_rolling":
            from sharpbench.engine.rolling import rolling_requests

            ranked = sorted(items, key=lambda it: -len(it.text))[:n]
            per_item = [tuple(rolling_requests(backend, it.text)) for it in ranked]
        else:
            from sharpbench.engine.requests import encode_item

            ranked = sorted(items, key=lambda it: -sum(len(r.context) + len(r.continuation) for r in it.requests))[:n]
            per_item = [encode_item(backend, it).requests for it in ranked]
        return sorted(per_item, key=lambda reqs: -_packed_length(reqs))

    return worst


def _packed_length(requests: Sequence[Any]) -> int:
    ctxs = {tuple(r.context) for r in requests}
    return sum(len(c) for c in ctxs) + sum(len(r.continuation) - 1 for r in requests)
