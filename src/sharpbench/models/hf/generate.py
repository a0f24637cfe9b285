"""Batched generation for the hf backend: prefix-tree prefill, continuous batching, lm-eval's stop rules.

:func:`generate_iter` runs a list of :class:`~sharpbench.results.GenerationRequest`
through one model and yields each finished generation as soon as it is done.

Models the lean forward supports (Llama family, Gemma-3) go through the scheduler here:

* prompts are prefilled through the prefix tree (:func:`sharpbench.models.hf.prefill.prefill`):
  a few-shot prefix shared by every question is computed once and kept in the
  backend's prefix cache, so a prompt admitted later computes its question only;
* up to ``n_slots`` sequences decode together, one token each per step
  (:func:`sharpbench.models.hf.decode.decode_step`); a sequence that finishes
  leaves at once and a waiting prompt takes its slot (continuous batching);
  no token is computed for a finished sequence or for padding;
* greedy decoding takes the argmax; sampling applies temperature, top-k and
  top-p (in transformers' order) and draws with a generator seeded per
  request, so a sample does not depend on the batch it ran in.

Other architectures use transformers' ``generate`` on length-sorted batches
(left padding), as lm-eval does.

Stop rules are lm-eval 0.4.13's ``generate_until``: the prompt is cut from
the left to ``max_length - max_gen_toks`` tokens; generation stops at the
model's end-of-text token(s), at ``max_gen_toks``, or once a stop string
appears in the decoded text; the answer is the decoded text (special tokens
skipped) cut before the earliest stop string.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sharpbench.models.gen_text import cut_at_stop, prompt_window
from sharpbench.results import Generation, GenerationRequest


MIN_SHARED_DECODE = 32  # shorter common prompt prefixes stay in each sequence's own slot


def eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """The tokens that end a generation: the generation config's ``eos_token_id`` (one or a list) and the tokenizer's."""
    ids: set[int] = set()
    cfg = getattr(model, "generation_config", None)
    eos = getattr(cfg, "eos_token_id", None) if cfg is not None else None
    if eos is None:
        eos = getattr(model.config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos is not None:
        ids.update(int(t) for t in eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)


class StopRules:
    """lm-eval's end-of-generation rules for one tokenizer.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    eos_ids : set of int
        Tokens that end a generation.
    """

    def __init__(self, tokenizer: Any, eos_ids: frozenset[int]) -> None:
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        eos = tokenizer.eos_token_id
        # lm-eval adds the end-of-text string (decoded with special tokens) to every request's stops
        self.eos_text = tokenizer.decode([eos], skip_special_tokens=False) if eos is not None else ""
        self._window: dict[tuple[str, ...], int] = {}

    def stops(self, until: Sequence[str]) -> tuple[str, ...]:
        """The request's stop strings plus the end-of-text string, empty ones dropped."""
        out = [s for s in until if s]
        if self.eos_text and self.eos_text not in out:
            out.append(self.eos_text)
        return tuple(out)

    def window(self, stops: tuple[str, ...]) -> int:
        """Generated tokens to decode when looking for a stop string (longest stop in tokens + margin)."""
        w = self._window.get(stops)
        if w is None:
            longest = max((len(self.tokenizer.encode(s, add_special_tokens=False)) for s in stops), default=0)
            w = self._window[stops] = longest + 8
        return w

    def hit_stop(self, tokens: Sequence[int], stops: tuple[str, ...]) -> bool:
        """Whether a stop string appears in the decoded tail of ``tokens``."""
        if not stops:
            return False
        tail = self.tokenizer.decode(list(tokens[-self.window(stops):]), skip_special_tokens=False)
        return any(s in tail for s in stops)

    def finish(self, tokens: Sequence[int], stops: tuple[str, ...], reason: str) -> Generation:
        """The answer text of a finished generation."""
        text, _ = cut_at_stop(self.tokenizer.decode(list(tokens), skip_special_tokens=True), stops)
        return Generation(text=text, n_tokens=len(tokens), stop_reason=reason)


@dataclass
class _Seq:
    index: int
    request: GenerationRequest
    prompt: tuple[int, ...]
    stops: tuple[str, ...]
    tokens: list[int] = field(default_factory=list)
    generator: Any = None
    started: float = 0.0


def choose(logits: Any, req: GenerationRequest, generator: Any) -> int:
    """The next token from float32 logits ``(vocab,)``: argmax, or a seeded draw after temperature, top-k, top-p."""
    import torch

    if not req.do_sample or req.temperature == 0.0:
        return int(torch.argmax(logits))
    scores = logits / req.temperature
    if req.top_k and req.top_k > 0:
        kth = torch.topk(scores, min(req.top_k, scores.shape[-1])).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if req.top_p < 1.0:
        srt, idx = torch.sort(scores, descending=False)
        cum = srt.softmax(-1).cumsum(-1)
        drop = cum <= 1 - req.top_p
        drop[-1] = False  # keep at least one token
        scores = scores.masked_fill(drop.scatter(0, idx, drop), float("-inf"))
    probs = scores.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def _generator(req: GenerationRequest, device: Any):
    import torch

    if not req.do_sample or req.temperature == 0.0:
        return None
    g = torch.Generator(device=device)
    g.manual_seed(int(req.seed) if req.seed is not None else torch.seed())
    return g


def generate_iter(
    model: Any,
    tokenizer: Any,
    requests: Sequence[GenerationRequest],
    encode: Callable[[str], list[int]],
    *,
    max_length: int,
    device: Any = "cpu",
    n_slots: int = 32,
    max_tokens: int = 32768,
    max_rows: int = 64,
    cache: Any = None,
    lean_ok: bool = True,
    progress: Callable[[int], None] | None = None,
    memory: int | None = None,
) -> Iterator[tuple[int, Generation, float]]:
    """Generate every request; yields ``(request index, generation, seconds)`` as each finishes.

    Parameters
    ----------
    model, tokenizer : transformers model and tokenizer
    requests : sequence of GenerationRequest
    encode : callable
        ``encode(prompt) -> token ids`` as the backend tokenizes contexts (lm-eval's ``tok_encode``).
    max_length : int
        The model window; a prompt is cut from the left to ``max_length - max_gen_toks`` tokens.
    n_slots : int
        Sequences decoded together.
    cache : PrefixKVCache, optional
        Prefix states shared with the loglikelihood scorer and kept between calls.
    lean_ok : bool
        Use the lean scheduler when the model supports it (else transformers' ``generate``).
    progress : callable, optional
        Called with the number of tokens generated in each step.
    memory : int, optional
        Bytes the key/value slots may take; fewer than ``n_slots`` sequences
        decode together when their slots would not fit (at least one does).

    Yields
    ------
    (int, Generation, float)
        Request index, its generation, and the seconds from its admission to its end.
    """
    from sharpbench.models.hf.fastpath import lean_body

    if n_slots < 1:
        raise ValueError(f"n_slots must be >= 1, got {n_slots}")
    rules = StopRules(tokenizer, eos_token_ids(model, tokenizer))
    seqs = []
    for i, req in enumerate(requests):
        ids = prompt_window(encode(req.prompt), max_length, req.max_gen_toks)
        if not ids:
            raise ValueError(f"request {i}: the prompt encodes to no tokens")
        seqs.append(_Seq(i, req, tuple(ids), rules.stops(req.until)))
    lean = lean_body(model) if lean_ok else None
    if lean is None:
        yield from _generate_plain(model, tokenizer, seqs, rules, device, n_slots, progress)
    else:
        yield from _generate_lean(model, lean, seqs, rules, device, n_slots, max_tokens, max_rows, cache, progress,
                                  memory)


def _after_token(rules: StopRules, s: _Seq, token: int) -> str | None:
    """Append ``token``; the stop reason if the sequence is now finished."""
    s.tokens.append(token)
    if token in rules.eos_ids:
        return "eos"
    if rules.hit_stop(s.tokens, s.stops):
        return "stop"
    if len(s.tokens) >= s.request.max_gen_toks:
        return "length"
    return None


def _generate_lean(model, lean, seqs, rules, device, n_slots, max_tokens, max_rows, cache, progress, memory=None):
    import torch

    from sharpbench.models.hf.decode import SlotCache, decode_step, slot_bytes
    from sharpbench.models.hf.prefill import prefill
    from sharpbench.models.hf.prefix import common_prefix_len

    waiting = deque(sorted(seqs, key=lambda s: s.prompt))  # tree order: shared prefixes prefill together
    # A prefix every prompt starts with (the few-shot exemplars) is kept once and attended to once per step.
    # One position short of the shortest prompt: every sequence keeps at least its last prompt token as its own.
    shared_len = common_prefix_len(waiting[0].prompt, waiting[-1].prompt) if len(seqs) > 1 else 0
    shared_len = min(shared_len, min(len(s.prompt) for s in seqs) - 1)
    if shared_len < MIN_SHARED_DECODE:
        shared_len = 0
    capacity = max(len(s.prompt) - shared_len + s.request.max_gen_toks for s in seqs) if seqs else 1
    n_slots = min(n_slots, len(seqs)) or 1
    if memory is not None:
        n_slots = max(1, min(n_slots, int(memory) // slot_bytes(lean, capacity)))
    slots = None
    active: list[_Seq] = []  # active[b] lives in slot b

    def release(b: int) -> None:  # keep the active rows a prefix of the slots
        last = len(active) - 1
        if b != last:
            slots.move(last, b)
            active[b] = active[last]
        active.pop()

    with torch.inference_mode():
        while waiting or active:
            if waiting and len(active) < n_slots:
                batch = [waiting.popleft() for _ in range(min(n_slots - len(active), len(waiting)))]
                now = time.perf_counter()
                states = prefill(model, [s.prompt for s in batch], device=device, max_tokens=max_tokens,
                                 max_rows=max_rows, cache=cache)
                if slots is None:
                    shared = None
                    if shared_len:
                        st0 = states[0]
                        shared = ([k[:shared_len] for k in st0.keys], [v[:shared_len] for v in st0.values])
                    slots = SlotCache(lean, n_slots, capacity, device, shared=shared)
                for s, st in zip(batch, states):
                    s.started, s.generator = now, _generator(s.request, device)
                    reason = _after_token(rules, s, choose(st.logits, s.request, s.generator))
                    if progress is not None:
                        progress(1)
                    if reason is not None:
                        yield s.index, rules.finish(s.tokens, s.stops, reason), time.perf_counter() - s.started
                        continue
                    slots.load(len(active), st.keys, st.values)
                    active.append(s)
            if not active:
                continue
            ids = torch.tensor([s.tokens[-1] for s in active], dtype=torch.long, device=device)
            logits = decode_step(lean, slots, ids, len(active))
            if progress is not None:
                progress(len(active))
            done = []
            for b, s in enumerate(active):
                reason = _after_token(rules, s, choose(logits[b], s.request, s.generator))
                if reason is not None:
                    done.append((b, reason))
            for b, reason in sorted(done, reverse=True):  # highest row first: moves never touch a done row
                s = active[b]
                yield s.index, rules.finish(s.tokens, s.stops, reason), time.perf_counter() - s.started
                release(b)


def _generate_plain(model, tokenizer, seqs, rules, device, batch_size, progress):
    """transformers' ``generate`` on batches of equal settings, longest prompts first, left padding."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stops(StoppingCriteria):
        def __init__(self, batch, n_prompt):
            self.batch, self.n_prompt = batch, n_prompt
            self.done = [False] * len(batch)

        def __call__(self, input_ids, scores, **kw):
            for r, s in enumerate(self.batch):
                if not self.done[r]:
                    self.done[r] = rules.hit_stop(input_ids[r, self.n_prompt:].tolist(), s.stops)
            return torch.tensor(self.done, device=input_ids.device)

    def settings(s: _Seq):
        r = s.request
        return (r.max_gen_toks, r.do_sample, r.temperature, r.top_p, r.top_k)

    groups: dict[tuple, list[_Seq]] = {}
    for s in sorted(seqs, key=lambda s: -len(s.prompt)):
        groups.setdefault(settings(s), []).append(s)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(rules.eos_ids, default=0)
    with torch.inference_mode():
        for group in groups.values():
            for start in range(0, len(group), batch_size):
                batch = group[start : start + batch_size]
                t0 = time.perf_counter()
                width = max(len(s.prompt) for s in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, s in enumerate(batch):
                    ids[r, width - len(s.prompt):] = torch.tensor(s.prompt)
                    mask[r, width - len(s.prompt):] = 1
                req = batch[0].request
                kw: dict[str, Any] = {"do_sample": bool(req.do_sample and req.temperature > 0)}
                if kw["do_sample"]:
                    kw.update(temperature=req.temperature, top_p=req.top_p, top_k=req.top_k or None)
                    torch.manual_seed(req.seed if req.seed is not None else torch.seed())
                out = model.generate(
                    input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=req.max_gen_toks,
                    stopping_criteria=StoppingCriteriaList([_Stops(batch, width)]), pad_token_id=pad,
                    eos_token_id=sorted(rules.eos_ids), use_cache=True, **kw,
                )
                seconds = time.perf_counter() - t0
                for r, s in enumerate(batch):
                    reason = None
                    for tok in out[r, width:].tolist():
                        reason = _after_token(rules, s, tok)
                        if reason is not None:
                            break
                    if progress is not None:
                        progress(len(s.tokens))
                    yield s.index, rules.finish(s.tokens, s.stops, reason or "length"), seconds / len(batch)
