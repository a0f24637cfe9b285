"""Generation prefill through the prefix tree: the same next-token logits, states and greedy text as plain HF."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import make_tiny_checkpoint

from sharpbench.models.hf.prefill import prefill, to_dynamic_cache
from sharpbench.models.hf.prefix import PrefixKVCache
from sharpbench.models import load_model
from sharpbench.models.errors import ScoringError


def _prompts(rng, n=6, prefix_len=50):
    prefix = [int(t) for t in rng.integers(10, 3000, prefix_len)]
    return [prefix + [int(t) for t in rng.integers(10, 3000, int(rng.integers(1, 9)))] for _ in range(n)]


@pytest.fixture(scope="module", params=["llama", "gemma3"])
def tiny(request, tmp_path_factory, smollm2_dir):
    kind = request.param
    return load_model(str(make_tiny_checkpoint(tmp_path_factory.mktemp(kind), smollm2_dir, kind=kind)))


@pytest.mark.parametrize("max_tokens", [32768, 40])
def test_prefill_equals_plain_forward(tiny, max_tokens):
    import torch

    prompts = _prompts(np.random.default_rng(0))
    prompts.append(prompts[2])  # a repeated prompt is computed once, returned twice
    states = prefill(tiny.model, prompts, max_tokens=max_tokens, cache=PrefixKVCache(1 << 26))
    with torch.inference_mode():
        for p, st in zip(prompts, states):
            out = tiny.model(torch.tensor([p]), use_cache=True)
            assert torch.allclose(st.logits, out.logits[0, -1].float(), atol=1e-4)
            ref = out.past_key_values
            for layer in range(len(st.keys)):
                k_ref = ref.layers[layer].keys[0].permute(1, 0, 2)  # a sliding-window layer keeps its last ones
                assert len(k_ref) <= len(st.keys[layer]) == len(p)
                assert torch.allclose(st.keys[layer][len(p) - len(k_ref):], k_ref, atol=1e-4)
    assert states[-1] is states[2] or states[-1].tokens == states[2].tokens


def test_prefill_refuses_what_it_cannot_do(tmp_path, smollm2_dir, tiny):
    gemma = load_model(str(make_tiny_checkpoint(tmp_path / "g", smollm2_dir, kind="gemma3")))
    gemma.model.config.attn_logit_softcapping = 30.0  # attention soft-capping: not a lean-path model
    with pytest.raises(ScoringError, match="lean forward supports"):
        prefill(gemma.model, [[1, 2, 3]])
    with pytest.raises(ScoringError, match="empty"):
        prefill(tiny.model, [[1, 2], []])


@pytest.mark.slow
def test_greedy_generation_from_the_tree_cache_equals_plain_generate(smollm2):
    """SmolLM2: few-shot prompts prefilled through the tree, then transformers' generate: identical text."""
    import torch

    from sharpbench.data.registry import get_task

    items = get_task("mmlu_anatomy", num_fewshot=3).items(limit=3)
    tok = smollm2.tokenizer
    prompts = [smollm2.tok_encode(it.requests[0].context) for it in items]
    states = prefill(smollm2.model, prompts)
    gen = dict(max_new_tokens=12, do_sample=False, pad_token_id=tok.eos_token_id)
    with torch.inference_mode():
        for p, st in zip(prompts, states):
            ids = torch.tensor([p])
            plain = smollm2.model.generate(ids, **gen)[0, len(p):]
            cached = smollm2.model.generate(ids, cache=to_dynamic_cache(smollm2.model, st), **gen)[0, len(p):]
            assert tok.decode(cached) == tok.decode(plain)
            assert int(st.logits.argmax()) == int(plain[0])
