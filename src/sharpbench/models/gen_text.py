"""Text-side rules of lm-eval 0.4.13's ``generate_until`` shared by the llamacpp and openai backends.

* the prompt keeps its last ``max_length - max_gen_toks`` tokens
  (``HFLM.generate_until``'s ``left_truncate_len``; lm-eval asserts that
  this is positive);
* the answer text is cut before the earliest stop string
  (``lm_eval.models.utils.postprocess_generated_text`` splits on each stop
  string in turn, which leaves the text before the earliest occurrence;
  empty stop strings are ignored).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sharpbench.models.errors import BackendError

__all__ = ["cut_at_stop", "in_request_order", "prompt_window"]


def prompt_window(ids: Sequence[int], max_length: int, max_gen_toks: int) -> list[int]:
    """The last ``max_length - max_gen_toks`` tokens of ``ids`` (all of them when they fit).

    Raises
    ------
    BackendError
        When ``max_gen_toks`` leaves no room for a prompt in the context window.
    """
    room = int(max_length) - int(max_gen_toks)
    if room < 1:
        raise BackendError(
            f"max_gen_toks={max_gen_toks} leaves no room for a prompt in the {max_length}-token context window; "
            "lower max_gen_toks or raise max_length"
        )
    return list(ids[-room:])


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` before the earliest occurrence of any non-empty stop string, and whether one occurred."""
    cut = -1
    for s in stops:
        if s:
            at = text.find(s)
            if at >= 0 and (cut < 0 or at < cut):
                cut = at
    return (text, False) if cut < 0 else (text[:cut], True)


def in_request_order(stream: Iterable[tuple[int, Any, float]], n: int) -> list[Any]:
    """The generations of a ``generate_iter`` stream (``(index, generation, seconds)``) as a list in request order."""
    out: list[Any] = [None] * n
    for i, gen, _ in stream:
        out[i] = gen
    missing = [i for i, g in enumerate(out) if g is None]
    if missing:
        raise BackendError(f"the backend returned no generation for request(s) {missing[:5]}")
    return out
