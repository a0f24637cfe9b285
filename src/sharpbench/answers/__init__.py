"""Answer extraction and scoring of generated text, as data (lm-evaluation-harness 0.4.13 semantics).

A bottom-layer package: it imports nothing from sharpbench but :mod:`sharpbench.errors`, and no torch.

* :mod:`~sharpbench.answers.filters`: lm-eval's filter pipelines (``regex``, ``take_first``,
  ``majority_vote``, ...) as frozen data: :class:`FilterPipeline`.
* :mod:`~sharpbench.answers.match`: lm-eval's ``exact_match`` with its options.
* :mod:`~sharpbench.answers.math`: the minerva MATH answer check (normalised answer, sympy, Math-Verify).
* :mod:`~sharpbench.answers.scoring`: :class:`AnswerScoring` (filters + metric) scores one item.
"""

from __future__ import annotations

from sharpbench.answers.errors import AnswerSpecError
from sharpbench.answers.filters import DEFAULT_PIPELINE, FALLBACK, FilterPipeline
from sharpbench.answers.match import exact_match
from sharpbench.answers.scoring import AnswerScoring, MetricSpec, ScoredAnswers

__all__ = [
    "AnswerScoring",
    "AnswerSpecError",
    "DEFAULT_PIPELINE",
    "FALLBACK",
    "FilterPipeline",
    "MetricSpec",
    "ScoredAnswers",
    "exact_match",
]
