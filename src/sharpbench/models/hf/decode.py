"""One decoding step for many sequences at once, each attending to its own key/value slot.

The generation scheduler (:mod:`sharpbench.models.hf.generate`) keeps the
key/value states of the sequences being decoded in one buffer per layer
(keys ``(slots, kv_heads, head_dim, capacity)``, values ``(slots, kv_heads, capacity, head_dim)``), with the active sequences in the
first rows (a finished sequence's row is refilled by a waiting prompt or by
the last active row, so the active rows stay a prefix and need no gather).
:func:`decode_step` feeds one new token per active sequence through the
lean forward's own arithmetic (:mod:`sharpbench.models.hf.fastpath`: the
same norms, rotary embedding and projections as transformers' modules),
writes its key and value into the sequence's row at its position, and
attends over that row up to the longest active sequence, masking each
row's unused tail (and, in a sliding-window layer, the keys ``window`` or
more positions before the new token).  The projections and MLP run on the
active rows only: no compute on finished sequences or padding tokens.
"""

from __future__ import annotations

from typing import Any

from sharpbench.models.hf.fastpath import LeanForward


def slot_bytes(lean: LeanForward, capacity: int) -> int:
    """Bytes of one sequence's key/value slot of ``capacity`` positions (every layer, keys and values)."""
    attn = lean.base.layers[0].self_attn
    n_kv = attn.k_proj.weight.shape[0] // attn.head_dim
    itemsize = lean.base.embed_tokens.weight.element_size()
    return 2 * len(lean.base.layers) * n_kv * attn.head_dim * capacity * itemsize


class SlotCache:
    """Key/value buffers of ``n_slots`` sequences of up to ``capacity`` positions each, after a shared prefix.

    Parameters
    ----------
    lean : LeanForward
        The model whose layers the buffers serve.
    n_slots, capacity : int
        Rows and positions per row (positions after the shared prefix).
    device : str
    shared : (list of keys, list of values), optional
        The states of a prefix every sequence starts with (per layer
        ``(P, kv_heads, head_dim)``), kept once: each row holds only the
        positions after it, and every query attends to the shared keys in one
        matrix product for all rows (the 8 exemplars of gsm8k_cot are read once
        per step, not once per sequence).
    """

    def __init__(self, lean: LeanForward, n_slots: int, capacity: int, device: Any, shared=None) -> None:
        import torch

        layers = lean.base.layers
        attn = layers[0].self_attn
        n_kv = attn.k_proj.weight.shape[0] // attn.head_dim
        self.offset = 0
        self.shared_keys: list[Any] = []
        self.shared_values: list[Any] = []
        if shared is not None:
            ks, vs = shared
            self.offset = int(ks[0].shape[0])
            self.shared_keys = [k.permute(1, 2, 0).contiguous() for k in ks]  # (kv, hd, P)
            self.shared_values = [v.transpose(0, 1).contiguous() for v in vs]  # (kv, P, hd)
        # keys transposed (positions last), values not: both products then read the buffers in place
        self.keys = [torch.zeros((n_slots, n_kv, attn.head_dim, capacity), dtype=lean.dtype, device=device)
                     for _ in layers]
        self.values = [torch.zeros((n_slots, n_kv, capacity, attn.head_dim), dtype=lean.dtype, device=device)
                       for _ in layers]
        self.lengths = [0] * n_slots
        self.n_slots, self.capacity = n_slots, capacity

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))

    def load(self, slot: int, keys: list[Any], values: list[Any]) -> None:
        """Put a prefilled sequence's states (per layer ``(n, kv_heads, head_dim)``, the shared prefix first) into ``slot``."""
        p = self.offset
        keys, values = [k[p:] for k in keys], [v[p:] for v in values]
        n = keys[0].shape[0]
        if n > self.capacity:
            raise ValueError(f"{n} positions do not fit a slot of {self.capacity}")
        for layer, (k, v) in enumerate(zip(keys, values)):
            self.keys[layer][slot, :, :, :n] = k.permute(1, 2, 0)
            self.values[layer][slot, :, :n] = v.transpose(0, 1)
        self.lengths[slot] = n

    def move(self, src: int, dst: int) -> None:
        """Copy row ``src`` into row ``dst`` (compacting the active rows)."""
        n = self.lengths[src]
        for buf in self.keys:
            buf[dst, :, :, :n] = buf[src, :, :, :n]
        for buf in self.values:
            buf[dst, :, :n] = buf[src, :, :n]
        self.lengths[dst] = n


def decode_step(lean: LeanForward, cache: SlotCache, ids: Any, n_active: int) -> Any:
    """Next-token logits of the first ``n_active`` slots after feeding one token each.

    Parameters
    ----------
    lean : LeanForward
    cache : SlotCache
        Row ``b < n_active`` holds ``cache.lengths[b]`` positions; the new
        token of row ``b`` goes to position ``cache.lengths[b]`` (which is
        then incremented).
    ids : long tensor (n_active,)
        The tokens to feed.

    Returns
    -------
    tensor (n_active, vocab)
        float32 logits.
    """
    import torch

    if ids.shape != (n_active,):
        raise ValueError(f"ids must have shape ({n_active},), got {tuple(ids.shape)}")
    base, linear, ops = lean.base, lean.linear, lean.ops
    lengths = cache.lengths[:n_active]
    if max(lengths) >= cache.capacity:
        raise ValueError(f"a sequence would exceed its slot of {cache.capacity} positions")
    device = ids.device
    pos = torch.tensor(lengths, dtype=torch.long, device=device)  # index in the row
    span = max(lengths) + 1
    rows = torch.arange(n_active, device=device)
    own = torch.arange(span, device=device)[None, :]
    past_end = own > pos[:, None]  # (B, span): past a row's own end
    neg = _additive(past_end)  # (B, 1, 1, span)
    neg_window = shared_window = None
    if lean.window is not None:  # keys at `window` or more positions before the new token (row j: offset + j)
        neg_window = _additive(past_end | (own <= pos[:, None] - lean.window))
        if cache.offset:
            pre = torch.arange(cache.offset, device=device)[None, :]
            shared_window = _additive(pre <= (pos + cache.offset)[:, None] - lean.window)
    x = base.embed_tokens(ids)  # (B, d)
    rope = ops.rotary(x, pos + cache.offset)  # positions in the sequence
    for i, layer in enumerate(base.layers):
        attn = layer.self_attn
        q, k, v = ops.qkv(layer, x, linear, *rope[i])
        kb, vb = cache.keys[i], cache.values[i]
        kb[rows, :, :, pos] = k
        vb[rows, :, pos] = v
        windowed = ops.windows[i] is not None
        shared = None
        if cache.offset:
            shared = (cache.shared_keys[i], cache.shared_values[i], shared_window if windowed else None)
        o = _attend(q, kb[:n_active, :, :, :span], vb[:n_active, :, :span], neg_window if windowed else neg,
                    attn.scaling, shared)
        ops.attn_residual(layer, x, o, linear)
        ops.mlp_residual(layer, x, linear)
    for b in range(n_active):
        cache.lengths[b] += 1
    return lean.logits(x)


def _additive(hidden):
    """``(B, L)`` booleans (True: not seen) as an additive float32 mask ``(B, 1, 1, L)`` of 0 / -inf."""
    import torch

    neg = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device).masked_fill_(hidden, float("-inf"))
    return neg[:, None, None, :]


def _attend(q, kt, v, neg, scale: float, shared=None):
    """Attention of one query per row over that row's keys: ``q (B, H, hd)``, ``kt (B, KV, hd, L)``, ``v (B, KV, L, hd)``.

    With ``shared = (ks (KV, hd, P), vs (KV, P, hd), neg_shared)`` every row
    also attends to the shared prefix's keys, placed before its own (one
    softmax over both); the shared part is one matrix product for all rows'
    queries.  ``neg_shared`` (``(B, 1, 1, P)`` additive, or None) hides
    shared keys from some rows (a sliding window).
    Grouped-query heads share their key/value head without copying it
    (queries viewed as ``(B, KV, H/KV, hd)``); scores and softmax in float32.
    Returns ``(B, H*hd)``.
    """
    import torch

    n, h, hd = q.shape
    kv = kt.shape[1]
    g = h // kv
    qg = q.view(n, kv, g, hd)
    own = torch.matmul(qg, kt).float().mul_(scale).add_(neg)  # (B, KV, G, L)
    if shared is None:
        p = own.softmax(-1).to(v.dtype)
        return torch.matmul(p, v).reshape(n, h * hd)
    ks, vs, neg_shared = shared
    qs = qg.permute(1, 0, 2, 3).reshape(kv, n * g, hd)  # every row's queries of a key/value head together
    pre = torch.matmul(qs, ks).float().mul_(scale).view(kv, n, g, -1).permute(1, 0, 2, 3)  # (B, KV, G, P)
    if neg_shared is not None:
        pre = pre + neg_shared
    p = torch.cat((pre, own), dim=-1).softmax(-1).to(v.dtype)
    n_pre = ks.shape[-1]
    p_pre = p[..., :n_pre].permute(1, 0, 2, 3).reshape(kv, n * g, n_pre)
    out = torch.matmul(p_pre, vs).view(kv, n, g, hd).permute(1, 0, 2, 3)
    out = out + torch.matmul(p[..., n_pre:], v)
    return out.reshape(n, h * hd)
