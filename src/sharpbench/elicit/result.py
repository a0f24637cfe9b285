"""What an elicitation study returns: per model x task, every prompt ("arm") and every method's honest score.

Vocabulary
----------
arm
    One way of asking: a prompt format, a system message, direct or step-by-step
    generation, k samples with a majority vote. Each arm answers every item once
    (its per-item correctness is stored as an ordinary run).
method
    A family of arms that the user asks for (``plain``, ``variants``, ``cot``,
    ``self-consistency``, ``system-prompts``, ``vote``, ``probe``). A method with
    several arms (variants, system prompts) is scored *held out*: the arm is
    chosen on one half of the items and scored on the other, both ways, over
    repeated random splits. A method with one arm is its plain accuracy.
elicited
    The best of every prompt-based arm, chosen held out the same way: the honest
    maximum a user could have reached without seeing the evaluation items.

All scores are fractions in [0, 1]; intervals are 95% bootstrap percentile
intervals over items (the same resample for every quantity of a cell, so
differences and ratios are paired).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ArmScore:
    """One arm's accuracy on the cell's items.

    ``answers`` and ``correct`` are per item, in the cell's item order (``None``
    answer: nothing extracted).  ``tokens`` counts the tokens the model processed
    for this arm (prompt tokens plus generated tokens), ``seconds`` the wall time
    its items took to compute, kept in the store across calls and sessions
    (``None`` when they were computed outside a study, without a record).
    """

    method: str
    arm: str
    accuracy: float
    n_items: int
    tokens: int = 0
    seconds: float | None = None
    run_id: str | None = None
    answers: list[str | None] = field(default_factory=list, repr=False)
    correct: list[float] = field(default_factory=list, repr=False)


def spent_seconds(arms: list[Any]) -> float | None:
    """Compute seconds of ``arms`` (anything with ``seconds`` and ``run_id``), each stored run counted once.

    Two arms can read one run: gsm8k's step-by-step arm is the plain prompt itself for a model without a
    chat template.  ``None`` when there is no arm or an arm has no record.
    """
    if not arms or any(a.seconds is None for a in arms):
        return None
    runs = {a.run_id: a.seconds for a in arms if a.run_id is not None}
    return float(sum(runs.values()) + sum(a.seconds for a in arms if a.run_id is None))


@dataclass
class MethodScore:
    """One method's honest score in a cell, its interval, and its gain over the plain prompt.

    ``note`` says why a method was skipped (then ``score`` is ``None``), or how it
    was run ("chat template", "as a text preamble").
    """

    method: str
    score: float | None
    low: float | None = None
    high: float | None = None
    gain: float | None = None  # score - plain (paired)
    gain_low: float | None = None
    gain_high: float | None = None
    n_arms: int = 0
    best_arm: str | None = None  # the arm chosen on all items (the held-out score does not use this choice)
    tokens: int = 0
    seconds: float | None = None
    note: str | None = None

    @property
    def skipped(self) -> bool:
        return self.score is None


@dataclass
class Comparison:
    """A paired difference a - b with its interval (e.g. vote - best single prompt, probe - elicited)."""

    a: str
    b: str
    diff: float
    low: float
    high: float

    @property
    def separated(self) -> bool:
        """True when the interval excludes 0."""
        return self.low > 0 or self.high < 0


@dataclass
class CellResult:
    """Model x task: plain score, elicited maximum, ratio, prompt variance, every method and arm."""

    model: str
    task: str
    n_items: int
    plain: float
    plain_low: float
    plain_high: float
    elicited: float  # held-out best of every prompt arm
    elicited_low: float
    elicited_high: float
    ratio: float | None  # elicited / plain; None when plain is 0
    ratio_low: float | None
    ratio_high: float | None
    best_method: str  # the method whose held-out score is highest
    prompt_std: float  # std of accuracy across prompt arms (variants, system prompts, direct, cot)
    prompt_range: float  # max - min of the same
    methods: list[MethodScore] = field(default_factory=list)
    arms: list[ArmScore] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    params: float | None = None  # model parameters (for the ratio-vs-size plot)
    instruct: bool | None = None  # has a chat template
    dtype: str | None = None  # the backend's dtype (a study compares its arms in one dtype)
    gold: list[str | None] = field(default_factory=list, repr=False)  # each item's canonical right answer

    def method(self, name: str) -> MethodScore | None:
        return next((m for m in self.methods if m.method == name), None)

    @property
    def seconds(self) -> float | None:
        """The cell's compute time on the machine that ran it: every arm's seconds (the vote and the answer
        prior compute nothing of their own; two arms read from one stored run count it once); ``None`` when
        an arm has no record."""
        return spent_seconds([a for a in self.arms if a.method not in ("vote", "prior")])


@dataclass
class ElicitResult:
    """The whole study: one :class:`CellResult` per model x task, plus the settings that produced it."""

    cells: list[CellResult] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.cells))

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(c.task for c in self.cells))

    def cell(self, model: str, task: str) -> CellResult:
        for c in self.cells:
            if c.model == model and c.task == task:
                return c
        raise KeyError(f"no result for model {model!r} on task {task!r}")

    def to_dict(self, *, per_item: bool = False) -> dict[str, Any]:
        """JSON-ready dict; ``per_item`` keeps each arm's answers and correctness and the items' gold answers
        (what :func:`~sharpbench.elicit.summary.combine` needs to merge a cell computed in pieces)."""
        cells = []
        for c in self.cells:
            d = asdict(c)
            if not per_item:
                d.pop("gold")
                for a in d["arms"]:
                    a.pop("answers"), a.pop("correct")
            cells.append(d)
        return {"settings": self.settings, "cells": cells}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ElicitResult:
        cells = []
        for c in d.get("cells", []):
            c = dict(c)
            c["methods"] = [MethodScore(**m) for m in c.get("methods", [])]
            c["arms"] = [ArmScore(**a) for a in c.get("arms", [])]
            c["comparisons"] = [Comparison(**x) for x in c.get("comparisons", [])]
            cells.append(CellResult(**c))
        return cls(cells=cells, settings=dict(d.get("settings", {})))

    def save(self, path: str | Path, *, per_item: bool = False) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(per_item=per_item), indent=2))
        return p

    @classmethod
    def load(cls, path: str | Path) -> ElicitResult:
        return cls.from_dict(json.loads(Path(path).read_text()))
