"""Fast loglikelihood scoring for HF causal LMs: one pass per shared context.

Requests that share a context (all choices of an item) are packed into one
row: the context once, then every continuation (without its last token, as
lm-eval feeds ``(context + continuation)[:-1]``) after it::

    tokens     c0 c1 c2 | a0 a1 | b0 b1 b2
    positions   0  1  2 |  3  4 |  3  4  5
    segment     0  0  0 |  1  1 |  2  2  2

A custom 4D attention mask lets each continuation token see the context and
the earlier tokens of its own continuation only, and position ids restart
after the context, so every scored token sees exactly the input lm-eval
gives it.  Tokens that every continuation of the group starts with (PIQA's
two solutions often differ only in their last words) join the shared part
and are computed once too; a scored position whose input and target are the
same for several continuations goes through the output layer once and counts
for each of them.  Rows are right-padded to the longest row of their batch (rows are
sorted by length first) and the output layer runs only at scored positions,
where the log-softmax is taken in float32.

Llama-family models (Llama, Qwen2, Mistral without sliding window) and
Gemma-3 text models (sliding windows, final-logit soft-capping) run through
the lean forward of :mod:`sharpbench.models.hf.fastpath` (no padding in the
linear layers, in-place residuals, no transformers mask/cache machinery);
other architectures use the model's own forward with the same packed mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sharpbench.models.hf.fastpath import lean_body
from sharpbench.models.hf.prefix import MIN_SHARED, CacheEntry, PrefixKVCache, common_prefix_len, tree_saves_work
from sharpbench.results import ChoiceResult
from sharpbench.models.hf.segattn import plan_attention, plan_tree_attention, to_device
from sharpbench.models.hf.treepack import plan_tree_passes
from sharpbench.models.base import TokenRequest
from sharpbench.models.errors import NonFiniteLogitsError, ScoringError

# Model types whose CausalLM head is ``lm_head(hidden)`` (+ optional final-logit soft-capping).
_PLAIN_HEAD_TYPES = frozenset(
    {
        "llama",
        "qwen2",
        "qwen3",
        "mistral",
        "gemma",
        "gemma2",
        "gemma3_text",
        "olmo",
        "olmo2",
        "phi3",
        "smollm3",
    }
)
_HEAD_ROWS = 128  # scored positions per output-layer chunk on a CPU (bounds the N x vocab buffer)
_GPU_HEAD_BYTES = 256 << 20  # float32 logits per output-layer chunk on a GPU


@dataclass
class PackedRow:
    """One shared context plus the continuations scored after it."""

    tokens: list[int]
    positions: list[int]
    segments: list[int]
    score_pos: list[int] = field(default_factory=list)  # row index whose output predicts the target
    score_tok: list[int] = field(default_factory=list)  # target token
    score_req: list[int] = field(default_factory=list)  # request index of each scored token
    # a scored entry shared by several requests: (entry index in this row, another request it counts for)
    share_entry: list[int] = field(default_factory=list)
    share_req: list[int] = field(default_factory=list)


def _shared_start(conts: Sequence[Sequence[int]]) -> int:
    """Input tokens (continuation minus its last token) that all of ``conts`` begin with; 0 for one."""
    if len(conts) < 2:
        return 0
    first = conts[0]
    k = min(len(c) for c in conts) - 1
    for c in conts[1:]:
        k = min(k, common_prefix_len(first[:k], c[:k]))
    return max(k, 0)


def pack_requests(requests: Sequence[TokenRequest]) -> list[PackedRow]:
    """Group requests by identical context and pack each group into one row.

    The context and the input tokens every continuation of the group starts
    with form segment 0; each continuation's remaining input tokens form its
    own segment.  A scored entry (position, target) met again for another
    request of the row is recorded once, with ``share_entry``/``share_req``
    naming the other requests it counts for.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, req in enumerate(requests):
        if not req.context or not req.continuation:
            raise ScoringError(f"request {i}: context and continuation must both be non-empty token lists")
        groups.setdefault(tuple(req.context), []).append(i)
    rows = []
    for ctx, idxs in groups.items():
        conts = [tuple(requests[i].continuation) for i in idxs]
        k = _shared_start(conts)
        c = len(ctx) + k  # the shared part: context + the common start of the continuations' inputs
        shared = list(ctx) + list(conts[0][:k])
        row = PackedRow(tokens=shared, positions=list(range(c)), segments=[0] * c)
        entries: dict[tuple[int, int], int] = {}
        for seg, (i, cont) in enumerate(zip(idxs, conts), start=1):
            start = len(row.tokens)
            own = cont[k:-1]  # this continuation's input tokens after the shared part
            row.tokens.extend(own)
            row.positions.extend(range(c, c + len(own)))
            row.segments.extend([seg] * len(own))
            # target cont[j] is predicted at absolute position len(ctx) + j - 1: in the shared part
            # while that is < c, else in this segment
            for j, tok in enumerate(cont):
                at = len(ctx) + j - 1
                pos = at if at < c else start + at - c
                key = (pos, tok) if at < c else None
                if key is not None and key in entries:
                    row.share_entry.append(entries[key])
                    row.share_req.append(i)
                    continue
                if key is not None:
                    entries[key] = len(row.score_pos)
                row.score_pos.append(pos)
                row.score_tok.append(tok)
                row.score_req.append(i)
        rows.append(row)
    return rows


def _batches(rows: list[PackedRow], max_rows: int, max_tokens: int) -> list[list[PackedRow]]:
    """Split length-sorted (descending) rows into batches of at most ``max_rows`` rows / ``max_tokens`` tokens."""
    out: list[list[PackedRow]] = []
    cur: list[PackedRow] = []
    n_tok = 0
    for row in rows:
        if cur and (len(cur) >= max_rows or n_tok + len(row.tokens) > max_tokens):
            out.append(cur)
            cur, n_tok = [], 0
        cur.append(row)
        n_tok += len(row.tokens)
    if cur:
        out.append(cur)
    return out


def _bins(rows: list[PackedRow]) -> tuple[int, list[list[tuple[int, PackedRow]]]]:
    """First-fit-decreasing placement of rows into sequences as wide as the longest row.

    Returns the width and, per sequence, ``(offset, row)`` pairs.  Rows sharing a
    sequence are isolated by the attention mask, so short rows fill the
    space that padding would otherwise waste.
    """
    order = sorted(rows, key=lambda r: -len(r.tokens))
    width = len(order[0].tokens)
    bins: list[list[tuple[int, PackedRow]]] = []
    used: list[int] = []
    for row in order:
        n = len(row.tokens)
        for b, u in enumerate(used):
            if u + n <= width:
                bins[b].append((u, row))
                used[b] = u + n
                break
        else:
            bins.append([(0, row)])
            used.append(n)
    return width, bins


def _head_fn(model: Any):
    """``hidden -> logits`` for known architectures, or ``None`` (use the full forward)."""
    cfg = model.config
    if getattr(cfg, "model_type", None) not in _PLAIN_HEAD_TYPES:
        return None
    head = model.get_output_embeddings()
    cap = getattr(cfg, "final_logit_softcapping", None)

    def fn(hidden):
        import torch

        logits = head(hidden)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    return fn


def _attention_mask(model: Any, grp, seg, pos):
    """Boolean 4D mask(s) (B, 1, L, L): causal, same group, context or own segment only."""
    import torch

    n = seg.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool, device=seg.device).tril()
    same_grp = grp[:, :, None] == grp[:, None, :]
    same_seg = seg[:, :, None] == seg[:, None, :]
    ctx_key = (seg == 0)[:, None, :]
    full = (causal & same_grp & (same_seg | ctx_key))[:, None]
    cfg = getattr(model.config, "text_config", None) or model.config
    layer_types = getattr(cfg, "layer_types", None) or []
    window = getattr(cfg, "sliding_window", None)
    if window and "sliding_attention" in layer_types:
        near = (pos[:, :, None] - pos[:, None, :]) < window
        sliding = full & near[:, None]
        return {"full_attention": full, "sliding_attention": sliding}
    return full


def _lean_batch(lean, rows: list[PackedRow], device: str):
    """Scored-position log-probs, greedy flags and request ids of one batch via the lean forward.

    The rows are laid end to end as one flat token sequence (no padding); the
    attention plan describes each row's context and continuation segments.
    """
    import torch

    ids, pos, segments, flat_pos, toks, reqs = [], [], [], [], [], []
    shares: tuple[list[int], list[int]] = ([], [])
    off = 0
    for r in rows:
        ids.extend(r.tokens)
        pos.extend(r.positions)
        n_ctx = r.segments.count(0)  # the context comes first, as segment 0
        segments.append((off, 0, off, n_ctx))
        start = n_ctx
        while start < len(r.segments):
            end = start
            while end < len(r.segments) and r.segments[end] == r.segments[start]:
                end += 1
            segments.append((off, n_ctx, off + start, end - start))
            start = end
        _add_shares(shares, r, len(toks))
        flat_pos.extend(off + p for p in r.score_pos)
        toks.extend(r.score_tok)
        reqs.extend(r.score_req)
        off += len(r.tokens)
    plan = plan_attention(segments, off, dtype=lean.dtype, device=device, window=lean.window)
    ids_t, pos_t, keep, target = (
        to_device(torch.tensor(v, dtype=torch.long), device) for v in (ids, pos, flat_pos, toks)
    )
    hidden = lean.hidden(ids_t, pos_t, plan, keep=keep)
    logp, greedy = _head_scores(lean.logits, hidden, target, getattr(lean.model.config, "vocab_size", None))
    return logp, greedy, reqs, shares


def _add_shares(shares: tuple[list[int], list[int]], row: PackedRow, first: int) -> None:
    """Append ``row``'s shared scored entries to a batch's ``(entry, request)`` lists (``first``: its first entry)."""
    shares[0].extend(first + e for e in row.share_entry)
    shares[1].extend(row.share_req)


def _forward_batch(model: Any, head, lean, rows: list[PackedRow], device: str):
    """Scored-position log-probs (float32), greedy flags, and per-token request ids of one batch."""
    import torch

    if lean is not None:
        return _lean_batch(lean, rows, device)
    width, bins = _bins(rows)
    n = len(bins)
    ids = torch.zeros(n, width, dtype=torch.long)
    pos = torch.zeros(n, width, dtype=torch.long)
    seg = torch.full((n, width), -1, dtype=torch.long)  # padding: own segment and group
    grp = torch.full((n, width), -1, dtype=torch.long)
    flat_pos, toks, reqs = [], [], []
    shares: tuple[list[int], list[int]] = ([], [])
    for b, placed in enumerate(bins):
        for g, (off, r) in enumerate(placed):
            m = len(r.tokens)
            ids[b, off : off + m] = torch.tensor(r.tokens)
            pos[b, off : off + m] = torch.tensor(r.positions)
            seg[b, off : off + m] = torch.tensor(r.segments)
            grp[b, off : off + m] = g
            base = b * width + off
            _add_shares(shares, r, len(toks))
            flat_pos.extend(base + p for p in r.score_pos)
            toks.extend(r.score_tok)
            reqs.extend(r.score_req)
    # Padding keys are masked for real queries; padding queries see the padding before
    # them (at least themselves), so no attention row is empty (no NaN from the softmax).
    ids, pos, seg, grp = (to_device(t, device) for t in (ids, pos, seg, grp))
    mask = _attention_mask(model, grp, seg, pos)
    index, target = (to_device(torch.tensor(v, dtype=torch.long), device) for v in (flat_pos, toks))
    if head is not None:
        hidden = model.base_model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
        hidden = hidden.last_hidden_state.reshape(n * width, -1).index_select(0, index)
        logp, greedy = _head_scores(head, hidden, target, getattr(model.config, "vocab_size", None))
    else:
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
        logits = out.logits.reshape(n * width, -1).index_select(0, index).float()
        logp, greedy = _score_logits(logits, target)
    return logp, greedy, reqs, shares


def _head_rows(device: Any, vocab: int | None) -> int:
    """Scored positions per output-layer chunk.

    ``_HEAD_ROWS`` on a CPU (the chunk's logits stay in cache); on a GPU as
    many as fit ``_GPU_HEAD_BYTES`` of float32 logits (fewer, larger launches).
    """
    import torch

    if torch.device(device).type == "cpu" or not vocab:
        return _HEAD_ROWS
    return max(_HEAD_ROWS, _GPU_HEAD_BYTES // (4 * int(vocab)))


def _head_scores(head, hidden, target, vocab: int | None = None):
    """Output layer + scoring in chunks of scored positions (see :func:`_head_rows`)."""
    import torch

    rows = _head_rows(hidden.device, vocab)
    logp_parts, greedy_parts = [], []
    for s in range(0, hidden.shape[0], rows):
        logits = head(hidden[s : s + rows]).float()  # no-op for the lean head
        lp, gr = _score_logits(logits, target[s : s + rows])
        logp_parts.append(lp)
        greedy_parts.append(gr)
    return torch.cat(logp_parts), torch.cat(greedy_parts)


_SOFTMAX_ROWS = 16  # rows per log-softmax block: its (rows x vocab) output stays in cache


def _score_logits(logits, target):
    """Log-prob of each target and whether it is the argmax (first index on ties), per row.

    The float32 log-softmax is the same kernel lm-eval uses (a ``logsumexp``
    over a 262k vocabulary sums in another order and drifts by ~2e-5 per
    token); the argmax is taken over the log-softmax as lm-eval does (first
    index on ties).  The rows go through in blocks of ``_SOFTMAX_ROWS`` into
    one reused buffer, so the log-softmax output is read back from cache
    (bit-identical to one call on all rows).  On a GPU all rows go in one
    call and the argmax is taken directly (no per-row host round trips).
    """
    import torch

    if logits.device.type != "cpu":
        lp_all = torch.log_softmax(logits, dim=-1)
        lp = lp_all.gather(1, target[:, None]).squeeze(1)
        return lp, lp_all.argmax(dim=-1) == target
    n, vocab = logits.shape
    logp = torch.empty(n, dtype=logits.dtype, device=logits.device)
    greedy = torch.empty(n, dtype=torch.bool, device=logits.device)
    buf = logits.new_empty(min(n, _SOFTMAX_ROWS), vocab)
    for s in range(0, n, _SOFTMAX_ROWS):
        block, tgt = logits[s : s + _SOFTMAX_ROWS], target[s : s + _SOFTMAX_ROWS]
        lp_all = buf[: block.shape[0]]
        torch.ops.aten._log_softmax.out(block, -1, False, out=lp_all)
        lp = lp_all.gather(1, tgt[:, None]).squeeze(1)
        # argmax == target  <=>  the target holds the maximum and no earlier index ties it
        # (argmax returns the first maximum).  amax is a vectorised reduction, several
        # times cheaper than argmax over a large vocabulary; ties are checked per row.
        gr = lp == lp_all.amax(dim=-1)
        for r in gr.nonzero().flatten().tolist():
            t = int(tgt[r])
            if t and bool((lp_all[r, :t] == lp[r]).any()):
                gr[r] = False
        logp[s : s + block.shape[0]] = lp
        greedy[s : s + block.shape[0]] = gr
    return logp, greedy


MIN_SAVE = 32  # shorter last contexts are not cached between calls


def worth_a_tree(contexts: Sequence[Sequence[int]], cache: PrefixKVCache | None = None,
                 min_shared: int = MIN_SHARED) -> bool:
    """Whether the prefix tree saves enough work on ``contexts`` to beat the plain path.

    True when the tree holds at least ``MIN_TREE_SAVING`` fewer tokens than
    the distinct contexts (:func:`~sharpbench.models.hf.prefix.tree_saves_work`),
    or when the cache holds a prefix of one of them worth reusing.  0-shot
    tasks (PIQA: a few shared words at most) then run exactly the plain path;
    few-shot prompts share hundreds of tokens.
    """
    if tree_saves_work(contexts, min_shared=min_shared):
        return True
    if cache is not None and len(cache):
        return any(cache.peek(c)[1] > 0 for c in dict.fromkeys(tuple(c) for c in contexts))
    return False


def supports_prefix_tree(model: Any) -> bool:
    """Whether ``model`` runs through the lean forward, the one that takes a prefix tree and cached states."""
    return _head_fn(model) is not None and lean_body(model) is not None


def _tree_parts(lean, requests: Sequence[TokenRequest], device: str, max_rows: int, max_tokens: int,
                cache: PrefixKVCache | None, min_shared: int):
    """Scored log-probs, greedy flags and request ids of every pass over the requests' prefix tree."""
    import torch

    index: dict[tuple[int, ...], int] = {}
    contexts: list[tuple[int, ...]] = []
    reqs = []
    for i, req in enumerate(requests):
        if not req.context or not req.continuation:
            raise ScoringError(f"request {i}: context and continuation must both be non-empty token lists")
        ci = index.setdefault(tuple(req.context), len(contexts))
        if ci == len(contexts):
            contexts.append(tuple(req.context))
        reqs.append((ci, tuple(req.continuation)))
    run = TreePassRunner(lean, device, cache)
    passes = plan_tree_passes(
        contexts, reqs, max_tokens=max_tokens, max_rows=max_rows, min_shared=min_shared, match=run.match,
        save_last=MIN_SAVE if cache is not None else 0,
    )
    vocab = getattr(lean.model.config, "vocab_size", None)
    parts = []
    for p in passes:
        hidden = run.forward(p)
        if p.score_pos:  # a pass that only computes a shared prefix (saved by the runner) scores nothing
            target = to_device(torch.tensor(p.score_tok, dtype=torch.long), device)
            logp, greedy = _head_scores(lean.logits, hidden, target, vocab)
            parts.append((logp, greedy, p.score_req, ([], [])))
    return parts


class TreePassRunner:
    """Runs the passes of one prefix-tree layout through the lean forward, reading and saving cached states.

    ``match`` is the cache lookup :func:`~sharpbench.models.hf.treepack.plan_tree_passes` takes; the
    entries it hands out, and those the passes save, are held for the whole call (even if the
    cache evicts them meanwhile).  Used by loglikelihood scoring and by generation prefill.
    """

    def __init__(self, lean, device: str, cache: PrefixKVCache | None) -> None:
        self.lean, self.device, self.cache = lean, device, cache
        self.entries: dict[tuple[int, ...], CacheEntry] = {}

    def match(self, path):
        if self.cache is None:
            return None, 0
        entry, n = self.cache.match(path)
        if entry is None:
            return None, 0
        self.entries[entry.tokens] = entry
        self.cache.hits += 1
        self.cache.reused_tokens += n
        return entry.tokens, n

    def forward(self, p):
        """Hidden states at ``p.score_pos``; the states ``p.save`` names are kept (and cached)."""
        import torch

        past = None
        if p.past:
            n_layers = len(self.entries[p.past[0][0]].keys)
            past = [
                tuple(
                    torch.cat([getattr(self.entries[e], kind)[layer][:n] for e, n in p.past])
                    for kind in ("keys", "values")
                )
                for layer in range(n_layers)
            ]
        plan = plan_tree_attention(p.segments, len(p.tokens), n_past=p.n_past, dtype=self.lean.dtype,
                                   device=self.device, window=self.lean.window)
        ids, pos, keep = (
            to_device(torch.tensor(v, dtype=torch.long), self.device) for v in (p.tokens, p.positions, p.score_pos)
        )
        save = [to_device(torch.from_numpy(idx), self.device) for _, idx in p.save]
        hidden, saved = self.lean.hidden_cached(ids, pos, plan, keep=keep, past=past, save=save)
        for (path, _), (ks, vs) in zip(p.save, saved):
            entry = CacheEntry(path, ks, vs, sum(t.numel() * t.element_size() for t in (*ks, *vs)))
            self.entries[path] = entry
            if self.cache is not None:
                self.cache.put(entry)
        return hidden


def score_requests(
    model: Any,
    requests: Sequence[TokenRequest],
    *,
    max_rows: int = 64,
    max_tokens: int = 32768,
    device: str = "cpu",
    fast: bool = True,
    prefix_tree: bool = False,
    cache: PrefixKVCache | None = None,
    min_shared: int = MIN_SHARED,
) -> list[ChoiceResult]:
    """Loglikelihood and greedy flag of every request, in input order.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM that accepts a 4D boolean attention mask and ``position_ids``
        (SDPA attention).
    requests : sequence of TokenRequest
        Already truncated to the model's window (see ``engine.requests``).
    max_rows, max_tokens : int
        Bounds on the rows and padded tokens of one forward pass.
    fast : bool
        Use the lean forward (``models.hf.fastpath``: Llama family, Gemma-3) when the
        architecture supports it; ``False`` forces the model's own forward.
    prefix_tree : bool
        Lay the requests' contexts into a prefix tree and compute each
        shared prefix once (:mod:`sharpbench.models.hf.treepack`); lean forward
        only (ignored otherwise, see :func:`supports_prefix_tree`).
    cache : PrefixKVCache, optional
        With ``prefix_tree``: prefix states kept between calls (read for the
        tree's top nodes, and the last context in tree order saved to it).
    min_shared : int
        Shared prefixes shorter than this are recomputed per child.

    Raises
    ------
    NonFiniteLogitsError
        If any scored position has a NaN/inf log-probability; ``request_indices``
        names the affected requests.
    """
    import torch

    if not requests:
        return []
    head = _head_fn(model)
    lean = lean_body(model) if head is not None and fast else None
    n_req = len(requests)
    sums = torch.zeros(n_req, dtype=torch.float64)
    misses = torch.zeros(n_req, dtype=torch.long)
    bad = torch.zeros(n_req, dtype=torch.long)
    parts = []  # per batch: device tensors, brought to the host after the last batch (no sync between)
    with torch.inference_mode():
        if prefix_tree and lean is not None and worth_a_tree([r.context for r in requests], cache, min_shared):
            parts = _tree_parts(lean, requests, device, max(1, max_rows), max(1, max_tokens), cache, min_shared)
        else:
            rows = sorted(pack_requests(requests), key=lambda r: -len(r.tokens))
            for batch in _batches(rows, max(1, max_rows), max(1, max_tokens)):
                parts.append(_forward_batch(model, head, lean, batch, device))
    for logp, greedy, reqs, (share_entry, share_req) in parts:
        logp, greedy = logp.cpu(), greedy.cpu()
        if share_entry:  # entries computed once that count for several requests of a row
            entry = torch.tensor(share_entry, dtype=torch.long)
            logp, greedy = torch.cat([logp, logp[entry]]), torch.cat([greedy, greedy[entry]])
            reqs = [*reqs, *share_req]
        req_idx = torch.tensor(reqs, dtype=torch.long)
        bad.index_add_(0, req_idx, (~torch.isfinite(logp)).long())
        sums.index_add_(0, req_idx, logp.double())
        misses.index_add_(0, req_idx, (~greedy).long())
    if bool((bad > 0).any()):
        idx = (bad > 0).nonzero().flatten().tolist()
        raise NonFiniteLogitsError(
            f"the model produced NaN/inf logits for {len(idx)} request(s) (first: {idx[:5]}); "
            "check the weights and dtype (float16 overflows easily; try float32 or bfloat16)",
            idx,
        )
    return [
        ChoiceResult(
            loglik=float(sums[i]), is_greedy=bool(misses[i] == 0), n_tokens=len(requests[i].continuation)
        )
        for i in range(n_req)
    ]
