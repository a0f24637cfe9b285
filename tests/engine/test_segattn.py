"""Segment-by-segment attention equals dense attention under the packed mask."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import random_packed_rows

from sharpbench.engine.segattn import (
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
