"""Run generative items through a backend and score their answers (request kind ``generate_until``).

:func:`generate_items` turns each :class:`~sharpbench.data.task.GenItem` into
one :class:`~sharpbench.results.GenerationRequest` per sample, hands them to
the backend (all at once to a backend that streams results, so its scheduler
keeps every slot busy; in windows otherwise), and yields a
:class:`~sharpbench.results.GenItemResult` per item as soon as all its
samples are done: the answer extracted by every filter, correct per filter,
and the item's metrics after the filter pipeline (e.g. a majority vote).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sharpbench.answers.filters import FALLBACK
from sharpbench.answers.math import INVALID_ANSWER
from sharpbench.data.gen import sample_seed
from sharpbench.data.task import GenItem
from sharpbench.models.base import prefix_session, require
from sharpbench.results import GenerationRequest, GenItemResult, GenSample


class GreedyRepeatsWarning(UserWarning):
    """``repeats`` > 1 with greedy decoding: every sample would be the same text (generated once)."""


@dataclass
class GenStats:
    """Counts of one generative run, for the report (filled while items finish).

    Attributes
    ----------
    n_samples, n_tokens : int
        Samples generated and tokens in them.
    seconds : float
        Wall time spent generating.
    stop_reasons : dict
        Samples per stop reason (``"length"``: the stop sequence never appeared).
    unextracted : dict
        Per filter, the samples whose answer the filter could not extract (``"[invalid]"``).
    examples : dict
        Per filter, up to three (item id, generated text) pairs it could not extract from.
    """

    n_samples: int = 0
    n_tokens: int = 0
    seconds: float = 0.0
    stop_reasons: dict[str, int] = field(default_factory=dict)
    unextracted: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def add(self, res: GenItemResult) -> None:
        for s in res.samples:
            self.n_samples += 1
            self.n_tokens += s.generation.n_tokens
            self.stop_reasons[s.generation.stop_reason] = self.stop_reasons.get(s.generation.stop_reason, 0) + 1
            for name, answer in s.extracted.items():
                if answer in INVALID:
                    self.unextracted[name] = self.unextracted.get(name, 0) + 1
                    ex = self.examples.setdefault(name, [])
                    if len(ex) < 3:
                        ex.append((res.item_id, s.generation.text))


INVALID = (FALLBACK, INVALID_ANSWER)  # lm-eval's regex fallback, minerva's "no final answer"


def _sampled(item: GenItem) -> bool:
    return bool(item.do_sample and item.temperature > 0)


def sample_request(item: GenItem, index: int) -> GenerationRequest:
    """The request of sample ``index`` of ``item`` (its seed derives from the item's seed, id and index)."""
    sampled = _sampled(item)
    return GenerationRequest(
        prompt=item.prompt, until=item.until, max_gen_toks=item.max_gen_toks, do_sample=sampled,
        temperature=item.temperature if sampled else 0.0, top_p=item.top_p, top_k=item.top_k,
        seed=sample_seed(item.seed, item.item_id, index) if sampled else None, messages=item.messages,
    )


def needed_samples(item: GenItem, have: Sequence[GenSample] = ()) -> list[int]:
    """Sample indices to generate: those not in ``have``; greedy items need one sample at most (all are equal)."""
    if not _sampled(item):
        return [] if have else [0]
    stored = {s.index for s in have}
    return [k for k in range(item.repeats) if k not in stored]


def score_item(item: GenItem, samples: Mapping[int, tuple]) -> GenItemResult:
    """Extract and check the answers of one item's samples.

    ``samples`` maps sample index -> ``(Generation, seconds)``; a greedy item's
    one generation stands for every sample (``repeats`` copies).
    """
    if not _sampled(item):
        gen, sec = next(iter(samples.values()))
        samples = {k: (gen, sec / item.repeats) for k in range(item.repeats)}
    order = [samples[k] for k in range(item.repeats)]
    scored = item.scoring.score([g.text for g, _ in order], item.target)
    out = tuple(
        GenSample(
            index=k, generation=g, seconds=sec,
            extracted={f: per[k] for f, per in scored.extracted.items()},
            correct={f: float(per[k]) for f, per in scored.correct.items()},
        )
        for k, (g, sec) in enumerate(order)
    )
    return GenItemResult(item_id=item.item_id, gold=item.target, samples=out, metrics=dict(scored.metrics))


def generate_items(
    backend,
    items: Iterable[GenItem],
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    tokens: Callable[[int], None] | None = None,
    stats: GenStats | None = None,
    window: int | None = None,
    have: Mapping[int, Sequence[GenSample]] | None = None,
) -> Iterator[GenItemResult]:
    """Generate every sample of ``items`` and yield a :class:`GenItemResult` per item as it completes.

    Parameters
    ----------
    backend : Backend with ``generate`` (``generate_iter`` is used when present)
    items : iterable of GenItem
    batch_size : int
        Sequences the backend decodes together.
    progress : callable, optional
        ``progress(n_items_done)`` (cumulative) after each finished item.
    tokens : callable, optional
        ``tokens(n)`` with newly generated token counts (for a tokens/s display).
    stats : GenStats, optional
        Filled with counts as items finish.
    window : int, optional
        Requests per call for backends without ``generate_iter`` (default ``4 * batch_size``).
    have : mapping, optional
        Stored samples per item id: only the missing ones are generated, the
        item is scored over all of them.

    Raises
    ------
    CapabilityError
        If the backend cannot generate.
    """
    items = list(items)
    stored = [list((have or {}).get(it.item_id, ())) for it in items]
    for _, res in generate_indexed(backend, items, batch_size=batch_size, progress=progress, tokens=tokens,
                                   stats=stats, window=window, stored=stored):
        yield res


def generate_indexed(
    backend,
    items: Sequence[GenItem],
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    tokens: Callable[[int], None] | None = None,
    stats: GenStats | None = None,
    window: int | None = None,
    stored: Sequence[Sequence[GenSample]] | None = None,
) -> Iterator[tuple[int, GenItemResult]]:
    """:func:`generate_items` yielding ``(position in items, result)``: items of several tasks may share ids.

    ``stored`` holds each item's stored samples by position. All items decode
    in one stream, so items of many small tasks (57 MMLU subjects) fill the
    batch together.
    """
    require(backend, "generate_until")
    items = list(items)
    if any(it.repeats > 1 and not (it.do_sample and it.temperature > 0) for it in items):
        msg = ("repeats > 1 with greedy decoding: every sample is the same text (generated once); "
               "sample with --gen-kwargs do_sample=true,temperature=0.7 for self-consistency")
        warnings.warn(msg, GreedyRepeatsWarning, stacklevel=2)
    items = list(items)
    if stored is not None and len(stored) != len(items):
        raise ValueError(f"stored samples for {len(stored)} items, {len(items)} items given")
    reqs: list[GenerationRequest] = []
    owner: list[tuple[int, int]] = []
    got: list[dict[int, tuple]] = []
    need: list[int] = []
    for n, it in enumerate(items):
        mine = list(stored[n]) if stored is not None else []
        got.append({s.index: (s.generation, s.seconds) for s in mine})
        todo = needed_samples(it, mine)
        need.append(len(got[n]) + len(todo))
        for k in todo:
            reqs.append(sample_request(it, k))
            owner.append((n, k))
    done = 0

    def finish(n: int) -> GenItemResult:
        nonlocal done
        res = score_item(items[n], got[n])
        if stats is not None:
            stats.add(res)
        done += 1
        if progress is not None:
            progress(done)
        return res

    for n in range(len(items)):  # everything already stored: only re-scored
        if len(got[n]) == need[n]:
            yield n, finish(n)
    with prefix_session(backend):  # the few-shot prefix stays cached while prompts are admitted one by one
        for i, gen, sec in _stream(backend, reqs, batch_size, tokens, window or 4 * batch_size):
            n, k = owner[i]
            got[n][k] = (gen, sec)
            if stats is not None:
                stats.seconds += sec
            if len(got[n]) == need[n]:
                yield n, finish(n)


def _stream(backend, reqs, batch_size, tokens, window) -> Iterator[tuple[int, object, float]]:
    stream = getattr(backend, "generate_iter", None)
    if callable(stream):
        yield from stream(reqs, progress=tokens, batch_size=batch_size)
        return
    for start in range(0, len(reqs), window):
        chunk = reqs[start : start + window]
        t0 = time.perf_counter()
        out = backend.generate(chunk, progress=tokens)
        if len(out) != len(chunk):
            from sharpbench.models.errors import ScoringError

            raise ScoringError(f"backend returned {len(out)} generations for {len(chunk)} requests")
        each = (time.perf_counter() - t0) / max(len(chunk), 1)
        for j, gen in enumerate(out):
            yield start + j, gen, each
