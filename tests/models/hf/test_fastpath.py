"""The lean forward (Llama family, Gemma-3) equals the model's own forward; unsupported models fall back."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import make_tiny_checkpoint, piqa_items

from sharpbench.models.hf.fastpath import lean_body
from sharpbench.engine.requests import encode_item
from sharpbench.models.hf.scoring import _score_logits, score_requests
from sharpbench.models import load_model


@pytest.fixture(scope="module", params=["llama", "qwen2", "gemma3"])
def tiny(request, tmp_path_factory, smollm2_dir):
    path = make_tiny_checkpoint(tmp_path_factory.mktemp(request.param), smollm2_dir, kind=request.param)
    return load_model(str(path))


def test_lean_path_supported_and_equal_to_model_forward(tiny):
    """Equal up to float32 summation order (the tiny random models give logliks of ~-400 nats)."""
    assert lean_body(tiny.model) is not None
    reqs = [r for it in piqa_items(8) for r in encode_item(tiny, it).requests]
    for max_rows in (1, 3, 64):
        lean = score_requests(tiny.model, reqs, max_rows=max_rows, fast=True)
        ref = score_requests(tiny.model, reqs, max_rows=max_rows, fast=False)
        np.testing.assert_allclose([r.loglik for r in lean], [r.loglik for r in ref], atol=1e-5, rtol=1e-7)
        assert [r.is_greedy for r in lean] == [r.is_greedy for r in ref]


def test_gemma3_takes_the_lean_path_unless_it_has_attention_softcapping(tmp_path, smollm2_dir):
    """Gemma-3 (sliding windows, q/k norms, soft-capped logits) is supported; attention soft-capping is not."""
    backend = load_model(str(make_tiny_checkpoint(tmp_path / "g3", smollm2_dir, kind="gemma3")))
    lean = lean_body(backend.model)
    assert lean is not None and lean.window == 6 and lean.ops.windows == (6, None) and lean.ops.cap == 5.0
    backend.model.config.attn_logit_softcapping = 30.0
    assert lean_body(backend.model) is None


def test_greedy_flag_first_index_on_ties():
    """Same rule as ``argmax(log_softmax) == target``: a tie with an earlier token is not greedy."""
    import torch

    logits = torch.tensor(
        [[0.0, 2.0, 2.0, 1.0], [0.0, 2.0, 2.0, 1.0], [3.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    )
    target = torch.tensor([1, 2, 0, 3])
    logp, greedy = _score_logits(logits, target)
    expected = logits.log_softmax(-1).argmax(-1) == target
    assert greedy.tolist() == expected.tolist() == [True, False, True, False]
    torch.testing.assert_close(logp, logits.log_softmax(-1).gather(1, target[:, None]).squeeze(1))


def test_widened_bf16_linear_rounds_like_native():
    """float32 GEMM of widened bf16 operands, rounded to bf16 = native bf16 GEMM up to summation order."""
    import torch
    import torch.nn.functional as F

    from sharpbench.models.hf.fastpath import _plain_linear, _widened_linear, pick_linear

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 96, generator=g).bfloat16()
    w = (torch.randn(80, 96, generator=g) * 0.1).bfloat16()
    b = torch.randn(80, generator=g).bfloat16()
    native, widened = F.linear(x, w, b), _widened_linear(x, w, b)
    assert widened.dtype == torch.bfloat16
    exact = F.linear(x.double(), w.double(), b.double())
    # each is within one bf16 rounding (rel. 2^-8) of the exact result, and they mostly agree bit for bit
    for out in (native, widened):
        assert bool(((out.double() - exact).abs() <= exact.abs() * 2**-8 + 1e-6).all())
    assert float((native != widened).float().mean()) < 0.01
    assert pick_linear(w.float()) is _plain_linear


def test_packed_head_equals_linear_and_follows_weight_changes():
    """MKL-packed output layer: same values as F.linear, re-packed after an in-place weight update."""
    import torch
    import torch.nn.functional as F

    from sharpbench.models.hf import fastpath

    w = torch.randn(1000, 48)
    if not fastpath._can_pack(w):
        pytest.skip("torch built without MKL")
    x = torch.randn(fastpath.PACKED_ROWS * 2 + 5, 48)
    packed = fastpath._derived(w, "mkl-packed", lambda t: torch.ops.mkl._mkl_reorder_linear_weight(t, 128))
    assert fastpath._derived(w, "mkl-packed", lambda t: 1 / 0) is packed  # cached
    torch.testing.assert_close(fastpath._packed_linear(x, packed, w), F.linear(x, w), rtol=1e-6, atol=1e-5)
    with torch.no_grad():
        w.mul_(2.0)
    packed2 = fastpath._derived(w, "mkl-packed", lambda t: torch.ops.mkl._mkl_reorder_linear_weight(t, 128))
    assert packed2 is not packed
    torch.testing.assert_close(fastpath._packed_linear(x[:7], packed2, w), F.linear(x[:7], w), rtol=1e-6, atol=1e-5)


def test_score_logits_blocks_equal_one_log_softmax():
    """Rows scored in blocks through one reused buffer: bit-identical to a single log-softmax + argmax."""
    import torch

    from sharpbench.models.hf import scoring

    g = torch.Generator().manual_seed(1)
    n = 2 * scoring._SOFTMAX_ROWS + 5  # two full blocks and a short one
    logits = torch.randn(n, 300, generator=g)
    target = torch.randint(0, 300, (n,), generator=g)
    target[::3] = logits[::3].argmax(-1)  # some greedy rows
    logits[1, 7] = logits[1, target[1]] = logits[1].max() + 1  # a tie of the target with index 7
    logp, greedy = _score_logits(logits, target)
    ref = logits.log_softmax(-1)
    assert torch.equal(logp, ref.gather(1, target[:, None]).squeeze(1))
    assert greedy.tolist() == (ref.argmax(-1) == target).tolist()
    assert 0 < int(greedy.sum()) < n


def test_cached_widened_linear_is_bit_identical_and_follows_updates():
    import torch

    from sharpbench.models.hf.fastpath import _cached_widened_linear, _widened_linear

    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 64, generator=g).bfloat16()
    w = torch.randn(48, 64, generator=g).bfloat16()
    assert torch.equal(_cached_widened_linear(x, w), _widened_linear(x, w))
    with torch.no_grad():
        w.mul_(2)  # in place: the cached float32 copy must be remade
    assert torch.equal(_cached_widened_linear(x, w), _widened_linear(x, w))


def test_rope_bit_identical_to_transformers():
    import torch
    from transformers.models.llama.modeling_llama import rotate_half

    from sharpbench.models.hf.lean_ops import _rope

    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(7, 4, 16, generator=g), torch.randn(7, 2, 16, generator=g)
    cos, sin = torch.randn(7, 1, 16, generator=g), torch.randn(7, 1, 16, generator=g)
    ref_q, ref_k = (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)  # transformers' formula
    sin_signed = torch.cat((-sin[..., :8], sin[..., 8:]), dim=-1)
    assert torch.equal(_rope(q, cos, sin_signed), ref_q)
    assert torch.equal(_rope(k, cos, sin_signed), ref_k)


def test_lean_forward_refuses_wrapped_layers(tmp_path, smollm2_dir):
    """A hook or a non-Linear projection acts in its forward, which the lean path would skip: refused."""
    import torch

    from sharpbench.models.hf.fastpath import lean_body

    model = load_model(str(make_tiny_checkpoint(tmp_path / "m", smollm2_dir))).model
    assert lean_body(model) is not None
    handle = model.model.layers[1].mlp.down_proj.register_forward_hook(lambda m, i, o: o * 2)
    assert lean_body(model) is None
    handle.remove()
    layer = model.model.layers[0].self_attn
    original = layer.q_proj
    layer.q_proj = torch.nn.Sequential(original)
    try:
        assert lean_body(model) is None
    finally:
        layer.q_proj = original
    assert lean_body(model) is not None
