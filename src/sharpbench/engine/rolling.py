"""Score whole texts (request kind ``loglikelihood_rolling``): perplexity and bits per byte as lm-eval 0.4.13.

Reference: ``lm_eval/models/huggingface.py`` (``HFLM.loglikelihood_rolling``),
``lm_eval/utils.py`` (``get_rolling_token_windows`` with ``context_len=1``,
``make_disjoint_window``) and ``lm_eval/api/metrics.py`` (``weighted_perplexity``,
``bits_per_byte``):

* the text is encoded with the backend's ``tok_encode`` (lm-eval's ``HFLM.tok_encode``);
* the first window predicts the first ``max_length`` tokens after the prefix
  token (BOS, else EOS); every further window predicts the next
  ``max_length`` tokens (or the rest) given the ``max_length - n + 1`` tokens
  before them (made disjoint: context, then the predicted tokens);
* an item's log-likelihood is the sum over its windows.

Each window is an ordinary :class:`~sharpbench.results.TokenRequest`, scored by
the backend's ``loglikelihood`` (the HF engine shares the prefixes of windows
itself). A result is stored as an :class:`~sharpbench.results.ItemResult` with
one "choice" (the whole text: its log-likelihood, whether every token was the
argmax, its token count) and the metrics ``loglik``, ``n_words``, ``n_bytes``:
the inputs of lm-eval's corpus-level aggregates, which are weighted means
(:func:`rolling_metrics`), not means of per-item values.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence

from sharpbench.engine.results import ChoiceResult, ItemResult
from sharpbench.models.base import TokenRequest
from sharpbench.models.errors import ScoringError

__all__ = ["ROLLING_METRICS", "rolling_metrics", "rolling_requests", "rolling_windows", "score_rolling"]

#: The metrics a rolling task reports (lm-eval's names), lower is better for all.
ROLLING_METRICS = ("word_perplexity", "byte_perplexity", "bits_per_byte")


def rolling_windows(tokens: Sequence[int], prefix_token: int, max_length: int) -> list[TokenRequest]:
    """lm-eval's disjoint rolling windows over ``tokens`` (``context_len=1``) as token requests.

    Parameters
    ----------
    tokens : sequence of int
        The whole text's tokens (every one of them is predicted once).
    prefix_token : int
        Context of the first token (lm-eval's ``prefix_token_id``).
    max_length : int
        Model window: each request's context + continuation is at most ``max_length + 1`` tokens.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    toks = list(tokens)
    if not toks:
        return []
    first = min(max_length, len(toks))
    out = [TokenRequest((int(prefix_token),), tuple(toks[:first]))]
    predicted = first
    while predicted < len(toks):  # pred_len = max_length - context_len + 1 = max_length
        n = min(len(toks) - predicted, max_length)
        end = predicted + n
        window = toks[max(end - max_length - 1, 0) : end - 1]  # lm-eval's input window (a python slice)
        ctx = window[: len(window) - (n - 1)]  # make_disjoint_window
        out.append(TokenRequest(tuple(ctx), tuple(toks[end - n : end])))
        predicted += n
    return out


def rolling_requests(backend, text: str) -> list[TokenRequest]:
    """The token requests of one text for ``backend`` (its ``tok_encode``, prefix token and window)."""
    tokens = backend.tok_encode(text)
    if not tokens:
        raise ScoringError(f"text {text[:40]!r} encodes to no tokens")
    return rolling_windows(tokens, backend.prefix_token_id, int(backend.max_length))


def score_rolling(
    backend,
    items: Iterable,
    *,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> Iterator[ItemResult]:
    """Score :class:`~sharpbench.data.task.RollingItem` objects; yield an :class:`ItemResult` per item.

    ``batch_size`` items' windows go to the backend per call; results are
    yielded as each call finishes, in item order within it.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    items = list(items)
    done = 0
    session = getattr(backend, "prefix_session", None)
    with session() if session is not None else contextlib.nullcontext():
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            per_item = [rolling_requests(backend, it.text) for it in batch]
            flat = [r for reqs in per_item for r in reqs]
            scored = backend.loglikelihood(flat)
            if len(scored) != len(flat):
                raise ScoringError(f"backend returned {len(scored)} results for {len(flat)} requests")
            offset = 0
            for it, reqs in zip(batch, per_item, strict=True):
                res = scored[offset : offset + len(reqs)]
                offset += len(reqs)
                yield rolling_result(it, res)
            done += len(batch)
            if progress is not None:
                progress(done)


def rolling_result(item, windows: Sequence[ChoiceResult]) -> ItemResult:
    """The stored result of one item from its windows' results (summed as lm-eval sums them)."""
    loglik = sum(float(w.loglik) for w in windows)
    whole = ChoiceResult(loglik=loglik, is_greedy=all(w.is_greedy for w in windows),
                         n_tokens=sum(int(w.n_tokens) for w in windows))
    metrics = {"loglik": loglik, "n_words": float(item.n_words), "n_bytes": float(item.n_bytes)}
    return ItemResult(item_id=item.item_id, gold=0, choices=(whole,), metrics=metrics)


def rolling_metrics(results: Iterable, *, bootstrap_iters: int = 0) -> dict[str, tuple[float, float]]:
    """lm-eval's aggregates of rolling results: ``{name: (value, stderr)}``.

    ``word_perplexity = exp(-sum(loglik) / sum(words))``, ``byte_perplexity =
    exp(-sum(loglik) / sum(bytes))``, ``bits_per_byte = -sum(loglik) / sum(bytes) / ln 2``
    (lm-eval's ``weighted_perplexity`` and ``bits_per_byte`` aggregations). lm-eval
    gives no standard error for these (it does not bootstrap them): NaN.

    Parameters
    ----------
    results : iterable of ItemResult
        Each with the metrics ``loglik``, ``n_words``, ``n_bytes`` (see :func:`rolling_result`).
    """
    rows = [(r.metrics["loglik"], r.metrics["n_words"], r.metrics["n_bytes"]) for r in results]
    if not rows:
        return {}
    ll = sum(r[0] for r in rows)
    words = sum(r[1] for r in rows)
    nbytes = sum(r[2] for r in rows)
    nan = float("nan")
    return {
        "word_perplexity": (math.exp(-ll / words), nan),
        "byte_perplexity": (math.exp(-ll / nbytes), nan),
        "bits_per_byte": (-ll / nbytes / math.log(2), nan),
    }
