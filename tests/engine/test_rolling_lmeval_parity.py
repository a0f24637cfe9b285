"""Rolling log-likelihood (perplexity, bits per byte) against lm-eval 0.4.13's own ``HFLM.loglikelihood_rolling``.

Both sides run SmolLM2-135M in float32 with a window of 64 tokens, so the
longer text is split into several rolling windows.
"""

from __future__ import annotations

import math

import pytest

from sharpbench.data.task import RollingItem
from sharpbench.engine.rolling import rolling_metrics, rolling_windows, score_rolling

MAX_LEN = 64
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hi",
    " A text that starts with a space,\nhas two lines and ends with spaces   ",
    (
        "Perplexity is a measurement of how well a probability distribution or probability model predicts "
        "a sample. It may be used to compare probability models. A low perplexity indicates the probability "
        "distribution is good at predicting the sample. In natural language processing, perplexity is a way "
        "of evaluating language models. A language model is a probability distribution over entire sentences "
        "or texts. Using the definition of perplexity for a probability model, one might find, for example, "
        "that the average sentence x_i in the test sample could be coded in 190 bits (i.e., the test sentences "
        "had an average log-probability of -190). Schöne Grüße, naïve café ☕ — 日本語のテキスト。"
    ),
]


def test_windows_match_lmeval_utils():
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    for n in (1, 2, 5, 7, 8, 9, 16, 17, 40):
        toks = list(range(100, 100 + n))
        for max_len in (1, 2, 3, 8):
            ref = [make_disjoint_window(w) for w in get_rolling_token_windows(toks, 7, max_len, 1)]
            ours = rolling_windows(toks, 7, max_len)
            assert [(list(r.context), list(r.continuation)) for r in ours] == ref, (n, max_len)
            assert [t for r in ours for t in r.continuation] == toks


def test_rolling_item_counts():
    it = RollingItem(0, " two  words\n")
    assert (it.n_words, it.n_bytes) == (4, 12)  # lm-eval: re.split(r"\s+") counts the empty ends
    assert RollingItem(1, "é").n_bytes == 2
    assert RollingItem(0, "a").content_hash != RollingItem(0, "b").content_hash
    with pytest.raises(ValueError):
        RollingItem(0, "")


@pytest.mark.lmeval
@pytest.mark.slow
def test_rolling_loglik_parity_with_lmeval(smollm2_dir):
    from lm_eval.api.instance import Instance
    from lm_eval.api.metrics import bits_per_byte, weighted_perplexity
    from lm_eval.models.huggingface import HFLM

    from sharpbench.models import load_model

    lm = HFLM(pretrained=str(smollm2_dir), dtype="float32", batch_size=1, device="cpu", max_length=MAX_LEN)
    insts = [Instance("loglikelihood_rolling", {}, (t,), i) for i, t in enumerate(TEXTS)]
    ref = lm.loglikelihood_rolling(insts, disable_tqdm=True)
    n_windows = len(rolling_windows(lm.tok_encode(TEXTS[-1]), lm.prefix_token_id, MAX_LEN))
    assert n_windows >= 3

    ours_lm = load_model(str(smollm2_dir), dtype="float32", max_length=MAX_LEN)
    items = [RollingItem(i, t) for i, t in enumerate(TEXTS)]
    results = sorted(score_rolling(ours_lm, items, batch_size=2), key=lambda r: r.item_id)
    assert [r.item_id for r in results] == list(range(len(TEXTS)))
    for r, want in zip(results, ref, strict=True):
        assert r.metrics["loglik"] == pytest.approx(want, abs=1e-4)
        assert r.choices[0].n_tokens == len(lm.tok_encode(TEXTS[r.item_id]))

    agg = rolling_metrics(results)
    words = [(ll, len(__import__("re").split(r"\s+", t))) for ll, t in zip(ref, TEXTS, strict=True)]
    nbytes = [(ll, len(t.encode("utf-8"))) for ll, t in zip(ref, TEXTS, strict=True)]
    assert agg["word_perplexity"][0] == pytest.approx(weighted_perplexity(words), rel=1e-6)
    assert agg["byte_perplexity"][0] == pytest.approx(weighted_perplexity(nbytes), rel=1e-6)
    assert agg["bits_per_byte"][0] == pytest.approx(bits_per_byte(nbytes), rel=1e-6)
    assert math.isnan(agg["bits_per_byte"][1])
