"""The prefix tree over token contexts and the prefix key/value cache (pure Python)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sharpbench.models.hf.prefix import (
    CacheEntry,
    PrefixKVCache,
    build_tree,
    common_prefix_len,
    distinct_tokens,
)


def _naive_lcp(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _paths(root):
    """Context index -> tokens, read back from the tree; checks depths on the way."""
    out = {}

    def rec(node, above):
        assert node.depth == len(above)
        path = above + node.tokens
        for e in node.ends:
            assert e not in out
            out[e] = path
        keys = [c.tokens for c in node.children]
        assert keys == sorted(keys)
        for c in node.children:
            assert c.tokens, "only the root has no tokens"
            rec(c, path)

    rec(root, ())
    return out


def test_common_prefix_len_matches_naive():
    rng = random.Random(1)
    for _ in range(500):
        a = tuple(rng.randrange(3) for _ in range(rng.randrange(0, 40)))
        b = a[: rng.randrange(0, len(a) + 1)] + tuple(rng.randrange(3) for _ in range(rng.randrange(0, 5)))
        assert common_prefix_len(a, b) == _naive_lcp(a, b)


@pytest.mark.parametrize("min_shared", [1, 2, 5])
def test_tree_holds_every_context_once(min_shared):
    rng = random.Random(min_shared)
    for _ in range(200):
        shared = [rng.randrange(4) for _ in range(rng.randrange(0, 8))]
        ctx = list({tuple(shared + [rng.randrange(3) for _ in range(rng.randrange(1, 7))]) for _ in range(10)})
        root = build_tree(ctx, min_shared=min_shared)
        assert _paths(root) == dict(enumerate(ctx))
        if min_shared == 1:  # a radix tree: children of a node start with distinct tokens
            for node in root.walk():
                firsts = [c.tokens[0] for c in node.children]
                assert len(firsts) == len(set(firsts))
            assert root.subtree_tokens() <= sum(len(c) for c in ctx)


def test_shared_prefix_is_one_node():
    p = tuple(range(100, 120))
    ctx = [p + (1, 2), p + (1, 3), p + (4,)]
    root = build_tree(ctx)
    (top,) = root.children
    assert top.tokens == p and top.depth == 0 and top.ends == []
    assert [c.tokens for c in top.children] == [(1,), (4,)]
    assert distinct_tokens(ctx) == 20 + 1 + 1 + 1 + 1
    # a context that is a prefix of another ends at an inner node
    root = build_tree([p, p + (5,)])
    assert root.children[0].ends == [0] and root.children[0].children[0].ends == [1]


def test_short_shared_prefix_is_copied_into_children():
    ctx = [(7, 8, 1, 1, 1), (7, 8, 2, 2, 2)]
    root = build_tree(ctx, min_shared=3)  # (7, 8) is too short to be worth a segment
    assert sorted(c.tokens for c in root.children) == sorted(ctx)
    assert _paths(root) == dict(enumerate(ctx))


def test_bad_contexts():
    with pytest.raises(ValueError, match="empty"):
        build_tree([(1,), ()])
    with pytest.raises(ValueError, match="twice"):
        build_tree([(1, 2), (1, 2)])


def _entry(tokens, nbytes):
    return CacheEntry(tuple(tokens), [], [], nbytes)


def test_cache_matches_longest_prefix_and_evicts_lru():
    cache = PrefixKVCache(100, min_reuse=2)
    cache.put(_entry(range(10), 40))
    cache.put(_entry([0, 1, 2, 9, 9], 40))
    entry, n = cache.match(tuple(range(6)) + (7,))
    assert entry.tokens == tuple(range(10)) and n == 6
    entry, n = cache.match((0, 1, 2, 9, 5))
    assert entry.tokens == (0, 1, 2, 9, 9) and n == 4
    assert cache.match((5, 5)) == (None, 0)
    assert cache.match((0, 7)) == (None, 0)  # a 1-token match is below min_reuse
    # range(10) is now least recently used: a third entry evicts it
    cache.put(_entry([3, 3, 3], 40))
    assert len(cache) == 2 and cache.nbytes == 80
    entry, n = cache.match(tuple(range(10)))
    assert entry.tokens == (0, 1, 2, 9, 9) and n == 3


def test_cache_skips_an_entry_larger_than_the_budget():
    cache = PrefixKVCache(10)
    assert not cache.put(_entry(range(50), 11))
    assert cache.skipped == 1 and len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(ValueError):
        PrefixKVCache(-1)


def test_distinct_tokens_counts_shared_prefix_once():
    rng = np.random.default_rng(0)
    prefix = tuple(int(t) for t in rng.integers(0, 1000, 300))
    ctx = [prefix + tuple(int(t) for t in rng.integers(1000, 2000, 20)) for _ in range(10)]
    assert distinct_tokens(ctx) == 300 + 10 * 20
    assert distinct_tokens(ctx + ctx[:3]) == 300 + 10 * 20  # repeated contexts count once


def test_cache_keeps_at_most_max_entries():
    cache = PrefixKVCache(1 << 20, max_entries=3)
    for i in range(5):
        cache.put(_entry([i] * 20, 10))
    assert len(cache) == 3 and cache.nbytes == 30
    assert cache.match([0] * 20) == (None, 0) and cache.match([4] * 20)[1] == 20
