"""Segment-by-segment attention equals dense attention under the packed mask."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import random_packed_rows

from sharpbench.models.hf.segattn import (
    AttentionPlanError,
    _partition,
    plan_attention,
    segment_attention,
)


@pytest.mark.parametrize("n_heads,n_kv", [(4, 4), (6, 2)])
def test_segment_attention_equals_dense_masked_attention(n_heads, n_kv):
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    segments, n_tok, mask = random_packed_rows(rng, 7)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(n_tok, n_heads, 16, generator=g)
    k = torch.randn(n_tok, n_kv, 16, generator=g)
    v = torch.randn(n_tok, n_kv, 16, generator=g)
    plan = plan_attention(segments, n_tok)
    assert len(plan.buckets) >= 2
    got = segment_attention(q, k, v, plan, 0.25)
    kk = k.repeat_interleave(n_heads // n_kv, 1)
    vv = v.repeat_interleave(n_heads // n_kv, 1)
    ref = F.scaled_dot_product_attention(
        q.transpose(0, 1), kk.transpose(0, 1), vv.transpose(0, 1), attn_mask=torch.from_numpy(mask), scale=0.25
    )
    torch.testing.assert_close(got, ref.transpose(0, 1).reshape(n_tok, -1), rtol=1e-5, atol=1e-5)
    # far fewer score entries than a dense grid of the rows
    assert plan.padded_scores() < mask.shape[0] ** 2 / 4


def test_partition_splits_unequal_segments_only():
    big, small = np.array([200, 200, 4, 4]), np.array([220, 220, 10, 10])
    groups = _partition(big, small)
    assert sorted(sorted(g.tolist()) for g in groups) == [[0, 1], [2, 3]]
    same = _partition(np.array([5, 5, 5]), np.array([30, 30, 30]))
    assert len(same) == 1


def test_plan_rejects_bad_segments():
    with pytest.raises(AttentionPlanError, match="exactly once"):
        plan_attention([(0, 0, 0, 3), (0, 3, 2, 2)], 4)
    with pytest.raises(AttentionPlanError, match=">= 1"):
        plan_attention([(0, 0, 0, 0)], 1)
    with pytest.raises(AttentionPlanError, match="past"):
        plan_attention([(0, 0, 0, 5)], 3)


def test_accelerator_plan_has_one_bucket_per_segment_kind_with_keys_padded_to_16():
    """The plan built for a non-CPU device (``meta`` stands in for a GPU here: shapes only)."""
    segments, n_tok, _ = random_packed_rows(np.random.default_rng(2), 9)
    cpu = plan_attention(segments, n_tok)
    acc = plan_attention(segments, n_tok, device="meta")
    assert len(cpu.buckets) > 2 and len(acc.buckets) == 2
    ctx, cont = acc.buckets
    n_ctx = sum(1 for s in segments if s[1] == 0)
    assert (ctx.n_seg, cont.n_seg) == (n_ctx, len(segments) - n_ctx)
    assert ctx.lq == max(s[3] for s in segments if s[1] == 0)
    assert cont.lk % 16 == 0 and cont.lk >= max(s[1] + s[3] for s in segments if s[1] > 0)
    assert all(b.mask.device.type == "meta" for b in acc.buckets)


def test_expanded_head_index_gathers_the_grouped_kv_head_of_every_query_head():
    """``expand=True`` (used on GPUs) reads kv head h // (H / H_kv) for query head h, as GQA does."""
    import torch
    import torch.nn.functional as F

    segments, n_tok, mask = random_packed_rows(np.random.default_rng(3), 5)
    plan = plan_attention(segments, n_tok)
    n_heads, n_kv, hd = 6, 2, 8
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(n_tok, h, hd, generator=g) for h in (n_heads, n_kv, n_kv))
    out = torch.zeros((n_tok + 1) * n_heads, hd)
    for i, b in enumerate(plan.buckets):
        q_idx, k_idx, out_idx = plan.head_index(i, n_heads, n_kv, expand=True)
        qg = q.reshape(-1, hd).index_select(0, q_idx).view(b.n_seg, n_heads, b.lq, hd)
        kg = k.reshape(-1, hd).index_select(0, k_idx).view(b.n_seg, n_heads, b.lk, hd)
        vg = v.reshape(-1, hd).index_select(0, k_idx).view(b.n_seg, n_heads, b.lk, hd)
        o = F.scaled_dot_product_attention(qg, kg, vg, attn_mask=b.mask, scale=0.3)
        out.index_copy_(0, out_idx, o.reshape(-1, hd))
    got = out.view(n_tok + 1, n_heads * hd)[:n_tok]
    torch.testing.assert_close(got, segment_attention(q, k, v, plan, 0.3), rtol=1e-5, atol=1e-5)
    kk, vv = k.repeat_interleave(3, 1), v.repeat_interleave(3, 1)
    ref = F.scaled_dot_product_attention(
        q.transpose(0, 1), kk.transpose(0, 1), vv.transpose(0, 1), attn_mask=torch.from_numpy(mask), scale=0.3
    )
    torch.testing.assert_close(got, ref.transpose(0, 1).reshape(n_tok, -1), rtol=1e-5, atol=1e-5)
