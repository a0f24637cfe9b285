"""Attention over packed shared-context rows, computed segment by segment.

A packed row holds one context followed by the (input tokens of the)
continuations scored after it.  Every token is the query of exactly one
*segment*:

* the context tokens form a segment with no prefix, attending causally to
  themselves;
* each continuation forms a segment whose prefix is its row's context: its
  queries see the whole context and, causally, the earlier tokens of their own
  continuation.

So a segment is ``(prefix, own)``: its queries are the ``own`` tokens, its
keys ``prefix ++ own``, and query ``i`` sees key ``j`` iff ``j < len(prefix)``
or ``j - len(prefix) <= i``.  This is exactly what the packed 4D mask of
:mod:`sharpbench.models.hf.scoring` allows, but the scores of continuation
tokens against other continuations of the same row (always masked) and of
tokens of other rows are never computed.

Segments of similar shape are grouped into *buckets*; each bucket is one
attention call over a ``(segments, heads, max own, max prefix + own)`` grid
gathered from the flat ``(tokens, heads, head_dim)`` q/k/v, with an additive
mask built once per batch and reused by every layer.  The grouping minimises
``CALL_COST + padded entries`` summed over buckets (one call costs about as
much as ~1500 score entries on a CPU core), so near-equal segments share a
call and very unequal ones do not.  On a GPU a call costs far more than the
padded entries it saves (the host issues the launches while the device
idles on a small model), so there all contexts share one call and all
continuations another, and the plan's index tensors are copied without
blocking the host.  Every bucket goes through SDPA, the
kernel lm-eval's model forward uses (a hand-written softmax(QK^T)V in two
batched GEMMs was ~2x faster on small grids but <1% faster end to end, and
doubled the mean |delta loglik| against lm-eval, so it is not used).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class AttentionPlanError(ValueError):
    """The segments passed to :func:`plan_attention` are malformed."""


@dataclass(frozen=True)
class Bucket:
    """One SDPA call: ``n_seg`` segments padded to ``lq`` queries and ``lk`` keys."""

    n_seg: int
    lq: int
    lk: int
    q_src: Any  # (n_seg * lq,) long: flat token of each query slot (padding -> 0)
    k_src: Any  # (n_seg * lk,) long: flat token of each key slot (padding -> 0)
    out_dst: Any  # (n_seg * lq,) long: output row of each query slot (padding -> n_tok)
    mask: Any  # (n_seg, 1, lq, lk) additive (0 / -inf), q's dtype
    mask_window: Any = None  # the same, also hiding keys a sliding window leaves out (plans built with a window)


@dataclass(frozen=True)
class AttentionPlan:
    """All buckets of one batch of ``n_tok`` flat tokens (each token is one query slot)."""

    n_tok: int
    buckets: tuple[Bucket, ...]
    n_past: int = 0  # cached keys before the flat tokens (prefix-tree layouts)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def head_index(self, b: int, n_heads: int, n_kv: int, expand: bool = False):
        """Bucket ``b``'s gather/scatter indices over ``(token * heads + head)`` rows (built once).

        Returns ``q_idx (S, H, lq)``, ``k_idx (S, H_kv, lk)`` and ``out_idx (S, H, lq)``
        (flattened), so q/k/v are gathered straight into the head-major grids
        the attention uses and its output scattered back without copies.
        ``expand=True`` gathers k/v for every query head, ``k_idx (S, H, lk)``
        (query head ``h`` reads kv head ``h // (H / H_kv)``, as grouped-query
        attention does).
        """
        key = ("idx", b, n_heads, n_kv, expand)
        if key not in self._cache:
            import torch

            bk = self.buckets[b]
            hq = torch.arange(n_heads, device=bk.q_src.device)[None, :, None]
            hk = hq // (n_heads // n_kv) if expand else torch.arange(n_kv, device=bk.q_src.device)[None, :, None]
            q_src = bk.q_src.view(bk.n_seg, 1, bk.lq)
            self._cache[key] = (
                (q_src * n_heads + hq).reshape(-1),
                (bk.k_src.view(bk.n_seg, 1, bk.lk) * n_kv + hk).reshape(-1),
                (bk.out_dst.view(bk.n_seg, 1, bk.lq) * n_heads + hq).reshape(-1),
            )
        return self._cache[key]

    def padded_scores(self) -> int:
        """Query x key entries computed per head (padding included)."""
        return sum(b.n_seg * b.lq * b.lk for b in self.buckets)


CALL_COST = 1500  # one SDPA call in score entries (one CPU core: ~60 us per call, ~40 ns per entry)


def _partition(lq: np.ndarray, lk: np.ndarray) -> list[np.ndarray]:
    """Optimal contiguous partition of segments sorted by key length (descending).

    Minimises ``sum(CALL_COST + n * max(lq) * max(lk))`` over buckets by
    dynamic programming (O(n^2), n = segments of one batch).
    """
    order = np.lexsort((-lq, -lk))
    q, k = lq[order].tolist(), lk[order].tolist()
    n = len(order)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for i in range(1, n + 1):  # best[i]: first i segments; last bucket is j..i-1
        mq = 0
        for j in range(i - 1, -1, -1):
            mq = max(mq, q[j])
            c = best[j] + CALL_COST + (i - j) * mq * k[j]
            if c < best[i]:
                best[i], cut[i] = c, j
    groups = []
    i = n
    while i > 0:
        groups.append(order[cut[i] : i])
        i = cut[i]
    return groups[::-1]


def _group(p_len: np.ndarray, o_len: np.ndarray, *, split: bool = True) -> list[np.ndarray]:
    """Buckets of segment indices: contexts (no prefix) and continuations apart.

    ``split=False`` keeps each of the two kinds in one bucket (GPUs).
    """
    out = []
    for sel in (np.flatnonzero(p_len == 0), np.flatnonzero(p_len > 0)):
        if not sel.size:
            continue
        if split:
            out.extend(sel[g] for g in _partition(o_len[sel], p_len[sel] + o_len[sel]))
        else:
            out.append(sel)
    return out


def to_device(t: Any, device: Any) -> Any:
    """Host tensor ``t`` on ``device``; to a GPU through pinned memory without blocking the host."""
    import torch

    device = torch.device(device)
    if device.type == "cpu":
        return t
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def plan_attention(
    segments: Sequence[tuple[int, int, int, int]],
    n_tok: int,
    *,
    dtype: Any = None,
    device: Any = "cpu",
    window: int | None = None,
) -> AttentionPlan:
    """Buckets, gather indices and masks for the segments of one batch.

    Parameters
    ----------
    segments : sequence of (prefix_start, prefix_len, own_start, own_len)
        Flat token offsets; ``own_len >= 1``.  The ``own`` ranges must cover
        every token in ``[0, n_tok)`` exactly once.
    n_tok : int
        Number of flat tokens.
    dtype : torch dtype
        Dtype of q/k/v (the additive masks use it); default float32.
    device : torch device
        Where the index and mask tensors live.  On a non-CPU device each
        kind of segment (contexts, continuations) is one bucket, its key
        axis padded to a multiple of 16.
    window : int, optional
        Also build each bucket's sliding-window mask (see
        :func:`plan_tree_attention`).

    Returns
    -------
    AttentionPlan
    """
    seg = np.asarray(segments, dtype=np.int64).reshape(-1, 4)
    if seg.shape[0] == 0:
        raise AttentionPlanError("no segments to attend over")
    p0, pl, o0, ol = seg.T
    if (pl < 0).any() or (p0 < 0).any() or ((p0 + pl) > n_tok).any():
        raise AttentionPlanError("prefix lengths must be >= 0, offsets >= 0 and inside the flat tokens")
    keys = [np.arange(a, a + n, dtype=np.int64) for a, n in zip(p0.tolist(), pl.tolist())]
    return plan_tree_attention(list(zip(keys, o0.tolist(), ol.tolist())), n_tok, dtype=dtype, device=device,
                               window=window)


def plan_tree_attention(
    segments: Sequence[tuple[Any, int, int]],
    n_tok: int,
    *,
    n_past: int = 0,
    dtype: Any = None,
    device: Any = "cpu",
    window: int | None = None,
) -> AttentionPlan:
    """Attention plan for segments whose prefix is any list of earlier keys (prefix-tree layouts).

    Keys live in one space: ``n_past`` cached keys first (positions of a
    prefix computed in an earlier call), then the ``n_tok`` flat tokens of
    this batch, so flat token ``t`` is key ``n_past + t``.

    Parameters
    ----------
    segments : sequence of (prefix_keys, own_start, own_len)
        ``prefix_keys``: 1-D integer array of key indices every query of the
        segment sees (its ancestors' tokens, in position order); ``own``:
        flat token range ``[own_start, own_start + own_len)`` whose queries
        also see, causally, the earlier keys of the same range.  The own
        ranges must cover every flat token exactly once.
    n_tok, n_past : int
        Flat tokens of the batch and cached keys before them.
    dtype, device
        As :func:`plan_attention`.
    window : int, optional
        Also build, per bucket, the mask of a sliding-window layer: a query
        does not see keys ``window`` or more positions before it
        (transformers' ``kv_idx > q_idx - window``).  A segment's prefix keys
        are its whole ancestry, so prefix key ``j`` sits at position ``j`` and
        own query ``i`` at position ``len(prefix) + i``.

    Returns
    -------
    AttentionPlan
        Its ``n_past`` is the number of cached keys the attention expects.
    """
    import torch

    dtype = dtype or torch.float32
    if not segments:
        raise AttentionPlanError("no segments to attend over")
    pref = [np.asarray(p, dtype=np.int64).reshape(-1) for p, _, _ in segments]
    o0 = np.array([int(s[1]) for s in segments], dtype=np.int64)
    ol = np.array([int(s[2]) for s in segments], dtype=np.int64)
    pl = np.array([len(p) for p in pref], dtype=np.int64)
    n_key = n_past + n_tok
    if (ol < 1).any() or (o0 < 0).any():
        raise AttentionPlanError("segment lengths must be >= 1 (own) / >= 0 (prefix), offsets >= 0")
    if ((o0 + ol) > n_tok).any():
        raise AttentionPlanError(f"a segment reaches past the {n_tok} flat tokens")
    if any(p.size and (p.min() < 0 or p.max() >= n_key) for p in pref):
        raise AttentionPlanError(f"a prefix key lies outside the {n_key} keys ({n_past} cached + {n_tok} flat)")
    covered = np.zeros(n_tok, dtype=np.int64)
    for a, n in zip(o0.tolist(), ol.tolist()):
        covered[a : a + n] += 1
    if not (covered == 1).all():
        raise AttentionPlanError("the own ranges of the segments must cover every token exactly once")
    buckets = []
    on_cpu = torch.device(device).type == "cpu"
    for g in _group(pl, ol, split=on_cpu):
        n_seg = len(g)
        lq, lk = int(ol[g].max()), int((pl[g] + ol[g]).max())
        if not on_cpu:  # GPU kernels want the key axis in multiples of 16 (masked padding keys)
            lk = -(-lk // 16) * 16
        qi = np.arange(lq)[None, :]
        kj = np.arange(lk)[None, :]
        gpl, go0, gol = pl[g, None], o0[g, None], ol[g, None]
        q_real = qi < gol  # (n_seg, lq)
        q_src = np.where(q_real, go0 + qi, 0)
        out_dst = np.where(q_real, go0 + qi, n_tok)
        k_own = kj - gpl
        k_src = np.where((kj >= gpl) & (k_own < gol), n_past + go0 + k_own, 0)
        for r, s in enumerate(g.tolist()):
            k_src[r, : pl[s]] = pref[s]
        # query i sees the prefix and own keys up to itself; padded queries see at least key 0
        see = (kj[:, None, :] < gpl[:, :, None]) | (k_own[:, None, :] <= qi[:, :, None])
        mask = torch.zeros(see.shape, dtype=dtype).masked_fill_(torch.from_numpy(~see), float("-inf"))
        mask_window = None
        if window is not None:
            if window < 1:
                raise AttentionPlanError(f"a sliding window must be >= 1, got {window}")
            near = (gpl[:, :, None] + qi[:, :, None]) - kj[:, None, :] < window  # (n_seg, lq, lk)
            near |= ~q_real[:, :, None]  # padded queries keep key 0 (their output is dropped)
            mask_window = mask.masked_fill(torch.from_numpy(~near), float("-inf"))
        buckets.append(
            Bucket(
                n_seg=n_seg,
                lq=lq,
                lk=lk,
                q_src=to_device(torch.from_numpy(q_src.reshape(-1)), device),
                k_src=to_device(torch.from_numpy(k_src.reshape(-1)), device),
                out_dst=to_device(torch.from_numpy(out_dst.reshape(-1)), device),
                mask=to_device(mask[:, None], device),
                mask_window=None if mask_window is None else to_device(mask_window[:, None], device),
            )
        )
    return AttentionPlan(n_tok=n_tok, buckets=tuple(buckets), n_past=n_past)


def segment_attention(q, k, v, plan: AttentionPlan, scale: float, *, windowed: bool = False):
    """Attention output ``(T, heads * head_dim)`` of flat ``q (T, H, d)``, ``k, v (plan.n_past + T, H_kv, d)``.

    Each bucket gathers its head-major grids, runs the attention with its
    mask (``windowed``: its sliding-window mask, which the plan must have)
    and scatters the real query rows back; padding query rows land in a
    spare last token row.  The first ``plan.n_past`` keys/values are cached
    states placed before the batch's own (prefix cache).
    """
    import torch.nn.functional as F

    n_tok, n_heads, hd = q.shape
    n_kv = k.shape[1]
    if k.shape != v.shape or k.shape[0] != plan.n_past + n_tok or n_tok != plan.n_tok or n_heads % n_kv:
        raise AttentionPlanError(
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do not fit a plan of {plan.n_tok} tokens"
            f" after {plan.n_past} cached keys"
        )
    out = q.new_empty((n_tok + 1) * n_heads, hd)
    q_rows = q.reshape(n_tok * n_heads, hd)
    k_rows, v_rows = k.reshape(-1, hd), v.reshape(-1, hd)
    gpu = q.device.type == "cuda"
    g_kv = n_heads if gpu else n_kv  # kv heads of the gathered grids
    with _gpu_kernels() if gpu else contextlib.nullcontext():
        for i, b in enumerate(plan.buckets):
            q_idx, k_idx, out_idx = plan.head_index(i, n_heads, n_kv, expand=gpu)
            qg = q_rows.index_select(0, q_idx).view(b.n_seg, n_heads, b.lq, hd)
            kg = k_rows.index_select(0, k_idx).view(b.n_seg, g_kv, b.lk, hd)
            vg = v_rows.index_select(0, k_idx).view(b.n_seg, g_kv, b.lk, hd)
            mask = b.mask_window if windowed else b.mask
            if mask is None:
                raise AttentionPlanError("a sliding-window layer needs a plan built with its window")
            o = F.scaled_dot_product_attention(
                qg, kg, vg, attn_mask=mask, scale=scale, enable_gqa=g_kv != n_heads
            )
            out.index_copy_(0, out_idx, o.reshape(b.n_seg * n_heads * b.lq, hd))
    return out.view(n_tok + 1, n_heads * hd)[:n_tok]


def _gpu_kernels():
    """SDPA on a GPU: the memory-efficient kernel (any mask, float32 too), math as the fallback.

    k/v are gathered per query head on a GPU (no grouped-query flag, which
    that kernel does not take).  cuDNN's attention is left out: it builds an
    execution plan for every new grid shape, and the buckets of packed rows
    take a new shape in almost every batch.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
