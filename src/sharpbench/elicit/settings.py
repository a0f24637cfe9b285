"""The settings that shape an elicitation study's numbers (saved with its result).

A module of its own so that the study (:mod:`sharpbench.elicit.study`) and the
combining of saved results (:mod:`sharpbench.elicit.summary`) read the same
defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sharpbench.elicit.families import DEFAULT_METHODS


@dataclass
class ElicitSettings:
    """Everything that shapes a study's numbers (saved with the result)."""

    methods: str = DEFAULT_METHODS
    limit: int = 200
    variants: str = "default"
    sc_temperature: float = 0.7
    seed: int = 1234
    n_boot: int = 1000
    n_splits: int = 50
    probe_splits: int = 10
    batch_size: int | None = None
    max_gen_toks: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
