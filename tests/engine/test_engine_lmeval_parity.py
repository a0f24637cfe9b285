"""Parity with the real lm-evaluation-harness 0.4.13 HFLM on the same checkpoint.

Measured on SmolLM2-135M float32 (50 PIQA + 20 MMLU items, 180 requests):
max |delta loglik| ~5e-5 (contexts up to ~700 tokens), mean ~6e-6; the
assertion uses 1e-4.  is_greedy, acc and acc_norm must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import make_tiny_checkpoint, mmlu_items, piqa_items

from sharpbench.engine.requests import TruncationWarning, encode_item
from sharpbench.engine.runner import score_items
from sharpbench.models import load_model

pytestmark = [pytest.mark.lmeval, pytest.mark.slow]
LL_TOL = 1e-4


def lmeval_scores(lm, items):
    from lm_eval.api.instance import Instance

    insts = [
        Instance("loglikelihood", {}, (r.context, r.continuation), i)
        for it in items
        for i, r in enumerate(it.requests)
    ]
    return lm.loglikelihood(insts, disable_tqdm=True)


def lm_eval_item_metrics(lls, item):
    """lm-eval's process_results formulas, written out independently of sharpbench.metrics."""
    lls = np.asarray(lls)
    lens = np.array([float(len(c)) for c in item.choices])
    return {"acc": float(np.argmax(lls) == item.gold), "acc_norm": float(np.argmax(lls / lens) == item.gold)}


def check_parity(lm, backend, items, batch_size):
    ref = lmeval_scores(lm, items)
    results = {r.item_id: r for r in score_items(backend, items, batch_size=batch_size)}
    ours = [c for it in items for c in results[it.item_id].choices]
    assert len(ours) == len(ref)
    delta = np.abs(np.array([o.loglik for o in ours]) - np.array([r[0] for r in ref]))
    assert delta.max() <= LL_TOL, f"max |delta loglik| {delta.max():.2e}"
    assert [o.is_greedy for o in ours] == [bool(r[1]) for r in ref]
    k = 0
    for it in items:
        n = len(it.requests)
        ref_m = lm_eval_item_metrics([r[0] for r in ref[k : k + n]], it)
        got = results[it.item_id].metrics
        assert {m: got[m] for m in ref_m} == ref_m, f"item {it.item_id}"
        k += n
    return delta.max()


@pytest.fixture(scope="module")
def lm(smollm2_dir):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(smollm2_dir), dtype="float32", batch_size=16, device="cpu")


def test_tokenization_matches_lmeval(lm, smollm2):
    items = piqa_items(20) + mmlu_items("anatomy", 5)
    for it in items:
        enc = encode_item(smollm2, it)
        for r, req in zip(it.requests, enc.requests):
            ctx, cont = lm._encode_pair(r.context, r.continuation)
            assert (list(req.context), list(req.continuation)) == (ctx, cont)
    # empty context: lm-eval's prefix-token rule
    assert smollm2.prefix_token_id == lm.prefix_token_id
    assert smollm2.max_length == lm.max_length


def test_piqa_parity(lm, smollm2):
    check_parity(lm, smollm2, piqa_items(50), batch_size=16)


def test_mmlu_parity(lm, smollm2):
    items = mmlu_items("anatomy", 10) + mmlu_items("abstract_algebra", 10)
    for subject_items in (items[:10], items[10:]):  # item ids restart per subject
        check_parity(lm, smollm2, subject_items, batch_size=8)


def test_truncation_parity_and_warning(tmp_path, smollm2_dir):
    """Left truncation to max_length: same logliks as lm-eval, and one warning with the count."""
    from lm_eval.models.huggingface import HFLM

    path = make_tiny_checkpoint(tmp_path / "tiny", smollm2_dir)
    window = 40
    lm_small = HFLM(pretrained=str(path), dtype="float32", batch_size=4, device="cpu", max_length=window)
    backend = load_model(str(path), max_length=window)
    full = load_model(str(path))
    # items whose continuations fit the window (lm-eval asserts that), some of them too long overall
    items = [
        it
        for it in piqa_items(30)
        if max(len(r.continuation) for r in encode_item(full, it).requests) < window
    ]
    items = items[:8]
    lengths = [len(r.context) + len(r.continuation) for it in items for r in encode_item(full, it).requests]
    n_long = sum(n > window + 1 for n in lengths)
    assert 0 < n_long < len(lengths)
    with pytest.warns(
        TruncationWarning,
        match=rf"^{n_long} of {len(lengths)} requests exceeded the model window of {window}",
    ):
        check_parity(lm_small, backend, items, batch_size=4)
