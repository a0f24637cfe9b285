"""A prefix tree (radix tree) over the token contexts of an evaluation's requests.

Few-shot prompts repeat the same long prefix before every question (MMLU
5-shot: the subject line and five solved examples, ~700 tokens, before a
~100-token question).  Laid into a radix tree, every shared prefix is one
node, computed once; each question continues from its parent node::

    contexts      P q1 | P q2 | P q3          (P: the shared few-shot prefix)
    tree          P ── q1
                    ├─ q2
                    └─ q3

This module is pure Python on token tuples (no torch): :func:`build_tree`
builds the tree, :func:`distinct_tokens` counts the work it leaves.  The
scorer (:mod:`sharpbench.models.hf.scoring`) lays a tree out as attention
segments and keeps the key/value states of long prefixes between backend
calls in a :class:`PrefixKVCache`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Tokens = tuple[int, ...]


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences.

    Binary search on slice equality (each comparison runs in C), so two
    800-token contexts cost ~10 slice comparisons instead of 800 Python steps.
    """
    a, b = tuple(a), tuple(b)
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while lo < hi:  # invariant: a[:lo] == b[:lo], a[:hi+1] != b[:hi+1] once hi shrinks
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(eq=False)
class PrefixNode:
    """A run of tokens shared by every context below it.

    Attributes
    ----------
    depth : int
        Tokens above this node: its first token sits at position ``depth``.
    tokens : tuple of int
        The node's own tokens (empty for the root only).
    children : list of PrefixNode
        In lexicographic order of their tokens.
    ends : list of int
        Indices (into the contexts given to :func:`build_tree`) of the
        contexts that end exactly at this node's last token.
    """

    depth: int
    tokens: Tokens
    children: list[PrefixNode] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    @property
    def end(self) -> int:
        """Position after the node's last token (its path length)."""
        return self.depth + len(self.tokens)

    def walk(self):
        """Nodes of the subtree in depth-first (pre-)order, this node first."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def subtree_tokens(self) -> int:
        """Tokens of all nodes in the subtree (each shared prefix counted once)."""
        return sum(len(n.tokens) for n in self.walk())


def build_tree(contexts: Sequence[Sequence[int]], *, min_shared: int = 1) -> PrefixNode:
    """The radix tree of ``contexts`` (the root has no tokens).

    Parameters
    ----------
    contexts : sequence of token sequences
        Non-empty, pairwise distinct.
    min_shared : int
        A shared node shorter than this (and where no context ends) is not
        worth its own attention segment: its tokens are copied into each
        child instead (recomputed per child, as without a tree).

    Returns
    -------
    PrefixNode
        The root; every context ends at the last token of exactly one node
        (``node.ends``), and the children of each node are sorted.

    Raises
    ------
    ValueError
        If a context is empty or two contexts are equal.
    """
    ctx = [tuple(int(t) for t in c) for c in contexts]
    order = sorted(range(len(ctx)), key=ctx.__getitem__)
    root = PrefixNode(0, ())
    path: list[PrefixNode] = [root]  # root ... node where the previous context ended
    prev: Tokens = ()
    for i in order:
        s = ctx[i]
        if not s:
            raise ValueError(f"context {i} is empty")
        lcp = common_prefix_len(prev, s)
        if lcp == len(s):
            raise ValueError(f"context {i} appears twice")
        while path[-1].depth >= lcp and len(path) > 1:  # nodes that start at or after the split point
            path.pop()
        top = path[-1]
        if top.end > lcp:  # the split point falls inside ``top``: cut it in two
            lower = PrefixNode(lcp, top.tokens[lcp - top.depth :], top.children, top.ends)
            top.tokens, top.children, top.ends = top.tokens[: lcp - top.depth], [lower], []
        leaf = PrefixNode(lcp, s[lcp:], ends=[i])
        top.children.append(leaf)
        path.append(leaf)
        prev = s
    if min_shared > 1:
        _inline_short(root, min_shared)
    return root


def _inline_short(root: PrefixNode, min_shared: int) -> None:
    """Copy short shared nodes (no context ending there) into their children."""
    stack = [root]
    while stack:
        node = stack.pop()
        pending, kept = list(node.children), []
        while pending:
            child = pending.pop()
            if len(child.tokens) < min_shared and not child.ends and child.children:
                for grand in child.children:
                    grand.tokens = child.tokens + grand.tokens
                    grand.depth = child.depth
                pending.extend(child.children)
            else:
                kept.append(child)
        node.children = sorted(kept, key=lambda n: n.tokens)
        stack.extend(node.children)


MIN_SHARED = 16  # shorter shared prefixes are recomputed per child (an extra segment costs more)
MIN_TREE_SAVING = 0.1  # a tree saving less than this share of the context tokens is not worth its overhead


def tree_saves_work(contexts: Sequence[Sequence[int]], *, min_shared: int = MIN_SHARED,
                    min_saving: float = MIN_TREE_SAVING) -> bool:
    """Whether the prefix tree of the distinct ``contexts`` (shared runs of ``min_shared``+ tokens) holds at
    least ``min_saving`` fewer tokens than the contexts: few-shot prompts do, 0-shot ones (PIQA) do not."""
    uniq = list(dict.fromkeys(tuple(c) for c in contexts if len(c)))
    total = sum(len(c) for c in uniq)
    return total > 0 and build_tree(uniq, min_shared=min_shared).subtree_tokens() <= (1 - min_saving) * total


def distinct_tokens(contexts: Sequence[Sequence[int]]) -> int:
    """Tokens of the prefix tree of the distinct ``contexts`` (the work a tree leaves)."""
    uniq = list(dict.fromkeys(tuple(c) for c in contexts if len(c)))
    return build_tree(uniq).subtree_tokens() if uniq else 0


@dataclass
class CacheEntry:
    """Key/value states of the tokens ``tokens`` (positions 0..len-1), one pair per layer."""

    tokens: Tokens
    keys: list[Any]  # per layer: (len, kv_heads, head_dim)
    values: list[Any]
    nbytes: int


class PrefixKVCache:
    """Least-recently-used store of prefix key/value states, bounded in bytes.

    An entry for tokens ``S`` serves any context ``T``: the states of the
    first ``common_prefix_len(S, T)`` positions depend only on those tokens.

    Parameters
    ----------
    budget_bytes : int
        Entries are evicted (least recently used first) to stay under it; an
        entry larger than the whole budget is not kept (see ``skipped``).
    min_reuse : int
        A match shorter than this is not worth a cache lookup.
    max_entries : int
        Entries kept at most (a lookup compares the path with every entry;
        in tree order the next batch shares most with the latest ones).
    """

    def __init__(self, budget_bytes: int, *, min_reuse: int = 16, max_entries: int = 32) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        self.budget_bytes = int(budget_bytes)
        self.min_reuse = int(min_reuse)
        self.max_entries = max(1, int(max_entries))
        self._entries: OrderedDict[Tokens, CacheEntry] = OrderedDict()
        self.nbytes = 0
        self.skipped = 0  # entries larger than the budget (computed without caching)
        self.hits = 0
        self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, tokens: Sequence[int]) -> tuple[CacheEntry | None, int]:
        """:meth:`match` without marking the entry as used."""
        best, best_len = None, 0
        for entry in self._entries.values():
            n = common_prefix_len(entry.tokens, tokens)
            if n > best_len:
                best, best_len = entry, n
        return (None, 0) if best is None or best_len < self.min_reuse else (best, best_len)

    def match(self, tokens: Sequence[int]) -> tuple[CacheEntry | None, int]:
        """The entry sharing the longest prefix with ``tokens`` and that length (0 if none worth it)."""
        best, n = self.peek(tokens)
        if best is not None:
            self._entries.move_to_end(best.tokens)
        return best, n

    def fits(self, nbytes: int) -> bool:
        """Whether an entry of ``nbytes`` can be kept at all."""
        return nbytes <= self.budget_bytes

    def put(self, entry: CacheEntry) -> bool:
        """Keep ``entry`` (evicting old ones); ``False`` when it exceeds the whole budget."""
        if not self.fits(entry.nbytes):
            self.skipped += 1
            return False
        old = self._entries.pop(entry.tokens, None)
        if old is not None:
            self.nbytes -= old.nbytes
        while self._entries and (
            self.nbytes + entry.nbytes > self.budget_bytes or len(self._entries) >= self.max_entries
        ):
            _, gone = self._entries.popitem(last=False)
            self.nbytes -= gone.nbytes
        self._entries[entry.tokens] = entry
        self.nbytes += entry.nbytes
        return True

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0
