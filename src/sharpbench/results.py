"""Request and result types every layer shares (data, models, engine, store): the bottom of the import graph.

A backend turns :class:`TokenRequest` objects into :class:`ChoiceResult`
objects; the engine bundles them per item into :class:`ItemResult` objects,
which the store keeps. This module imports nothing from sharpbench.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

__all__ = [
    "ChoiceResult", "GenItemResult", "GenSample", "Generation", "GenerationRequest", "ItemResult", "TokenRequest",
]


@dataclass(frozen=True)
class TokenRequest:
    """Score ``continuation`` tokens after ``context`` tokens (both non-empty)."""

    context: tuple[int, ...]
    continuation: tuple[int, ...]


@dataclass(frozen=True)
class ChoiceResult:
    """Score of one choice's continuation given its context."""

    loglik: float  # sum of continuation token log-probabilities (natural log)
    is_greedy: bool  # every continuation token is the argmax at its position
    n_tokens: int  # number of continuation tokens scored


@dataclass(frozen=True)
class ItemResult:
    """All choices of one item plus its per-item metrics.

    ``metrics`` holds per-item values such as ``acc``, ``acc_norm``,
    ``acc_bytes``, ``brier`` (and ``acc_mutual_info`` when requested), each
    computed from ``choices`` exactly as lm-evaluation-harness does.
    """

    item_id: int
    gold: int
    choices: tuple[ChoiceResult, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    kind: ClassVar[str] = "multiple_choice"


# --------------------------------------------------------------------------- generation (request kind ``generate_until``)
@dataclass(frozen=True)
class GenerationRequest:
    """Generate text after ``prompt`` until a stop sequence, the end-of-text token or ``max_gen_toks``.

    Semantics follow lm-evaluation-harness 0.4.13's ``generate_until``: the
    prompt is tokenized as the backend tokenizes contexts (left-truncated to
    ``max_length - max_gen_toks`` tokens), the model's end-of-text token is an
    implicit stop, ``until`` strings are checked on the decoded text, and the
    returned text is cut before the earliest stop string.

    Attributes
    ----------
    prompt : str
        The full prompt (few-shot examples included; a chat template already applied when asked).
    until : tuple of str
        Stop sequences (empty strings are ignored).
    max_gen_toks : int
        Most tokens to generate.
    do_sample : bool
        Sample instead of greedy decoding.
    temperature, top_p, top_k : float, float, int
        Sampling parameters (``top_k=0``: no top-k cut); ignored when greedy.
    seed : int or None
        Seed of this request's sampler: the same seed gives the same sample
        whatever the batch it runs in.
    messages : tuple of (role, content) pairs or None
        The chat messages the prompt was rendered from, for backends that take
        messages (``/chat/completions``); ``None`` for plain prompts.
    """

    prompt: str
    until: tuple[str, ...] = ()
    max_gen_toks: int = 256
    do_sample: bool = False
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    messages: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if self.max_gen_toks < 1:
            raise ValueError(f"max_gen_toks must be >= 1, got {self.max_gen_toks}")
        if self.do_sample and self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")


STOP_REASONS = ("stop", "eos", "length")


@dataclass(frozen=True)
class Generation:
    """What a backend generated for one :class:`GenerationRequest`.

    Attributes
    ----------
    text : str
        The generated text cut before the earliest stop string (lm-eval's answer text).
    n_tokens : int
        Tokens the model generated (up to and including the one that completed a stop).
    stop_reason : {"stop", "eos", "length"}
        A stop string appeared, the end-of-text token was generated, or ``max_gen_toks`` was reached.
    """

    text: str
    n_tokens: int
    stop_reason: str

    def __post_init__(self) -> None:
        if self.stop_reason not in STOP_REASONS:
            raise ValueError(f"stop_reason must be one of {STOP_REASONS}, got {self.stop_reason!r}")


@dataclass(frozen=True)
class GenSample:
    """One sample (repeat) of a generative item after answer extraction.

    Attributes
    ----------
    index : int
        Sample number (0 .. repeats-1).
    generation : Generation
    extracted : dict of str to str
        The extracted answer per filter name (e.g. ``"strict-match"``); lm-eval's
        ``"[invalid]"`` where a regex did not match.
    correct : dict of str to float
        The metric (1.0/0.0 for exact match) per filter, for this sample alone.
    seconds : float
        Wall time attributed to this sample (its share of the batch).
    """

    index: int
    generation: Generation
    extracted: dict[str, str] = field(default_factory=dict)
    correct: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class GenItemResult:
    """All samples of one generative item plus its per-item metrics.

    ``metrics`` is keyed ``"<metric>,<filter>"`` as lm-eval reports them
    (``"exact_match,strict-match"``), the value after the filter pipeline
    (which may reduce several samples to one answer, e.g. a majority vote).
    ``gold`` is the reference answer text.
    """

    item_id: int
    gold: str
    samples: tuple[GenSample, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    kind: ClassVar[str] = "generate_until"
