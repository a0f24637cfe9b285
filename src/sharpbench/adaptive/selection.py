"""Next-item selection rules: maximum Fisher information, KL information, random,
with optional content balancing and randomesque exposure control."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sharpbench.adaptive.numeric import fisher_information, kl_information
from sharpbench.choices import SELECTION_METHODS
from sharpbench.errors import InputError

__all__ = ["SELECTION_METHODS", "SelectionError", "SelectionRule", "select_next"]


class SelectionError(InputError, ValueError):
    """A selection rule is misconfigured."""


@dataclass(frozen=True)
class SelectionRule:
    """How to pick the next item.

    Attributes
    ----------
    method : {"fisher", "kl", "random"}
        ``fisher``: maximum Fisher information at the current theta (Fluid
        Benchmarking's rule); ``kl``: Chang & Ying's KL information over a
        window that shrinks as ``1/sqrt(n)``; ``random``: uniform baseline.
    randomesque : int
        Exposure control: draw uniformly among the ``k`` best items (1 = off).
    balance : str, optional
        Metadata column for content balancing: the next item comes from the
        group whose share of administered items lags its share of the bank the
        most (Kingsbury & Zara's constrained CAT).
    """

    method: str = "fisher"
    randomesque: int = 1
    balance: str | None = None

    def __post_init__(self) -> None:
        if self.method not in SELECTION_METHODS:
            raise SelectionError(f"unknown selection method {self.method!r}; choose one of {SELECTION_METHODS}")
        if self.randomesque < 1:
            raise SelectionError(f"randomesque must be >= 1, got {self.randomesque}")


def _balanced_candidates(available: np.ndarray, groups: np.ndarray, administered: np.ndarray) -> np.ndarray:
    """Restrict ``available`` to the group that lags its bank share the most."""
    labels, codes = np.unique(groups, return_inverse=True)
    target = np.bincount(codes, minlength=len(labels)) / len(codes)
    n_admin = int(administered.sum())
    done = np.bincount(codes[administered], minlength=len(labels)) / max(n_admin, 1)
    open_groups = np.bincount(codes[available], minlength=len(labels)) > 0
    deficit = np.where(open_groups, target - done, -np.inf)
    best = int(np.argmax(deficit))  # ties: the first (alphabetical) group
    return available & (codes == best)


def select_next(
    theta: float,
    n_administered: int,
    available: np.ndarray,
    params: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    rule: SelectionRule,
    rng: np.random.Generator,
    *,
    groups: np.ndarray | None = None,
    administered: np.ndarray | None = None,
) -> int | None:
    """Index of the next item, or ``None`` when nothing is available.

    Parameters
    ----------
    theta : float
        Current ability estimate.
    n_administered : int
        Items answered so far (sets the KL window).
    available : bool array of shape (n_items,)
        Items that may still be given.
    params : (a, d, g, u), each of shape (n_items,)
    rule : SelectionRule
    rng : numpy Generator
        Used by ``random`` and randomesque draws.
    groups : array of shape (n_items,), optional
        Content labels (required when ``rule.balance`` is set).
    administered : bool array of shape (n_items,), optional
        Items given so far (content balancing).
    """
    available = np.asarray(available, dtype=bool)
    if available.shape != params[0].shape:
        raise SelectionError(f"available mask has shape {available.shape}, expected {params[0].shape}")
    if rule.balance is not None:
        if groups is None or administered is None:
            raise SelectionError("content balancing needs item groups and the administered mask")
        if available.any():
            available = _balanced_candidates(available, np.asarray(groups), np.asarray(administered, bool))
    idx = np.flatnonzero(available)
    if idx.size == 0:
        return None
    if rule.method == "random":
        return int(rng.choice(idx))
    sub = tuple(p[idx] for p in params)
    if rule.method == "fisher":
        score = fisher_information(theta, *sub)[0]
    else:
        score = kl_information(theta, n_administered, *sub)
    k = min(rule.randomesque, idx.size)
    if k == 1:
        return int(idx[int(np.argmax(score))])
    top = np.argpartition(-score, k - 1)[:k]
    return int(idx[int(rng.choice(top))])
