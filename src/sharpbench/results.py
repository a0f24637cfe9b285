"""Request and result types every layer shares (data, models, engine, store): the bottom of the import graph.

A backend turns :class:`TokenRequest` objects into :class:`ChoiceResult`
objects; the engine bundles them per item into :class:`ItemResult` objects,
which the store keeps. This module imports nothing from sharpbench.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ChoiceResult", "ItemResult", "TokenRequest"]


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
