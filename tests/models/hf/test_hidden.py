"""Hidden states at the answer position (``models/hf/hidden.py``) on the packaged SmolLM2-135M.

Reference: a plain transformers forward of each sequence alone, with
``output_hidden_states=True``, on the token ids the scoring path builds
(``engine.requests.encode_item``).  Float32 on CPU; padding and batching only
change the reduction order: 1e-4 absolute plus 1e-5 relative (float32 rounding of the few
massive-activation dimensions, |h| ~ 300).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sharpbench.data.registry import get_task
from sharpbench.data.task import Item, Request
from sharpbench.engine.requests import encode_item
from sharpbench.models.errors import CapabilityError
from sharpbench.models.hf import HFBackend
from sharpbench.models.hf.hidden import (
    answer_states,
    answer_tokens,
    default_layers,
    num_layers,
    resolve_layers,
    supports_hidden_states,
)

ATOL = 1e-4
RTOL = 1e-5  # SmolLM2 has a few massive-activation dimensions (|h| ~ 300) where 1e-4 absolute is float32 eps


@pytest.fixture(scope="module")
def arc_items():
    return get_task("arc_easy").items(limit=6)


def reference_states(model, ids_per_option, layers):
    """Per-sequence forward of the whole causal LM (no padding, no batching)."""
    out = []
    with torch.inference_mode():
        for ids in ids_per_option:
            hs = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
            out.append(np.stack([hs[k][0, -1].float().numpy() for k in layers]))
    return np.stack(out)


def test_tokens_equal_the_scoring_path(smollm2, arc_items):
    for it in arc_items:
        enc = encode_item(smollm2, it)
        assert answer_tokens(smollm2, it) == [list(r.context + r.continuation) for r in enc.requests]


def test_empty_context_gets_the_prefix_token(smollm2):
    it = Item(item_id=0, requests=(Request("", " Paris"), Request("", " Rome")), gold=0, choices=("Paris", "Rome"))
    enc = encode_item(smollm2, it)
    assert answer_tokens(smollm2, it) == [list(r.context + r.continuation) for r in enc.requests]
    assert answer_tokens(smollm2, it)[0][0] == smollm2.prefix_token_id


def test_states_equal_plain_forward(smollm2, arc_items):
    n = num_layers(smollm2)
    layers = [0, 1, n // 2, n]
    got = answer_states(smollm2, arc_items, layers=layers, batch_size=8)
    assert len(got) == len(arc_items)
    hidden = smollm2.model.config.hidden_size
    for it, states in zip(arc_items, got):
        assert states.dtype == np.float32
        assert states.shape == (len(it.requests), len(layers), hidden)
        ref = reference_states(smollm2.model, [list(r.context + r.continuation) for r in encode_item(smollm2, it).requests],
                               layers)
        np.testing.assert_allclose(states, ref, atol=ATOL, rtol=RTOL)
    # different options of an item differ (the state is at the option's own last token)
    assert np.abs(got[0][0, -1] - got[0][1, -1]).max() > 1e-2


def test_batch_size_invariance_and_default_layers(smollm2, arc_items):
    a = answer_states(smollm2, arc_items, batch_size=1)
    b = answer_states(smollm2, arc_items, batch_size=8)
    for x, y in zip(a, b):
        assert x.shape == (len(x), len(default_layers(num_layers(smollm2))), smollm2.model.config.hidden_size)
        np.testing.assert_allclose(x, y, atol=ATOL, rtol=RTOL)


def test_layer_order_and_negative_indices(smollm2, arc_items):
    n = num_layers(smollm2)
    a = answer_states(smollm2, arc_items[:2], layers=[n, 3])
    b = answer_states(smollm2, arc_items[:2], layers=[-1])
    for x, y in zip(a, b):
        np.testing.assert_allclose(x[:, :1], y, atol=ATOL, rtol=RTOL)


def test_left_truncation_to_the_window(smollm2, arc_items):
    small = HFBackend.from_model(smollm2.model, smollm2.tokenizer, max_length=12)
    it = arc_items[0]
    full = answer_tokens(smollm2, it)
    cut = answer_tokens(small, it)
    assert all(len(c) == min(12, len(f)) and c == f[-12:] for c, f in zip(cut, full))
    got = answer_states(small, [it], layers=[num_layers(small)])[0]
    np.testing.assert_allclose(got, reference_states(small.model, cut, [num_layers(small)]), atol=ATOL, rtol=RTOL)


def test_progress_counts_items(smollm2, arc_items):
    seen = []
    answer_states(smollm2, arc_items, layers=[1], batch_size=3, progress=seen.append)
    assert sum(seen) == len(arc_items)


def test_bad_layers(smollm2, arc_items):
    n = num_layers(smollm2)
    with pytest.raises(ValueError, match=rf"layer index {n + 1} out of range: the model has {n} layers"):
        answer_states(smollm2, arc_items[:1], layers=[1, n + 1])
    with pytest.raises(ValueError, match="out of range"):
        answer_states(smollm2, arc_items[:1], layers=[-(n + 2)])
    with pytest.raises(ValueError, match="empty"):
        answer_states(smollm2, arc_items[:1], layers=[])
    with pytest.raises(ValueError, match="twice"):
        answer_states(smollm2, arc_items[:1], layers=[n, -1])
    with pytest.raises(TypeError, match="integers"):
        answer_states(smollm2, arc_items[:1], layers=[1.5])
    with pytest.raises(ValueError, match="batch_size"):
        answer_states(smollm2, arc_items[:1], batch_size=0)


def test_default_layers():
    assert default_layers(30) == [1, 5, 9, 13, 18, 22, 26, 30]
    assert default_layers(4) == [1, 2, 3, 4]
    assert default_layers(1) == [1]
    for n in range(1, 80):
        d = default_layers(n)
        assert d[-1] == n and d[0] == 1 and d == sorted(set(d)) and len(d) == min(n, 8)
    assert resolve_layers(None, 30) == default_layers(30)
    with pytest.raises(ValueError):
        default_layers(0)


def test_supports_hidden_states_hf_and_servers(smollm2, smollm2_dir):
    assert supports_hidden_states(smollm2)
    assert supports_hidden_states(HFBackend.from_model(smollm2.model, smollm2.tokenizer))
    pytest.importorskip("httpx")
    from sharpbench.models.openai_api import OpenAIBackend

    server = OpenAIBackend("smollm2", base_url="http://127.0.0.1:9/v1", tokenizer=str(smollm2_dir), probe=False)
    assert not supports_hidden_states(server)
    with pytest.raises(CapabilityError, match="the openai backend exposes no hidden states"):
        answer_states(server, get_task("arc_easy").items(limit=1))


def test_generative_items_are_refused(smollm2):
    items = get_task("gsm8k_cot").items(limit=1)
    with pytest.raises(ValueError, match="multiple-choice"):
        answer_states(smollm2, items)


def test_shared_prefix_path_equals_whole_sequences(smollm2, arc_items, monkeypatch):
    from sharpbench.models.hf import hidden

    tokens = answer_tokens(smollm2, arc_items[0])
    p = hidden.shared_prefix(tokens)
    assert p >= hidden.MIN_SHARED and all(t[:p] == tokens[0][:p] for t in tokens)  # arc: the question is shared
    shared = answer_states(smollm2, arc_items, layers=[0, 7, 30], batch_size=3)  # also: options split over chunks
    monkeypatch.setattr(hidden, "MIN_SHARED", 10**9)
    whole = answer_states(smollm2, arc_items, layers=[0, 7, 30], batch_size=5)
    for x, y in zip(shared, whole):
        np.testing.assert_allclose(x, y, atol=ATOL, rtol=RTOL)


def test_shared_prefix():
    from sharpbench.models.hf.hidden import shared_prefix

    assert shared_prefix([[1, 2, 3], [1, 2, 4]]) == 2
    assert shared_prefix([[1, 2], [1, 2, 3]]) == 1  # every option keeps at least one token of its own
    assert shared_prefix([[1, 2, 3]]) == 0
    assert shared_prefix([[5, 2], [1, 2]]) == 0


@pytest.mark.parametrize("kind", ["gemma3", "qwen2"])
def test_other_architectures(kind, smollm2_dir, tmp_path_factory, arc_items):
    """Gemma-3 (sliding window 6: the shared prefix of every item is longer) and Qwen2 (biases, untied head)."""
    from model_helpers import make_tiny_checkpoint

    from sharpbench.models import load_model

    path = make_tiny_checkpoint(tmp_path_factory.mktemp(kind), smollm2_dir, kind=kind)
    backend = load_model(str(path), dtype="float32")
    assert supports_hidden_states(backend) and num_layers(backend) == 2
    items = arc_items[:4]
    got = answer_states(backend, items, layers=[0, 1, 2], batch_size=4)
    for it, states in zip(items, got):
        tokens = answer_tokens(backend, it)
        assert len(tokens[0]) > 6
        ref = reference_states(backend.model, tokens, [0, 1, 2])
        np.testing.assert_allclose(states, ref, atol=ATOL, rtol=RTOL)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_states_equal_cpu(smollm2, smollm2_dir, arc_items):
    """On a GPU (float32, GPU kernels: 1e-3) and in bfloat16 (finite float32 arrays of the same shape)."""
    from sharpbench.models import load_model

    cpu = answer_states(smollm2, arc_items, layers=[1, 15, 30])
    gpu = answer_states(load_model(str(smollm2_dir), dtype="float32", device="cuda"), arc_items, layers=[1, 15, 30])
    for x, y in zip(cpu, gpu):
        np.testing.assert_allclose(y, x, atol=1e-3, rtol=1e-3)
    bf16 = answer_states(load_model(str(smollm2_dir), dtype="bfloat16", device="cuda"), arc_items, layers=[1, 15, 30])
    assert all(b.dtype == np.float32 and b.shape == x.shape and np.isfinite(b).all() for b, x in zip(bf16, cpu))


def test_reading_hidden_states_keeps_the_lean_path(smollm2):
    """transformers leaves output-capturing hooks on the model after ``output_hidden_states``; they are inert
    outside its forward, so the lean scoring and generation paths stay available afterwards."""
    from sharpbench.models.hf.fastpath import lean_body

    model = smollm2.model
    model(input_ids=__import__("torch").tensor([[1, 2, 3]]), output_hidden_states=True)
    assert any(m._forward_hooks for m in model.modules())  # what transformers 5 leaves behind
    assert lean_body(model) is not None
