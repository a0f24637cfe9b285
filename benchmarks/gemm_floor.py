"""The GEMM floor of a scoring run: its matrix products alone, replayed back to back.

:func:`record_gemms` runs a function under a ``TorchDispatchMode`` and notes
every dense product it issues (``aten::linear``, ``aten::mm``, ``aten::addmm``,
and MKL's packed ``_mkl_linear``, which the mode does not see: sharpbench's
fast path reaches it through ``fastpath._mkl()``, wrapped for the run) with
the shape of its activation operand and a reference to its weight operand.
:func:`replay_gemms` then issues the same products, in the same order, on the
same weight tensors, with random activations of the recorded shapes (one
tensor per shape, so they stay in cache: a floor), and nothing else: no
attention, norms, rotary embeddings, activations, log-softmax or Python
between them.

The time of that replay over the compute lower bound says how much of a
``time / bound`` target the products, as torch runs them at the engine's
shapes, already use up before any of the work the bound does not count.
Used by ``engine_vs_lmeval.py --gemm-floor`` (CPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Gemm:
    """One recorded product: ``op(*args)`` where ``args[act]`` is an activation of shape ``shape``."""

    name: str
    op: Any
    args: tuple
    act: int
    shape: tuple[int, ...]
    flops: float


def _flops(name: str, args: tuple) -> tuple[int, float]:
    """(index of the activation argument, FLOPs) of one product."""
    if name == "aten::linear":  # linear(input, weight, bias=None): input (..., k)
        shape, n = args[0].shape, args[1].shape[0]
        m = 1
        for d in shape[:-1]:
            m *= d
        return 0, 2.0 * m * shape[-1] * n
    if name == "aten::mm":
        (m, k), n = args[0].shape, args[1].shape[1]
        return 0, 2.0 * m * k * n
    if name == "aten::addmm":
        (m, k), n = args[1].shape, args[2].shape[1]
        return 1, 2.0 * m * k * n
    # mkl::_mkl_linear(input, packed, orig_weight, bias, batch_size)
    (m, k), n = args[0].shape, args[2].shape[0]
    return 0, 2.0 * m * k * n


def record_gemms(run: Callable[[], Any]) -> list[Gemm]:
    """Run ``run()`` and return the dense products it issued, in order."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    names = {"aten::linear", "aten::mm", "aten::addmm"}
    log: list[Gemm] = []

    def note(func, name: str, args: tuple) -> None:
        act, flops = _flops(name, args)
        kept = tuple(None if i == act else a for i, a in enumerate(args))
        log.append(Gemm(name, func, kept, act, tuple(args[act].shape), flops))

    class _Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func._schema.name
            if name in names and not kwargs:
                note(func, name, args)
            return func(*args, **(kwargs or {}))

    from sharpbench.models.hf import fastpath

    class _Mkl:  # torch.ops.mkl with _mkl_linear noted
        def __getattr__(self, attr):
            op = getattr(torch.ops.mkl, attr)
            if attr != "_mkl_linear":
                return op

            def packed_linear(*args):
                note(op, "mkl::_mkl_linear", args)
                return op(*args)

            return packed_linear

    real = fastpath._mkl
    fastpath._mkl = _Mkl
    try:
        with torch.inference_mode(), _Recorder():
            run()
    finally:
        fastpath._mkl = real
    return log


def replay_gemms(log: list[Gemm]) -> tuple[float, float]:
    """Issue the recorded products back to back: (CPU seconds, FLOPs).

    Activations are random tensors of the recorded shapes (one per distinct
    shape and dtype, made before the clock starts).
    """
    import torch

    acts: dict[tuple, Any] = {}
    calls = []
    for g in log:
        weight = next(a for a in g.args if isinstance(a, torch.Tensor))
        key = (g.shape, weight.dtype)
        if key not in acts:
            acts[key] = torch.randn(g.shape, dtype=weight.dtype)
        args = list(g.args)
        args[g.act] = acts[key]
        calls.append((g.op, tuple(args)))
    with torch.inference_mode():
        t0 = time.process_time()
        for op, args in calls:
            op(*args)
        spent = time.process_time() - t0
    return spent, sum(g.flops for g in log)
