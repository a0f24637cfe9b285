"""A lean forward for decoders over packed rows (Llama, Qwen2, Mistral, Gemma-3).

It calls the model's own weights with the same arithmetic as transformers'
modules (:mod:`sharpbench.models.hf.lean_ops`: the same norms, rotary
embeddings from the model's own ``rotary_emb``, SDPA attention), but

* the linear layers, norms and MLP run on the real tokens only (a flat
  ``(T, hidden)`` tensor without padding); the attention runs segment by
  segment (:mod:`sharpbench.models.hf.segattn`): the context causally, each
  continuation against the context and itself, never against the other
  continuations of its row; a sliding-window layer also masks keys at
  ``window`` positions or more before their query;
* residual additions and the gate product are done in place;
* transformers' mask building, cache objects and output containers are skipped.

Architectures with anything else (attention soft-capping, bidirectional
attention, other layer kinds, Mistral's sliding window) get ``None`` from
:func:`lean_body` and the caller uses the model's own forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sharpbench.models.hf.lean_ops import Gemma3Ops, LlamaOps, gemma3_supported

_LEAN_TYPES = frozenset({"llama", "qwen2", "mistral", "gemma3_text"})


def lean_body(model: Any) -> LeanForward | None:
    """A :class:`LeanForward` for a supported model (Llama family, Gemma-3 text), else ``None``."""
    cfg = model.config
    kind = getattr(cfg, "model_type", None)
    if kind not in _LEAN_TYPES:
        return None
    if kind == "gemma3_text":
        if not gemma3_supported(model):
            return None
    else:
        if getattr(cfg, "hidden_act", None) != "silu" or getattr(cfg, "final_logit_softcapping", None):
            return None
        if any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or [])):
            return None
        if kind == "mistral" and getattr(cfg, "sliding_window", None):
            return None
        if any(hasattr(layer.self_attn, "q_norm") or hasattr(layer.self_attn, "k_norm")
               for layer in getattr(model.base_model, "layers", []) if hasattr(layer, "self_attn")):
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
        if attn is None or mlp is None:
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
        self.ops = Gemma3Ops(self.base) if model.config.model_type == "gemma3_text" else LlamaOps(self.base)
        windows = {w for w in self.ops.windows if w is not None}
        #: the sliding window of the layers that have one (one size per model), or None
        self.window: int | None = windows.pop() if windows else None
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
        return _forward(self, ids, pos, plan, keep)[0]

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
        return _forward(self, ids, pos, plan, keep, past, save)

    def logits(self, hidden):
        """Final norm + output layer on (scored) hidden states ``(N, d)`` -> float32 ``(N, vocab)``.

        float32 on a CPU with MKL: the output matrix is packed once into MKL's
        GEMM layout (cached while the weight is unchanged; one extra copy of
        it in memory) and multiplied ``PACKED_ROWS`` rows at a time.  An
        unpacked GEMM re-packs the whole (vocab x hidden) matrix on every
        call; at 128 rows the packed one measured ~25% faster on SmolLM2's
        49152 x 576 head, with bit-identical results.
        """
        h = self.ops.final_norm(hidden)
        w, b = self._head.weight, self._head.bias
        if self.linear in (_widened_linear, _cached_widened_linear):
            out = _cached_widened_linear(h, w, b)
        elif _can_pack(w):
            packed = _derived(w, "mkl-packed", lambda t: _mkl()._mkl_reorder_linear_weight(t, PACKED_ROWS))
            out = _packed_linear(h, packed, w, b)
        else:
            out = self._head(h)
        if self.ops.cap:  # final-logit soft-capping (Gemma), in the output dtype as transformers does
            import torch

            out = torch.tanh(out / self.ops.cap) * self.ops.cap
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


def _forward(lean, ids, pos, plan, keep=None, past=None, save=()):
    import torch

    from sharpbench.models.hf.segattn import segment_attention

    base, linear, ops = lean.base, lean.linear, lean.ops
    x = base.embed_tokens(ids)  # (T, d), a fresh tensor: safe to update in place
    rope = ops.rotary(x, pos)
    last = len(base.layers) - 1
    saved = [([], []) for _ in save]
    for i, layer in enumerate(base.layers):
        q, k, v = ops.qkv(layer, x, linear, *rope[i])
        if past is not None:  # cached states first: the plan's key indices below plan.n_past point there
            k, v = torch.cat((past[i][0], k)), torch.cat((past[i][1], v))
        for (sk, sv), idx in zip(saved, save):
            sk.append(k.index_select(0, idx))
            sv.append(v.index_select(0, idx))
        o = segment_attention(q, k, v, plan, layer.self_attn.scaling, windowed=ops.windows[i] is not None)
        if i == last and keep is not None:  # only the kept rows feed the output layer
            x, o = x.index_select(0, keep), o.index_select(0, keep)
        ops.attn_residual(layer, x, o, linear)
        ops.mlp_residual(layer, x, linear)
    if keep is not None and last < 0:  # no layers: nothing was selected above
        x = x.index_select(0, keep)
    return x, saved
