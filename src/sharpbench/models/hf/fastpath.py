"""A lean forward for Llama-family decoders over packed rows (Llama, Qwen2, Mistral).

It calls the model's own weights with the same arithmetic as transformers'
modules (RMSNorm in float32, rotary embeddings from the model's own
``rotary_emb``, SDPA attention), but

* the linear layers, norms and MLP run on the real tokens only (a flat
  ``(T, hidden)`` tensor without padding); the attention runs segment by
  segment (:mod:`sharpbench.models.hf.segattn`): the context causally, each
  continuation against the context and itself, never against the other
  continuations of its row;
* residual additions and the SiLU-gate product are done in place;
* transformers' mask building, cache objects and output containers are skipped.

Architectures with anything else (sliding windows, soft-capping, q/k norms,
other activations) get ``None`` from :func:`lean_body` and the caller uses
the model's own forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_LEAN_TYPES = frozenset({"llama", "qwen2", "mistral"})


def lean_body(model: Any) -> LeanForward | None:
    """A :class:`LeanForward` for a supported Llama-family model, else ``None``."""
    cfg = model.config
    if getattr(cfg, "model_type", None) not in _LEAN_TYPES:
        return None
    if getattr(cfg, "hidden_act", None) != "silu" or getattr(cfg, "final_logit_softcapping", None):
        return None
    if any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or [])):
        return None
    if cfg.model_type == "mistral" and getattr(cfg, "sliding_window", None):
        return None
    base = model.base_model
    if not all(hasattr(base, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return None
    import torch

    for m in model.modules():  # wrapped layers (peft adapters, hooks, accelerate dispatch) act in their forward,
        if _active_hooks(m) or m._forward_pre_hooks or hasattr(m, "_hf_hook"):  # which the lean path skips
            return None
    for layer in base.layers:
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if attn is None or mlp is None or hasattr(attn, "q_norm") or hasattr(attn, "k_norm"):
            return None
        projections = [getattr(attn, a, None) for a in ("q_proj", "k_proj", "v_proj", "o_proj")]
        projections += [getattr(mlp, a, None) for a in ("gate_proj", "up_proj", "down_proj")]
        if not all(_acts_as_linear(p, torch) for p in projections):  # the lean path reads .weight directly
            return None
        if not all(hasattr(attn, a) for a in ("q_proj", "k_proj", "v_proj", "o_proj", "scaling", "head_dim")):
            return None
        if not all(hasattr(mlp, a) for a in ("gate_proj", "up_proj", "down_proj")):
            return None
    head = model.get_output_embeddings()
    if head is None or not hasattr(head, "weight"):
        return None
    return LeanForward(model)


def _active_hooks(module: Any) -> list[Any]:
    """Forward hooks that act outside a transformers forward call.

    transformers 5 installs output-capturing hooks on every layer the first
    time a caller asks for ``output_hidden_states`` (the elicitation probe
    does), and never removes them; they record only while a transformers
    forward collects outputs, so the lean path (which never does) may ignore them.
    """
    return [h for h in module._forward_hooks.values()
            if getattr(h, "__module__", "") != "transformers.utils.output_capturing"]


def _acts_as_linear(module: Any, torch: Any) -> bool:
    """``module(x)`` is ``F.linear(x, module.weight, module.bias)``: a plain Linear, or an adapter layer switched off.

    A peft LoRA layer with its adapters disabled computes its base layer
    (whose weight it exposes as ``.weight``); the in-memory backend folds
    ``W + BA`` into that weight and switches the adapter off for a call.
    """
    if type(module) is torch.nn.Linear:
        return True
    base = getattr(module, "base_layer", None)
    return type(base) is torch.nn.Linear and bool(getattr(module, "disable_adapters", False))


class LeanForward:
    """The lean forward of one model for one scoring call.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A supported model (see :func:`lean_body`).

    Notes
    -----
    bfloat16 on a CPU without native bfloat16 matrix units: oneDNN's bfloat16
    GEMM (fp32 accumulation, output rounded to bfloat16) is several times
    slower there than a float32 GEMM on the exactly widened operands followed
    by the same rounding, which computes the same products and differs only in
    summation order.  :func:`pick_linear` picks the faster of the two once per
    thread count by timing both on the model's own MLP shape (set
    ``SHARPBENCH_BF16_GEMM=native`` or ``widened`` to force one).  Both round
    the same fp32 accumulation.  The widened float32 copies of the weights
    are cached while they fit in a quarter of the free memory (else widened
    on every call).  On SmolLM2-135M the per-request logliks of
    either differ from lm-eval's bfloat16 ones by ~0.1-0.3 nats on average
    (bfloat16 rounding noise; from lm-eval float32 by ~0.21 either way).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.base = model.base_model
        self.linear = pick_linear(self.base.layers[0].mlp.gate_proj.weight)
        if self.linear is _widened_linear and _widened_copies_fit(self.base.layers):
            self.linear = _cached_widened_linear
        self._head = model.get_output_embeddings()

    @property
    def dtype(self):
        """The dtype of the model's activations."""
        return self.base.embed_tokens.weight.dtype

    def hidden(self, ids, pos, plan, keep=None):
        """Last hidden states before the final norm: ``(T, d)``, or ``(len(keep), d)``.

        ``ids``/``pos`` are flat ``(T,)`` token / position ids and ``plan`` the
        :class:`~sharpbench.models.hf.segattn.AttentionPlan` of their segments.
        With ``keep`` (a long tensor of token indices, repeats allowed) only
        those rows are returned, and the last layer runs its output
        projection and MLP on those rows only (its attention still reads
        every token's keys and values).
        """
        return _forward(self.base, self.linear, ids, pos, plan, keep)[0]

    def hidden_cached(self, ids, pos, plan, keep=None, past=None, save=()):
        """:meth:`hidden` over a prefix-tree plan that may read cached keys, and saves some.

        ``past`` is one ``(keys, values)`` pair per layer, ``(plan.n_past,
        kv_heads, head_dim)`` each: the cached prefix states the plan's key
        indices below ``plan.n_past`` refer to.  ``save`` lists key-index
        tensors (in the same key space); for each, the keys and values of
        every layer at those indices are returned, to be cached.

        Returns
        -------
        hidden : tensor
            As :meth:`hidden`.
        saved : list of (list of keys, list of values)
            One per entry of ``save``, one tensor per layer.
        """
        return _forward(self.base, self.linear, ids, pos, plan, keep, past, save)

    def logits(self, hidden):
        """Final norm + output layer on (scored) hidden states ``(N, d)`` -> float32 ``(N, vocab)``.

        float32 on a CPU with MKL: the output matrix is packed once into MKL's
        GEMM layout (cached while the weight is unchanged; one extra copy of
        it in memory) and multiplied ``PACKED_ROWS`` rows at a time.  An
        unpacked GEMM re-packs the whole (vocab x hidden) matrix on every
        call; at 128 rows the packed one measured ~25% faster on SmolLM2's
        49152 x 576 head, with bit-identical results.
        """
        h = rms_norm(hidden, self.base.norm)
        w, b = self._head.weight, self._head.bias
        if self.linear in (_widened_linear, _cached_widened_linear):
            out = _cached_widened_linear(h, w, b)
        elif _can_pack(w):
            packed = _derived(w, "mkl-packed", lambda t: _mkl()._mkl_reorder_linear_weight(t, PACKED_ROWS))
            out = _packed_linear(h, packed, w, b)
        else:
            out = self._head(h)
        return out.float()


PACKED_ROWS = 128  # rows per packed output-layer GEMM
_DERIVED: dict = {}  # (id(weight), kind) -> (weakref(weight), version, data_ptr, derived tensor)


def _mkl():
    import torch

    return torch.ops.mkl


def _can_pack(weight) -> bool:
    """MKL's packed GEMM is available for this (float32, CPU, 2D) weight."""
    import torch

    if weight.dtype != torch.float32 or weight.device.type != "cpu" or weight.dim() != 2:
        return False
    if not torch.backends.mkl.is_available():
        return False
    return hasattr(torch.ops.mkl, "_mkl_reorder_linear_weight") and hasattr(torch.ops.mkl, "_mkl_linear")


def _derived(weight, kind: str, make: Callable):
    """``make(weight)``, cached until the weight is freed or changed in place."""
    import weakref

    key = (id(weight), kind)
    hit = _DERIVED.get(key)
    if hit is not None:
        ref, version, ptr, value = hit
        if ref() is weight and version == weight._version and ptr == weight.data_ptr():
            return value
    for k in [k for k, v in _DERIVED.items() if v[0]() is None]:  # drop entries of freed weights
        del _DERIVED[k]
    value = make(weight.detach())
    _DERIVED[key] = (weakref.ref(weight), weight._version, weight.data_ptr(), value)
    return value


def _packed_linear(x, packed, w, b=None):
    """``F.linear(x, w, b)`` through MKL's packed GEMM, ``PACKED_ROWS`` rows per call.

    A last chunk of at least 3/4 of ``PACKED_ROWS`` rows is zero-padded to the
    packed size; a shorter one goes through the plain GEMM (cheaper than the
    padding).
    """
    import torch
    import torch.nn.functional as F

    mkl = _mkl()
    parts = []
    for s in range(0, x.shape[0], PACKED_ROWS):
        chunk = x[s : s + PACKED_ROWS]
        m = chunk.shape[0]
        if m < PACKED_ROWS * 3 // 4:
            parts.append(F.linear(chunk, w, b))
            continue
        if m < PACKED_ROWS:
            chunk = F.pad(chunk, (0, 0, 0, PACKED_ROWS - m))
        parts.append(mkl._mkl_linear(chunk.contiguous(), packed, w, b, PACKED_ROWS)[:m])
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _plain_linear(x, w, b=None):
    import torch.nn.functional as F

    return F.linear(x, w, b)


def _widened_linear(x, w, b=None):
    """bfloat16 linear as a float32 GEMM of the exactly widened operands, rounded back."""
    return _plain_linear(x.float(), w.float(), None if b is None else b.float()).to(x.dtype)


def _cached_widened_linear(x, w, b=None):
    """:func:`_widened_linear` with the float32 copy of ``w`` made once and cached."""
    wide = _derived(w, "widened", lambda t: t.float())
    return _plain_linear(x.float(), wide, None if b is None else b.float()).to(x.dtype)


WIDEN_CACHE_SHARE = 0.25  # cache float32 copies of the weights while they take at most this share of free RAM


def _widened_copies_fit(layers) -> bool:
    """Float32 copies of every linear weight of ``layers`` fit in ``WIDEN_CACHE_SHARE`` of free memory."""
    import os

    import torch

    need = sum(m.weight.numel() * 4 for layer in layers for m in layer.modules() if isinstance(m, torch.nn.Linear))
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return False
    return need <= WIDEN_CACHE_SHARE * free


_LINEAR_CHOICE: dict[tuple[str, int], bool] = {}


def pick_linear(weight) -> Callable:
    """``F.linear``, or :func:`_widened_linear` for CPU bfloat16 where that is measured faster."""
    import os
    import time

    import torch

    if weight.dtype != torch.bfloat16 or weight.device.type != "cpu":
        return _plain_linear
    forced = os.environ.get("SHARPBENCH_BF16_GEMM", "auto")
    if forced in ("native", "widened"):
        return _widened_linear if forced == "widened" else _plain_linear
    key = (str(weight.dtype), torch.get_num_threads())
    if key not in _LINEAR_CHOICE:
        x = torch.randn(256, weight.shape[1], dtype=weight.dtype)
        best = {}
        for name, fn in (("native", _plain_linear), ("widened", _widened_linear)):
            fn(x, weight)
            t0 = time.perf_counter()
            for _ in range(3):
                fn(x, weight)
            best[name] = time.perf_counter() - t0
        _LINEAR_CHOICE[key] = best["widened"] < 0.8 * best["native"]
    return _widened_linear if _LINEAR_CHOICE[key] else _plain_linear


def rms_norm(x, norm):
    """transformers' Llama RMSNorm: normalise in float32, cast back, then scale."""
    xf = x.float()
    y = xf * xf.pow(2).mean(-1, keepdim=True).add_(norm.variance_epsilon).rsqrt_()
    if y.dtype == x.dtype:  # float32: scale in place (the same products as ``weight * y``)
        return y.mul_(norm.weight)
    return norm.weight * y.to(x.dtype)


def _rope(x, cos, sin_signed):
    """``x * cos + rotate_half(x) * sin``, with the halves rotated by slicing.

    ``sin_signed`` is ``sin`` with its first half negated (an exact sign
    flip), so each half is ``x_half * cos + other_half * sin_signed``: the
    same products and sums as transformers' formula, bit for bit, without
    materialising ``rotate_half(x)`` (``torch.roll`` gathers, ~3x slower).
    """
    h = x.shape[-1] // 2
    out = x * cos
    out[..., :h].add_(x[..., h:] * sin_signed[..., :h])
    out[..., h:].add_(x[..., :h] * sin_signed[..., h:])
    return out


def rotary(base, x, pos):
    """``(cos, sin_signed)`` of positions ``pos`` as :func:`_rope` takes them, ``(T, 1, head_dim)`` each."""
    import torch

    cos, sin = base.rotary_emb(x, pos[None])
    cos, sin = cos[0, :, None, :], sin[0, :, None, :]
    half = sin.shape[-1] // 2
    return cos, torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


def qkv(layer, x, linear, cos, sin):
    """A decoder layer's queries, keys (both after the rotary embedding) and values of ``x``: ``(T, heads, hd)``."""
    attn = layer.self_attn
    n_tok, hd = x.shape[0], attn.head_dim
    h = rms_norm(x, layer.input_layernorm)
    q = linear(h, attn.q_proj.weight, attn.q_proj.bias).view(n_tok, -1, hd)
    k = linear(h, attn.k_proj.weight, attn.k_proj.bias).view(n_tok, -1, hd)
    v = linear(h, attn.v_proj.weight, attn.v_proj.bias).view(n_tok, -1, hd)
    return _rope(q, cos, sin), _rope(k, cos, sin), v


def mlp_residual(layer, x, linear) -> None:
    """``x += mlp(post_attention_layernorm(x))`` in place (SiLU-gated MLP)."""
    import torch.nn.functional as F

    mlp = layer.mlp
    h = rms_norm(x, layer.post_attention_layernorm)
    g = F.silu(linear(h, mlp.gate_proj.weight, mlp.gate_proj.bias), inplace=True)
    g.mul_(linear(h, mlp.up_proj.weight, mlp.up_proj.bias))
    x.add_(linear(g, mlp.down_proj.weight, mlp.down_proj.bias))


def _forward(base, linear, ids, pos, plan, keep=None, past=None, save=()):
    import torch

    from sharpbench.models.hf.segattn import segment_attention

    x = base.embed_tokens(ids)  # (T, d), a fresh tensor: safe to update in place
    cos, sin = rotary(base, x, pos)
    last = len(base.layers) - 1
    saved = [([], []) for _ in save]
    for i, layer in enumerate(base.layers):
        attn = layer.self_attn
        q, k, v = qkv(layer, x, linear, cos, sin)
        if past is not None:  # cached states first: the plan's key indices below plan.n_past point there
            k, v = torch.cat((past[i][0], k)), torch.cat((past[i][1], v))
        for (sk, sv), idx in zip(saved, save):
            sk.append(k.index_select(0, idx))
            sv.append(v.index_select(0, idx))
        o = segment_attention(q, k, v, plan, attn.scaling)
        if i == last and keep is not None:  # only the kept rows feed the output layer
            x, o = x.index_select(0, keep), o.index_select(0, keep)
        x.add_(linear(o, attn.o_proj.weight, attn.o_proj.bias))
        mlp_residual(layer, x, linear)
    if keep is not None and last < 0:  # no layers: nothing was selected above
        x = x.index_select(0, keep)
    return x, saved
