"""The layer arithmetic of the lean forward, one class per decoder family.

:class:`LlamaOps` (Llama, Qwen2, Mistral) and :class:`Gemma3Ops` (Gemma-3
text models) compute a decoder layer the way the model's transformers
modules do (the same norms, rotary embedding, projections and activation,
in the same dtype), over flat ``(tokens, hidden)`` tensors.  The lean
forward (:mod:`sharpbench.models.hf.fastpath`), the generation prefill and
the decode step (:mod:`sharpbench.models.hf.decode`) call a layer only
through these methods:

* ``rotary(x, pos)``: per layer, ``(cos, sin_signed)`` of the positions;
* ``qkv(layer, x, linear, cos, sin)``: queries and keys after the rotary
  embedding, and values, ``(T, heads, head_dim)``;
* ``attn_residual(layer, x, o, linear)``: ``x += out_proj(o)`` (Gemma-3:
  normed first);
* ``mlp_residual(layer, x, linear)``: ``x += mlp(norm(x))`` (Gemma-3: normed
  after too);
* ``final_norm(h)``;
* ``windows``: per layer the sliding window (a key at distance ``>=
  window`` from its query is not seen), or ``None``;
* ``cap``: the final logit soft-capping, or ``None``.

``linear(x, w, b)`` is ``F.linear`` or the bfloat16 variant the lean forward
picked (see :func:`sharpbench.models.hf.fastpath.pick_linear`).
"""

from __future__ import annotations

from typing import Any


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


def _signed(cos, sin):
    """``(T, 1, head_dim)`` cos and sin with the first half of sin negated, from transformers' ``(1, T, hd)``."""
    import torch

    cos, sin = cos[0, :, None, :], sin[0, :, None, :]
    half = sin.shape[-1] // 2
    return cos, torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


def rotary(base, x, pos):
    """``(cos, sin_signed)`` of positions ``pos`` as :func:`_rope` takes them, ``(T, 1, head_dim)`` each."""
    return _signed(*base.rotary_emb(x, pos[None]))


def qkv(layer, x, linear, cos, sin):
    """A Llama layer's queries, keys (both after the rotary embedding) and values of ``x``: ``(T, heads, hd)``."""
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


class LlamaOps:
    """Llama, Qwen2 and Mistral (without sliding windows): pre-norm layers, SiLU-gated MLP."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.windows: tuple[int | None, ...] = (None,) * len(base.layers)
        self.cap: float | None = None

    def rotary(self, x, pos) -> list:
        cs = rotary(self.base, x, pos)
        return [cs] * len(self.base.layers)

    qkv = staticmethod(qkv)
    mlp_residual = staticmethod(mlp_residual)

    @staticmethod
    def attn_residual(layer, x, o, linear) -> None:
        proj = layer.self_attn.o_proj
        x.add_(linear(o, proj.weight, proj.bias))

    def final_norm(self, h):
        return rms_norm(h, self.base.norm)


class Gemma3Ops:
    """Gemma-3 text decoders.

    Differences from Llama, each computed by the model's own module where it
    is one: embeddings scaled by sqrt(hidden) (the embedding module does it),
    RMSNorms scaling by ``1 + weight`` in float32, per-head RMSNorms of queries
    and keys before the rotary embedding, norms after the attention and after
    the MLP as well as before, a GELU-gated MLP, per layer type its own rotary
    base, and sliding-window attention on the ``sliding_attention`` layers.
    """

    def __init__(self, base: Any) -> None:
        self.base = base
        cfg = base.config
        self.layer_types = list(cfg.layer_types)
        window = int(cfg.sliding_window)
        self.windows = tuple(window if t == "sliding_attention" else None for t in self.layer_types)
        self.cap = getattr(cfg, "final_logit_softcapping", None) or None

    def rotary(self, x, pos) -> list:
        by_type = {t: _signed(*self.base.rotary_emb(x, pos[None], t)) for t in set(self.layer_types)}
        return [by_type[t] for t in self.layer_types]

    @staticmethod
    def qkv(layer, x, linear, cos, sin):
        attn = layer.self_attn
        n_tok, hd = x.shape[0], attn.head_dim
        h = layer.input_layernorm(x)
        q = attn.q_norm(linear(h, attn.q_proj.weight, attn.q_proj.bias).view(n_tok, -1, hd))
        k = attn.k_norm(linear(h, attn.k_proj.weight, attn.k_proj.bias).view(n_tok, -1, hd))
        v = linear(h, attn.v_proj.weight, attn.v_proj.bias).view(n_tok, -1, hd)
        return _rope(q, cos, sin), _rope(k, cos, sin), v

    @staticmethod
    def attn_residual(layer, x, o, linear) -> None:
        proj = layer.self_attn.o_proj
        x.add_(layer.post_attention_layernorm(linear(o, proj.weight, proj.bias)))

    @staticmethod
    def mlp_residual(layer, x, linear) -> None:
        mlp = layer.mlp
        h = layer.pre_feedforward_layernorm(x)
        g = mlp.act_fn(linear(h, mlp.gate_proj.weight, mlp.gate_proj.bias))
        g.mul_(linear(h, mlp.up_proj.weight, mlp.up_proj.bias))
        x.add_(layer.post_feedforward_layernorm(linear(g, mlp.down_proj.weight, mlp.down_proj.bias)))

    def final_norm(self, h):
        return self.base.norm(h)


_GEMMA3_NORMS = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                 "post_feedforward_layernorm")


def gemma3_supported(model: Any) -> bool:
    """Whether a ``gemma3_text`` model is one :class:`Gemma3Ops` computes exactly as its modules do."""
    cfg = model.config
    if getattr(cfg, "attn_logit_softcapping", None) or getattr(cfg, "use_bidirectional_attention", False):
        return False
    if getattr(cfg, "hidden_activation", None) not in ("gelu_pytorch_tanh", "gelu"):
        return False
    types = getattr(cfg, "layer_types", None) or []
    if len(types) != cfg.num_hidden_layers or not set(types) <= {"sliding_attention", "full_attention"}:
        return False
    if "sliding_attention" in types and not getattr(cfg, "sliding_window", None):
        return False
    base = model.base_model
    for layer in base.layers:
        attn = getattr(layer, "self_attn", None)
        if attn is None or not all(hasattr(attn, a) for a in ("q_norm", "k_norm")):
            return False
        if not all(hasattr(layer, a) for a in _GEMMA3_NORMS) or not hasattr(layer.mlp, "act_fn"):
            return False
    return True
