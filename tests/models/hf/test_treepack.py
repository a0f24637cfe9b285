"""Prefix-tree scoring: every shared prefix once, results equal to the plain path within 1e-4."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from model_helpers import make_tiny_checkpoint

from sharpbench.models.hf.prefix import PrefixKVCache, distinct_tokens
from sharpbench.models.hf.scoring import score_requests
from sharpbench.models.hf.treepack import plan_tree_passes
from sharpbench.models import load_model
from sharpbench.models.base import TokenRequest


def _requests(rng, n_groups=3, per_group=5, prefix_len=40):
    """Groups of requests sharing a long prefix; several continuations per context, some multi-token."""
    reqs = []
    for g in range(n_groups):
        prefix = tuple(int(t) for t in rng.integers(10, 3000, prefix_len))
        for _ in range(per_group):
            q = prefix + tuple(int(t) for t in rng.integers(10, 3000, int(rng.integers(1, 12))))
            for _ in range(int(rng.integers(1, 4))):
                reqs.append(TokenRequest(q, tuple(int(t) for t in rng.integers(10, 3000, int(rng.integers(1, 4))))))
    reqs.append(TokenRequest((7,), (8, 9)))  # a one-token context (like lm-eval's empty-context requests)
    return reqs


def _plan(reqs, **kw):
    ctx = list(dict.fromkeys(r.context for r in reqs))
    index = {c: i for i, c in enumerate(ctx)}
    return ctx, plan_tree_passes(ctx, [(index[r.context], r.continuation) for r in reqs], **kw)


def test_layout_scores_every_token_once_and_computes_each_prefix_once():
    reqs = _requests(np.random.default_rng(0))
    ctx, passes = _plan(reqs, max_tokens=10_000, max_rows=1000)
    assert len(passes) == 1
    p = passes[0]
    got: dict[int, list[int]] = {}
    for r, t in zip(p.score_req, p.score_tok):
        got.setdefault(r, []).append(t)
    assert got == {i: list(r.continuation) for i, r in enumerate(reqs)}
    conts = sum(len(r.continuation) - 1 for r in reqs)
    assert len(p.tokens) == distinct_tokens(ctx) + conts  # each shared prefix laid out once
    assert len(p.tokens) < sum(len(c) for c in ctx) + conts
    # every scored position that predicts a first continuation token is its context's last token
    for r, pos, tok in zip(p.score_req, p.score_pos, p.score_tok):
        if tok == reqs[r].continuation[0] and p.tokens[pos] == reqs[r].context[-1]:
            assert p.positions[pos] == len(reqs[r].context) - 1


def test_a_subtree_too_big_for_one_pass_is_cut_below_its_top_node():
    reqs = _requests(np.random.default_rng(1), n_groups=1, per_group=8, prefix_len=60)
    _, passes = _plan(reqs, max_tokens=40, max_rows=1000)
    assert len(passes) > 2
    k = next(i for i, p in enumerate(passes) if p.save)
    top = passes[k]
    assert len(top.tokens) >= 60 and not top.score_req  # the shared top node alone (no context ends there)
    assert len(top.save[0][0]) == len(top.tokens)  # ... its states saved
    assert all(p.n_past >= 60 for p in passes[k + 1 :])  # later passes read the saved prefix
    scored = sorted(r for p in passes for r in p.score_req)
    assert scored == sorted(i for i, r in enumerate(reqs) for _ in r.continuation)


@pytest.fixture(scope="module", params=["llama", "qwen2", "gemma3"])
def tiny(request, tmp_path_factory, smollm2_dir):
    path = make_tiny_checkpoint(tmp_path_factory.mktemp(request.param), smollm2_dir, kind=request.param)
    return load_model(str(path))


def _max_diff(a, b):
    assert [x.is_greedy for x in a] == [y.is_greedy for y in b]
    assert [x.n_tokens for x in a] == [y.n_tokens for y in b]
    return max(abs(x.loglik - y.loglik) for x, y in zip(a, b))


@pytest.mark.parametrize("max_tokens", [32768, 50])
def test_tree_equals_plain_path(tiny, max_tokens):
    reqs = _requests(np.random.default_rng(2))
    plain = score_requests(tiny.model, reqs, prefix_tree=False)
    tree = score_requests(tiny.model, reqs, prefix_tree=True, max_tokens=max_tokens)
    assert _max_diff(tree, plain) <= 1e-4


def test_cache_between_calls_equals_plain_path(tiny):
    reqs = sorted(_requests(np.random.default_rng(3), n_groups=2, per_group=12), key=lambda r: r.context)
    plain = score_requests(tiny.model, reqs, prefix_tree=False)
    cache = PrefixKVCache(64 << 20)
    tree = []
    for s in range(0, len(reqs), 5):  # calls that split groups: later calls reuse the cached prefix
        tree += score_requests(tiny.model, reqs[s : s + 5], prefix_tree=True, cache=cache)
    assert cache.hits > 0 and cache.reused_tokens >= 40
    assert _max_diff(tree, plain) <= 1e-4


def test_budget_too_small_computes_without_caching(tiny, caplog):
    from sharpbench.engine.runner import score_items
    from sharpbench.data.registry import get_task

    items = get_task("mmlu_anatomy", num_fewshot=2).items(limit=20)
    tiny.prefix_cache_mb = 0
    try:
        with caplog.at_level(logging.WARNING, logger="sharpbench"):
            small = list(score_items(tiny, items, batch_size=4))
            list(score_items(tiny, items, batch_size=4))
    finally:
        tiny.prefix_cache_mb = None
    notes = [r for r in caplog.records if "without caching" in r.getMessage()]
    assert len(notes) == 1  # said once per backend
    tiny.prefix_cache = False
    try:
        plain = list(score_items(tiny, items, batch_size=4))
    finally:
        tiny.prefix_cache = True
    for a, b in zip(sorted(small, key=lambda r: r.item_id), sorted(plain, key=lambda r: r.item_id)):
        assert _max_diff(a.choices, b.choices) <= 1e-4


def test_unsupported_attention_falls_back_to_the_plain_path(tmp_path, smollm2_dir, caplog):
    """Attention the lean path does not take (here Gemma with attention soft-capping): a note, then the plain path."""
    from sharpbench.data.registry import get_task
    from sharpbench.engine.runner import score_items

    gemma = load_model(str(make_tiny_checkpoint(tmp_path / "g", smollm2_dir, kind="gemma3")))
    gemma.model.config.attn_logit_softcapping = 30.0
    items = get_task("mmlu_anatomy", num_fewshot=1).items(limit=6)
    with caplog.at_level(logging.WARNING, logger="sharpbench"):
        on = list(score_items(gemma, items, batch_size=3))
    assert gemma.prefix_tree is False
    assert any("gemma3_text models run through their own forward" in r.getMessage() for r in caplog.records)
    gemma.prefix_cache = False
    off = list(score_items(gemma, items, batch_size=3))
    for a, b in zip(sorted(on, key=lambda r: r.item_id), sorted(off, key=lambda r: r.item_id)):
        assert [c.loglik for c in a.choices] == [c.loglik for c in b.choices]


@pytest.mark.slow
def test_mmlu_5shot_equals_plain_path(smollm2):
    """SmolLM2 on MMLU 5-shot (two subjects): logliks within 1e-4, identical acc/acc_norm and greedy flags."""
    from sharpbench.data.registry import get_task
    from sharpbench.engine.runner import score_items

    items = [
        it
        for s in ("college_physics", "high_school_biology")
        for it in get_task(f"mmlu_{s}", num_fewshot=5).items(limit=12)
    ]
    assert smollm2.prefix_tree
    tree = list(score_items(smollm2, items, batch_size=5))
    smollm2.prefix_cache = False
    try:
        plain = list(score_items(smollm2, items, batch_size=5))
    finally:
        smollm2.prefix_cache = True
    key = lambda r: (r.item_id, r.gold, r.metrics.get("acc"))  # noqa: E731
    # ids repeat across the two subjects: match results by their order within equal ids
    assert sorted(r.item_id for r in tree) == sorted(r.item_id for r in plain)
    by_id: dict[int, list] = {}
    for r in plain:
        by_id.setdefault(r.item_id, []).append(r)
    worst = 0.0
    for r in tree:
        cands = by_id[r.item_id]
        best = min(cands, key=lambda c: max(abs(a.loglik - b.loglik) for a, b in zip(r.choices, c.choices)))
        cands.remove(best)
        worst = max(worst, _max_diff(r.choices, best.choices))
        assert {m: r.metrics[m] for m in ("acc", "acc_norm")} == {m: best.metrics[m] for m in ("acc", "acc_norm")}
        assert r.metrics == pytest.approx(best.metrics, abs=1e-5), key(r)
    assert worst <= 1e-4


@pytest.mark.slow
def test_prompt_variant_grid_equals_plain_path(smollm2):
    """One question under many prompt variants (instructions, labels, shifts, few-shot): equal within 1e-4."""
    from sharpbench.compare.variants import Variant, build_item, mmlu_questions

    questions = mmlu_questions(3, tasks="mmlu_anatomy", max_fewshot=2)
    variants = [
        Variant(instruction=i, labels=lab, shift=s, fewshot=k)
        for i in ("plain", "expert")
        for lab in ("ABCD", "1234")
        for s in (0, 1)
        for k in (0, 2)
    ]
    items = [build_item(q, v).item for q in questions for v in variants]
    reqs = [r for it in items for r in _encode(smollm2, it)]
    plain = score_requests(smollm2.model, reqs, prefix_tree=False)
    tree = score_requests(smollm2.model, reqs, prefix_tree=True, max_rows=8, cache=PrefixKVCache(256 << 20))
    assert _max_diff(tree, plain) <= 1e-4
    ctx = [r.context for r in reqs]
    assert distinct_tokens(ctx) < 0.6 * sum(len(c) for c in set(ctx))  # the grid shares most of its text


def _encode(backend, item):
    from sharpbench.engine.requests import encode_item

    return encode_item(backend, item).requests


def test_tree_only_where_it_saves_work():
    """0-shot contexts sharing a few words take the plain path; few-shot ones and cached prefixes the tree."""
    from sharpbench.models.hf.prefix import CacheEntry
    from sharpbench.models.hf.scoring import worth_a_tree

    rng = np.random.default_rng(5)
    head = (11, 12, 13)  # "Question:" shared by every PIQA context
    zero_shot = [head + tuple(int(t) for t in rng.integers(100, 3000, 30)) for _ in range(16)]
    assert not worth_a_tree(zero_shot)
    prefix = tuple(int(t) for t in rng.integers(100, 3000, 300))
    few_shot = [prefix + tuple(int(t) for t in rng.integers(100, 3000, 40)) for _ in range(4)]
    assert worth_a_tree(few_shot)
    cache = PrefixKVCache(1 << 20)
    assert not worth_a_tree(few_shot[:1], cache)  # one context alone shares nothing ...
    cache.put(CacheEntry(prefix + (1,), [], [], 10))
    assert worth_a_tree(few_shot[:1], cache)  # ... unless the cache holds its prefix


def test_runner_keeps_longest_first_order_for_0_shot_windows():
    from sharpbench.engine.requests import EncodedItem
    from sharpbench.engine.runner import _shares_prefixes

    def enc(ctx):
        return EncodedItem(item=None, requests=(TokenRequest(ctx, (1,)),), n_truncated=0)

    rng = np.random.default_rng(6)
    assert not _shares_prefixes([enc((5, 6) + tuple(int(t) for t in rng.integers(10, 999, 20))) for _ in range(8)])
    prefix = tuple(range(100, 400))
    assert _shares_prefixes([enc(prefix + tuple(int(t) for t in rng.integers(10, 999, 20))) for _ in range(8)])


def test_a_wholly_cached_top_node_with_too_many_children_scores_from_the_cache(tiny):
    """Many contexts below a prefix the cache already holds, more than one pass takes: no empty pass."""
    rng = np.random.default_rng(7)
    prefix = tuple(int(t) for t in rng.integers(10, 3000, 40))
    reqs = [TokenRequest(prefix + tuple(int(t) for t in rng.integers(10, 3000, 5)), (int(rng.integers(10, 3000)),))
            for _ in range(12)]
    cache = PrefixKVCache(64 << 20)
    first = score_requests(tiny.model, reqs[:2], prefix_tree=True, cache=cache)  # caches a path through the prefix
    assert len(cache) == 1
    rest = score_requests(tiny.model, reqs[2:], prefix_tree=True, cache=cache, max_rows=3)
    plain = score_requests(tiny.model, reqs, prefix_tree=False)
    assert cache.hits > 0
    assert _max_diff(first + rest, plain) <= 1e-4


@pytest.mark.slow
def test_gemma3_270m_tree_equals_its_own_forward():
    """The packaged Gemma-3-270M on MMLU 5-shot (a context past its 512-token window): the prefix tree through the
    lean forward (sliding-window masks, cached prefixes) gives the logliks of the model's own forward."""
    from sharpbench.data.registry import get_task
    from sharpbench.engine.requests import encode_item
    from sharpbench.models import packaged

    try:
        path = packaged.ensure_checkpoint("gemma3-270m")
    except packaged.ModelPackageMissingError as err:  # pragma: no cover - CI installs it
        pytest.skip(str(err))
    gemma = load_model(str(path), dtype="float32")
    items = get_task("mmlu_high_school_geography", num_fewshot=5).items(limit=3)
    items += get_task("mmlu_high_school_us_history", num_fewshot=1).items(limit=1)
    reqs = [r for it in items for r in encode_item(gemma, it).requests]
    assert max(len(r.context) for r in reqs) > 512  # past the sliding window
    cache = PrefixKVCache(256 << 20)
    tree = score_requests(gemma.model, reqs[:8], prefix_tree=True, cache=cache)
    tree += score_requests(gemma.model, reqs[8:], prefix_tree=True, cache=cache)  # reads the cached exemplars
    own = score_requests(gemma.model, reqs, fast=False)
    assert cache.hits > 0
    assert _max_diff(tree, own) <= 1e-3
