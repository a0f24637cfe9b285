"""Lay the prefix tree of a batch of requests out as attention segments (pure, no torch).

Each tree node becomes one segment of flat tokens whose queries see the keys
of all its ancestors (:func:`sharpbench.models.hf.segattn.plan_tree_attention`);
each continuation of a request becomes a segment below the node where its
context ends.  A node's ancestors may come from a cached prefix (keys of an
earlier call, placed before the batch's own keys), so a prefix shared by
requests of several backend calls is computed once.

The layout is split into passes of at most ``max_tokens`` flat tokens.  A
subtree too large for one pass is cut below its top node: the top node runs
first and its keys/values are saved (``TreePass.save``), then its children run
in later passes against those saved states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sharpbench.models.hf.prefix import PrefixNode, Tokens, build_tree

# A cache lookup: path tokens -> (entry key or None, tokens reusable from it).
Matcher = Callable[[Tokens], "tuple[Tokens | None, int]"]


@dataclass
class TreePass:
    """One forward pass over a part of the prefix tree.

    Attributes
    ----------
    tokens, positions : list of int
        Flat token ids and their position ids.
    segments : list of (prefix_keys, own_start, own_len)
        As :func:`sharpbench.models.hf.segattn.plan_tree_attention` takes them.
    past : list of (entry key, length)
        Cached entries whose first ``length`` states are laid, in this order,
        before the flat tokens' keys (``n_past`` keys in all).
    score_pos, score_tok, score_req : list of int
        Flat index whose output predicts each scored token, the token, and
        the request it belongs to.
    save : list of (path tokens, key indices)
        Prefix states to keep after the pass (key indices in the pass's key
        space, in position order).
    """

    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    segments: list[tuple[np.ndarray, int, int]] = field(default_factory=list)
    past: list[tuple[Tokens, int]] = field(default_factory=list)
    score_pos: list[int] = field(default_factory=list)
    score_tok: list[int] = field(default_factory=list)
    score_req: list[int] = field(default_factory=list)
    save: list[tuple[Tokens, np.ndarray]] = field(default_factory=list)
    ends_keys: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # context -> its key path

    @property
    def n_past(self) -> int:
        return sum(n for _, n in self.past)


@dataclass
class _Unit:
    """A subtree to lay out: its top node, and the cached entry holding its first ``reuse`` states."""

    node: PrefixNode
    path: Tokens  # tokens from position 0 to node.end
    entry: Tokens | None
    reuse: int


def _no_cache(path: Tokens) -> tuple[Tokens | None, int]:
    return None, 0


class _Layout:
    """Sizes of subtrees: flat tokens and contexts to lay out."""

    def __init__(self, conts: dict[int, list[tuple[int, tuple[int, ...]]]]) -> None:
        self.conts = conts  # context index -> [(request index, continuation tokens)]

    def own_cont_tokens(self, node: PrefixNode) -> int:
        return sum(len(c) - 1 for e in node.ends for _, c in self.conts[e])

    def size(self, unit: _Unit) -> tuple[int, int]:
        """(flat tokens, contexts) of laying out the whole subtree of ``unit``."""
        node = unit.node
        tok = node.end - max(unit.reuse, node.depth) + self.own_cont_tokens(node)
        ctx = len(node.ends)
        for sub in node.children:
            for n in sub.walk():
                tok += len(n.tokens) + self.own_cont_tokens(n)
                ctx += len(n.ends)
        return tok, ctx


def plan_tree_passes(
    contexts: Sequence[Tokens],
    requests: Sequence[tuple[int, tuple[int, ...]]],
    *,
    max_tokens: int,
    max_rows: int,
    min_shared: int = 16,
    match: Matcher | None = None,
    save_last: int = 0,
    save_ends: bool = False,
) -> list[TreePass]:
    """Passes that score every request once, each shared prefix computed once.

    Parameters
    ----------
    contexts : sequence of token tuples
        The distinct contexts.
    requests : sequence of (context index, continuation tokens)
        Continuations must be non-empty.
    max_tokens, max_rows : int
        Flat tokens and contexts per pass (a single context with its
        continuations larger than ``max_tokens`` gets a pass of its own).
    min_shared : int
        Shorter shared prefixes are recomputed per child (see :func:`build_tree`).
    match : callable, optional
        Cache lookup for the top nodes of the tree: ``path -> (entry key,
        reusable length)``; reused states are never the last token of a
        context (its output is needed).
    save_last : int
        When > 0 and the last context in tree order has at least this many
        tokens, the last pass saves its prefix states (the next call's
        requests, in tree order, share most with it).
    save_ends : bool
        Save the states of every context (generation prefill: each prompt's
        key/value cache, shared prefixes computed once).

    Returns
    -------
    list of TreePass
    """
    match = match or _no_cache
    conts: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
    for r, (ci, cont) in enumerate(requests):
        if not cont:
            raise ValueError(f"request {r}: empty continuation")
        conts.setdefault(ci, []).append((r, tuple(cont)))
    root = build_tree(contexts, min_shared=min_shared)
    lay = _Layout(conts)
    queue: list[_Unit] = []
    for child in root.children:
        entry, n = match(child.tokens)
        n = min(n, child.end - (1 if child.ends else 0))
        queue.append(_Unit(child, child.tokens, entry if n > 0 else None, max(n, 0)))
    passes: list[TreePass] = []
    current: list[_Unit] = []
    cur_tok = cur_ctx = 0
    while queue:
        unit = queue.pop(0)
        tok, ctx = lay.size(unit)
        if current and (cur_tok + tok > max_tokens or cur_ctx + ctx > max_rows):
            passes.append(_lay_out(current, lay))
            current, cur_tok, cur_ctx = [], 0, 0
        if (tok > max_tokens or ctx > max_rows) and unit.node.children:
            if unit.entry is not None and unit.reuse >= unit.node.end and not unit.node.ends:
                # the top node is wholly cached: its children continue from the same cached entry
                queue[:0] = [_Unit(c, unit.path + c.tokens, unit.entry, unit.node.end) for c in unit.node.children]
                continue
            # too big for one pass: run the top node alone, save its states, queue its children
            top = _Unit(PrefixNode(unit.node.depth, unit.node.tokens, [], unit.node.ends), unit.path,
                        unit.entry, unit.reuse)
            p = _lay_out([top], lay, save_top=unit.path)
            passes.append(p)
            queue[:0] = [
                _Unit(c, unit.path + c.tokens, unit.path, unit.node.end) for c in unit.node.children
            ]
            continue
        current.append(unit)
        cur_tok += tok
        cur_ctx += ctx
    if current:
        passes.append(_lay_out(current, lay))
    if save_ends:
        for p in passes:
            p.save.extend((tuple(contexts[ci]), keys) for ci, keys in p.ends_keys.items())
    if save_last and passes:
        _save_last_context(passes[-1], contexts, save_last)
    return passes


def _lay_out(units: list[_Unit], lay: _Layout, save_top: Tokens | None = None) -> TreePass:
    p = TreePass()
    offsets: dict[Tokens, int] = {}
    for u in units:  # cached entries first: keys [0, n_past)
        if u.entry is not None:
            n = max(u.reuse, dict(p.past).get(u.entry, 0))
            p.past = [(e, m) for e, m in p.past if e != u.entry] + [(u.entry, n)]
    off = 0
    for e, n in p.past:
        offsets[e] = off
        off += n
    n_past = off
    flat_keys: list[np.ndarray] = []  # deferred: own keys are n_past + flat index
    for u in units:
        base = (
            np.arange(offsets[u.entry], offsets[u.entry] + u.reuse, dtype=np.int64)
            if u.entry is not None
            else np.zeros(0, dtype=np.int64)
        )
        stack: list[tuple[PrefixNode, np.ndarray, int]] = [(u.node, base, u.reuse)]
        while stack:
            node, above, skip = stack.pop()
            start = max(skip, node.depth)  # positions of the node already in ``above``
            own_toks = node.tokens[start - node.depth :]
            keys = above
            if own_toks:
                f0 = len(p.tokens)
                p.tokens.extend(own_toks)
                p.positions.extend(range(start, node.end))
                p.segments.append((above, f0, len(own_toks)))
                keys = np.concatenate([above, n_past + np.arange(f0, f0 + len(own_toks), dtype=np.int64)])
            for ci in node.ends:
                last = int(keys[-1]) - n_past  # the context's last token (never a cached one)
                p.ends_keys[ci] = keys
                for r, cont in lay.conts[ci]:
                    p.score_pos.append(last)
                    p.score_tok.append(cont[0])
                    p.score_req.append(r)
                    if len(cont) > 1:
                        c0 = len(p.tokens)
                        p.tokens.extend(cont[:-1])
                        p.positions.extend(range(node.end, node.end + len(cont) - 1))
                        p.segments.append((keys, c0, len(cont) - 1))
                        p.score_pos.extend(range(c0, c0 + len(cont) - 1))
                        p.score_tok.extend(cont[1:])
                        p.score_req.extend([r] * (len(cont) - 1))
            stack.extend((c, keys, 0) for c in reversed(node.children))
            if save_top is not None and node is u.node:
                p.save.append((save_top, keys))
    return p


def _save_last_context(p: TreePass, contexts: Sequence[Tokens], min_len: int) -> None:
    """Save the prefix states of the pass's last context in tree order (the longest in the tree)."""
    ends = p.ends_keys
    if not ends:
        return
    last = max(ends, key=lambda ci: contexts[ci])
    path = tuple(contexts[last])
    if len(path) >= min_len and all(t != path for t, _ in p.save):
        p.save.append((path, ends[last]))
