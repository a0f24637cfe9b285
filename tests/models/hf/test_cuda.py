"""The engine on a CUDA GPU gives the CPU's scores (skipped where no GPU is present).

CI has no GPU; these run wherever one is (``pytest -m cuda`` on a GPU machine).
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import make_tiny_checkpoint, piqa_items, random_packed_rows

from sharpbench.engine.runner import score_items
from sharpbench.models.hf.scoring import _score_logits
from sharpbench.models.hf.segattn import plan_attention, segment_attention
from sharpbench.models import load_model

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _scores(backend, items, batch_size=16):
    res = sorted(score_items(backend, items, batch_size=batch_size), key=lambda r: r.item_id)
    return (
        np.array([c.loglik for r in res for c in r.choices]),
        [c.is_greedy for r in res for c in r.choices],
        [r.metrics["acc"] for r in res],
    )


@pytest.mark.parametrize("kind", ["llama", "qwen2", "gemma3"])
def test_tiny_models_score_the_same_on_gpu_and_cpu(kind, tmp_path, smollm2_dir):
    """The lean path (llama, qwen2, gemma3 with its sliding window) on both devices, float32."""
    path = str(make_tiny_checkpoint(tmp_path / kind, smollm2_dir, kind=kind))
    items = piqa_items(16)
    cpu = _scores(load_model(path, dtype="float32", device="cpu"), items)
    gpu = _scores(load_model(path, dtype="float32", device="cuda"), items)
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-5, atol=1e-4)
    assert gpu[1] == cpu[1]
    assert gpu[2] == cpu[2]


def test_smollm2_on_gpu_matches_cpu_for_every_batch_size(smollm2_dir):
    items = piqa_items(24)
    cpu = _scores(load_model(str(smollm2_dir), dtype="float32", device="cpu"), items)
    gpu_model = load_model(str(smollm2_dir), dtype="float32", device="cuda")
    for bs in (1, 8, 64):
        ll, greedy, acc = _scores(gpu_model, items, batch_size=bs)
        np.testing.assert_allclose(ll, cpu[0], rtol=1e-5, atol=1e-4)
        assert greedy == cpu[1]
        assert acc == cpu[2]


def test_gpu_greedy_flag_takes_the_first_index_on_ties():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(40, 500, generator=g)
    target = torch.randint(0, 500, (40,), generator=g)
    target[::4] = logits[::4].argmax(-1)
    logits[1, 9] = logits[1, target[1]] = logits[1].max() + 1  # target ties an earlier index: not greedy
    target[2] = 9
    logits[2, 9] = logits[2, 300] = logits[2].max() + 1  # target is the first of a tie: greedy
    lp_cpu, gr_cpu = _score_logits(logits, target)
    lp_gpu, gr_gpu = _score_logits(logits.cuda(), target.cuda())
    assert gr_gpu.cpu().tolist() == gr_cpu.tolist()
    assert not gr_cpu[1] and gr_cpu[2]
    torch.testing.assert_close(lp_gpu.cpu(), lp_cpu, rtol=1e-6, atol=1e-6)


def test_gpu_plan_has_one_bucket_per_segment_kind_and_exact_attention():
    import torch.nn.functional as F

    segments, n_tok, mask = random_packed_rows(np.random.default_rng(1), 9)
    plan = plan_attention(segments, n_tok, device="cuda")
    assert len(plan.buckets) == 2
    assert all(b.mask.device.type == "cuda" and b.lk % 16 == 0 for b in plan.buckets)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(n_tok, h, 16, generator=g) for h in (6, 2, 2))
    got = segment_attention(q.cuda(), k.cuda(), v.cuda(), plan, 0.25).cpu()
    kk, vv = k.repeat_interleave(3, 1), v.repeat_interleave(3, 1)
    ref = F.scaled_dot_product_attention(
        q.transpose(0, 1), kk.transpose(0, 1), vv.transpose(0, 1), attn_mask=torch.from_numpy(mask), scale=0.25
    )
    torch.testing.assert_close(got, ref.transpose(0, 1).reshape(n_tok, -1), rtol=1e-5, atol=1e-5)


def test_prefix_tree_and_cache_on_gpu_match_the_cpu_plain_path(smollm2_dir):
    """MMLU 5-shot through the prefix tree + cache on the GPU equals the CPU's plain path (float32)."""
    from sharpbench.data.registry import get_task

    items = get_task("mmlu_anatomy", num_fewshot=5).items(limit=24)
    gpu = load_model(str(smollm2_dir), dtype="float32", device="cuda")
    assert gpu.prefix_tree
    cpu = load_model(str(smollm2_dir), dtype="float32", device="cpu", prefix_cache=False)
    got, want = _scores(gpu, items, batch_size=8), _scores(cpu, items, batch_size=8)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-4)
    assert got[1] == want[1] and got[2] == want[2]


def test_generation_on_gpu_is_transformers_greedy_text(smollm2_dir):
    """The lean scheduler (prefix-tree prefill, slot decoding) on CUDA: transformers' greedy text, any batch size."""
    from sharpbench.data.registry import get_task
    from sharpbench.results import GenerationRequest

    gpu = load_model(str(smollm2_dir), dtype="float32", device="cuda")
    prompts = [it.prompt for it in get_task("gsm8k_cot").items(8)]
    reqs = [GenerationRequest(p, until=("Q:",), max_gen_toks=32) for p in prompts]
    with gpu.prefix_session():
        one = [g.text for g in gpu.generate(reqs, batch_size=1)]
        eight = [g.text for g in gpu.generate(reqs, batch_size=8)]
    assert eight == one
    ref = []
    for p in prompts:
        ids = torch.tensor([gpu.tok_encode(p)], device="cuda")
        out = gpu.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=32,
                                 do_sample=False, pad_token_id=gpu.tokenizer.pad_token_id)
        ref.append(gpu.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split("Q:")[0])
    assert one == ref
