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

import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sharpbench.answers.filters import FALLBACK
from sharpbench.answers.math import INVALID_ANSWER
from sharpbench.data.gen import sample_seed
from sharpbench.data.task import GenItem
from sharpbench.models.base import require
from sharpbench.results import GenerationRequest, GenItemResult, GenSample

log = logging.getLogger(__name__)


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


def sample_requests(item: GenItem) -> list[GenerationRequest]:
    """One request per sample; greedy items with repeats get one (the samples would be identical)."""
    sampled = item.do_sample and item.temperature > 0
    n = item.repeats if sampled else 1
    return [
        GenerationRequest(
            prompt=item.prompt, until=item.until, max_gen_toks=item.max_gen_toks, do_sample=sampled,
            temperature=item.temperature if sampled else 0.0, top_p=item.top_p, top_k=item.top_k,
            seed=sample_seed(item.seed, item.item_id, k) if sampled else None, messages=item.messages,
        )
        for k in range(n)
    ]


def score_item(item: GenItem, generations: Sequence, seconds: Sequence[float]) -> GenItemResult:
    """Extract and check the answers of one item's samples (``generations`` in sample order)."""
    if len(generations) == 1 and item.repeats > 1:  # greedy: the same text for every sample
        generations, seconds = list(generations) * item.repeats, [seconds[0] / item.repeats] * item.repeats
    scored = item.scoring.score([g.text for g in generations], item.target)
    samples = tuple(
        GenSample(
            index=k, generation=g, seconds=sec,
            extracted={f: per[k] for f, per in scored.extracted.items()},
            correct={f: float(per[k]) for f, per in scored.correct.items()},
        )
        for k, (g, sec) in enumerate(zip(generations, seconds))
    )
    return GenItemResult(item_id=item.item_id, gold=item.target, samples=samples, metrics=dict(scored.metrics))


def generate_items(
    backend,
    items: Iterable[GenItem],
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    tokens: Callable[[int], None] | None = None,
    stats: GenStats | None = None,
    window: int | None = None,
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

    Raises
    ------
    CapabilityError
        If the backend cannot generate.
    """
    require(backend, "generate_until")
    items = list(items)
    if any(it.repeats > 1 and not (it.do_sample and it.temperature > 0) for it in items):
        msg = ("repeats > 1 with greedy decoding: every sample is the same text (generated once); "
               "sample with --gen-kwargs do_sample=true,temperature=0.7 for self-consistency")
        log.warning(msg)
        warnings.warn(msg, GreedyRepeatsWarning, stacklevel=2)
    reqs: list[GenerationRequest] = []
    owner: list[tuple[int, int]] = []
    for n, it in enumerate(items):
        for k, r in enumerate(sample_requests(it)):
            reqs.append(r)
            owner.append((n, k))
    need = [0] * len(items)
    for n, _ in owner:
        need[n] += 1
    got: list[dict[int, tuple]] = [{} for _ in items]
    done = 0
    for i, gen, sec in _stream(backend, reqs, batch_size, tokens, window or 4 * batch_size):
        n, k = owner[i]
        got[n][k] = (gen, sec)
        if len(got[n]) == need[n]:
            pairs = [got[n][j] for j in range(need[n])]
            res = score_item(items[n], [p[0] for p in pairs], [p[1] for p in pairs])
            got[n] = {}
            if stats is not None:
                stats.add(res)
                stats.seconds += sum(p[1] for p in pairs)
            done += 1
            if progress is not None:
                progress(done)
            yield res


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
