"""The in-process llama.cpp backend on the packaged SmolLM2 GGUF, against the hf backend on the same weights.

Tolerance: llama.cpp multiplies the Q4_1 weights with 8-bit quantized
activations, the hf backend uses the dequantized weights in float32; per-item
accuracy must agree on >= 90% of 100 PIQA items and per-choice logliks within
a mean of 0.6 nats (measured figures in the README).
"""

from __future__ import annotations

import os
import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from sharpbench.data.registry import resolve_tasks  # noqa: E402
from sharpbench.engine.runner import score_items  # noqa: E402
from sharpbench.models import TokenRequest, load_model  # noqa: E402
from sharpbench.models.errors import UnknownModelError  # noqa: E402

TEST_THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2  # one core per xdist worker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llamacpp():
    return load_model("smollm2-135m", backend="llamacpp", n_threads=TEST_THREADS)


@pytest.fixture(scope="module")
def hf():
    return load_model("smollm2-135m")


def test_tokenization_matches_hf(llamacpp, hf):
    items = resolve_tasks("piqa")[0].items(limit=30) + resolve_tasks("arc_easy")[0].items(limit=30)
    texts = [s for it in items for r in it.requests for s in (r.context, r.continuation)]
    for text in texts:
        assert llamacpp.tok_encode(text) == hf.tok_encode(text)
        assert llamacpp.tok_encode(text, add_special_tokens=False) == hf.tok_encode(text, add_special_tokens=False)
    assert llamacpp.prefix_token_id == hf.prefix_token_id


def test_per_item_accuracy_agrees_with_hf(llamacpp, hf):
    items = resolve_tasks("piqa")[0].items(limit=100)
    # results come a batch at a time in each backend's own order (tree or longest first): match by item id
    a = sorted(score_items(llamacpp, items), key=lambda r: r.item_id)
    b = sorted(score_items(hf, items), key=lambda r: r.item_id)
    agree = np.mean([x.metrics["acc"] == y.metrics["acc"] for x, y in zip(a, b)])
    diffs = [abs(p.loglik - q.loglik) for x, y in zip(a, b) for p, q in zip(x.choices, y.choices)]
    print(f"llamacpp vs hf on 100 PIQA items: acc agreement {agree:.3f}, mean |dloglik| {np.mean(diffs):.3f}")
    assert agree >= 0.90
    assert np.mean(diffs) < 0.6
    assert np.mean([x.metrics["acc"] for x in a]) > 0.55


def test_shared_context_and_order_do_not_change_scores(llamacpp):
    items = resolve_tasks("arc_easy")[0].items(limit=6)
    reqs = []
    for it in items:
        ctx = tuple(llamacpp.tok_encode(it.requests[0].context))
        reqs += [TokenRequest(ctx, tuple(llamacpp.tok_encode(r.continuation, add_special_tokens=False)))
                 for r in it.requests]
    together = llamacpp.loglikelihood(reqs)
    alone = [llamacpp.loglikelihood([r])[0] for r in reversed(reqs)][::-1]
    for x, y in zip(together, alone):
        assert x.loglik == pytest.approx(y.loglik, abs=2e-3)
        assert x.n_tokens == y.n_tokens


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="does not apply"):
        load_model("smollm2-135m", backend="llamacpp", dtype="bfloat16")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(UnknownModelError, match="gguf"):
        load_model(str(tmp_path / "weights.bin"), backend="llamacpp")
    with pytest.raises(UnknownModelError, match="0 .gguf"):
        load_model(str(tmp_path), backend="llamacpp")
