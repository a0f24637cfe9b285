"""Packed shared-prefix scoring: equal to a plain per-request forward, batch-size invariant, NaN-safe."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import make_tiny_checkpoint, piqa_items

from sharpbench.engine.requests import encode_item
from sharpbench.engine.runner import score_items
from sharpbench.models.hf.scoring import pack_requests, score_requests
from sharpbench.models import load_model
from sharpbench.models.base import TokenRequest
from sharpbench.models.errors import ScoringError


def naive_scores(model, requests):
    """lm-eval's computation: one causal forward over (context + continuation)[:-1] per request."""
    import torch

    out = []
    with torch.inference_mode():
        for r in requests:
            inp = torch.tensor([list(r.context + r.continuation)[:-1]])
            logp = model(inp).logits[0].float().log_softmax(-1)[-len(r.continuation) :]
            cont = torch.tensor(r.continuation)
            ll = float(logp.gather(1, cont[:, None]).sum())
            out.append((ll, bool((logp.argmax(-1) == cont).all())))
    return out


@pytest.fixture(scope="module", params=["llama", "gemma3"])
def tiny(request, tmp_path_factory, smollm2_dir):
    path = make_tiny_checkpoint(tmp_path_factory.mktemp(request.param), smollm2_dir, kind=request.param)
    return load_model(str(path))


def test_pack_layout():
    reqs = [TokenRequest((1, 2, 3), (4, 5)), TokenRequest((1, 2, 3), (6, 7, 8)), TokenRequest((9,), (10,))]
    rows = pack_requests(reqs)
    assert len(rows) == 2
    row = rows[0]
    assert row.tokens == [1, 2, 3, 4, 6, 7]
    assert row.positions == [0, 1, 2, 3, 3, 4]
    assert row.segments == [0, 0, 0, 1, 2, 2]
    assert row.score_pos == [2, 3, 2, 4, 5]
    assert row.score_tok == [4, 5, 6, 7, 8]
    assert row.score_req == [0, 0, 1, 1, 1]
    assert rows[1].tokens == [9] and rows[1].score_pos == [0]


def test_packed_equals_naive_forward(tiny):
    """Shared-context packing (incl. Gemma-3 sliding window + soft-capping) equals separate forwards."""
    items = piqa_items(6)
    reqs = [r for it in items for r in encode_item(tiny, it).requests]
    # distinct continuation lengths and a context longer than the tiny sliding window (6)
    assert len({len(r.continuation) for r in reqs}) > 3 and min(len(r.context) for r in reqs) > 6
    ours = score_requests(tiny.model, reqs, max_rows=4)
    ref = naive_scores(tiny.model, reqs)
    np.testing.assert_allclose([o.loglik for o in ours], [r[0] for r in ref], atol=1e-4, rtol=1e-6)
    assert [o.is_greedy for o in ours] == [r[1] for r in ref]
    assert [o.n_tokens for o in ours] == [len(r.continuation) for r in reqs]


def test_greedy_flag_detects_argmax_continuation(tiny):
    """A continuation built from the model's own argmax tokens is greedy; a perturbed one is not."""
    import torch

    ctx = tuple(tiny.tok_encode("Question: what is this?\nAnswer:"))
    seq = list(ctx)
    with torch.inference_mode():
        for _ in range(3):
            seq.append(int(tiny.model(torch.tensor([seq])).logits[0, -1].argmax()))
    greedy = TokenRequest(ctx, tuple(seq[len(ctx) :]))
    other = TokenRequest(ctx, tuple(seq[len(ctx) : -1]) + ((seq[-1] + 1) % 1000,))
    res = score_requests(tiny.model, [greedy, other])
    assert res[0].is_greedy and not res[1].is_greedy


@pytest.mark.slow
def test_batch_size_invariance(smollm2):
    items = piqa_items(12)
    runs = {}
    for bs in (1, 8, 64):
        res = sorted(score_items(smollm2, items, batch_size=bs), key=lambda r: r.item_id)
        runs[bs] = res
    base = runs[1]
    for bs in (8, 64):
        assert [r.item_id for r in runs[bs]] == [r.item_id for r in base]
        for a, b in zip(runs[bs], base):
            assert {k: a.metrics[k] for k in ("acc", "acc_norm", "acc_bytes")} == {
                k: b.metrics[k] for k in ("acc", "acc_norm", "acc_bytes")
            }
            assert a.metrics["brier"] == pytest.approx(b.metrics["brier"], abs=1e-4)
            np.testing.assert_allclose(
                [c.loglik for c in a.choices], [c.loglik for c in b.choices], atol=1e-4
            )
            assert [c.is_greedy for c in a.choices] == [c.is_greedy for c in b.choices]


def test_nan_logits_error_names_item(tmp_path, smollm2_dir):
    import torch

    backend = load_model(str(make_tiny_checkpoint(tmp_path / "nan", smollm2_dir)))
    with torch.no_grad():
        backend.model.get_input_embeddings().weight.fill_(float("nan"))
    items = piqa_items(3)
    with pytest.raises(ScoringError, match=r"non-finite logits.*item\(s\) \[0, 1, 2\]"):
        list(score_items(backend, items, batch_size=4))


def test_output_layer_chunks_small_on_cpu_and_sized_by_memory_on_gpus():
    from sharpbench.models.hf import scoring

    assert scoring._head_rows("cpu", 49152) == scoring._HEAD_ROWS
    rows = scoring._head_rows("cuda", 49152)
    assert rows * 4 * 49152 <= scoring._GPU_HEAD_BYTES < (rows + 1) * 4 * 49152
    assert scoring._head_rows("cuda", 10**9) == scoring._HEAD_ROWS  # never fewer rows than on a CPU
    assert scoring._head_rows("cuda", None) == scoring._HEAD_ROWS


def test_pack_shares_common_continuation_start():
    """Continuations that start alike: their common input tokens join the context, shared entries count for all."""
    reqs = [
        TokenRequest((1, 2), (4, 5, 6)),
        TokenRequest((1, 2), (4, 5, 7, 8)),
        TokenRequest((1, 2), (4, 9)),
    ]
    (row,) = pack_requests(reqs)
    # common start of the inputs (4,5) / (4,5,7) / (4,): one token, 4
    assert row.tokens == [1, 2, 4, 5, 5, 7]
    assert row.positions == [0, 1, 2, 3, 3, 4]
    assert row.segments == [0, 0, 0, 1, 2, 2]
    entries = list(zip(row.score_pos, row.score_tok, row.score_req))
    assert len({(p, t) for p, t, _ in entries if p < 3}) == len([e for e in entries if e[0] < 3])  # no repeats
    per_req = {i: [] for i in range(3)}
    for p, t, r in entries:
        per_req[r].append((p, t))
    for e, r in zip(row.share_entry, row.share_req):
        per_req[r].append((row.score_pos[e], row.score_tok[e]))
    # every request has one scored entry per continuation token, predicted where its input ends
    assert sorted(per_req[0]) == [(1, 4), (2, 5), (3, 6)]
    assert sorted(per_req[1]) == [(1, 4), (2, 5), (4, 7), (5, 8)]
    assert sorted(per_req[2]) == [(1, 4), (2, 9)]
    # predicted in the shared part with the same target: 4@1 (requests 1, 2 reuse request 0's) and 5@2 (request 1)
    assert sorted(row.share_req) == [1, 1, 2]


def test_shared_start_equals_naive_forward(tiny):
    """Choices that differ only at their end (as PIQA's often do) score as separate forwards would."""
    ctx = tuple(tiny.tok_encode("Question: how do I open a jar?\nAnswer:"))
    base = tuple(tiny.tok_encode(" Twist the lid with a dry towel over it, then"))
    endings = [" pull.", " push hard.", " wait", ""]
    reqs = [TokenRequest(ctx, base + tuple(tiny.tok_encode(e))) for e in endings]
    reqs.append(TokenRequest(ctx, base[:3]))  # a continuation that is the others' start
    assert len(pack_requests(reqs)[0].share_req) > 0
    ours = score_requests(tiny.model, reqs, max_rows=2)
    ref = naive_scores(tiny.model, reqs)
    np.testing.assert_allclose([o.loglik for o in ours], [r[0] for r in ref], atol=1e-4, rtol=1e-6)
    assert [o.is_greedy for o in ours] == [r[1] for r in ref]
