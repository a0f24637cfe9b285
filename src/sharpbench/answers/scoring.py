"""How a generative item is scored: filter pipelines plus a metric, as lm-eval 0.4.13 scores ``generate_until``.

:class:`AnswerScoring` is pure data (frozen, hashable, with a stable :attr:`~AnswerScoring.key` for
content hashes). :meth:`AnswerScoring.score` takes one item's samples (its repeats) and gold answer
and gives, per filter, the item's metric as lm-eval's ``process_results`` computes it from
``filtered_resps[filter]`` (so ``majority_vote`` works across repeats), and per sample the extracted
answer, its correctness and whether extraction failed (a regex that did not match).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sharpbench.answers.errors import AnswerSpecError
from sharpbench.answers.filters import DEFAULT_PIPELINE, FilterPipeline
from sharpbench.answers.match import exact_match

__all__ = ["MetricSpec", "AnswerScoring", "ScoredAnswers", "METRICS"]

#: metric name -> the per-item values it gives (lm-eval's ``process_results`` keys).
METRICS: dict[str, tuple[str, ...]] = {
    "exact_match": ("exact_match",),
    "minerva_math": ("exact_match", "math_verify"),
}
_EXACT_MATCH_OPTIONS = ("ignore_case", "ignore_punctuation", "regexes_to_ignore", "ignore_numbers")
# metric_list keys lm-eval itself consumes (not passed to the metric function)
_LMEVAL_METRIC_KEYS = ("metric", "aggregation", "higher_is_better", "hf_evaluate")


@dataclass(frozen=True)
class MetricSpec:
    """A named per-item metric with its options.

    Parameters
    ----------
    name : str
        ``"exact_match"`` (lm-eval's ``exact_match_hf_evaluate`` with the options below) or
        ``"minerva_math"`` (lm-eval's minerva ``process_results``: ``exact_match`` by normalised
        answer and sympy equivalence, and ``math_verify``; the gold is the reference solution).
    ignore_case, ignore_punctuation, regexes_to_ignore, ignore_numbers
        ``exact_match``'s options, as in a task's ``metric_list``.
    """

    name: str = "exact_match"
    ignore_case: bool = False
    ignore_punctuation: bool = False
    regexes_to_ignore: tuple[str, ...] | None = None
    ignore_numbers: bool = False

    def __post_init__(self) -> None:
        if self.name not in METRICS:
            raise AnswerSpecError(f"unknown answer metric {self.name!r} (known: {', '.join(METRICS)})")
        for option in ("ignore_case", "ignore_punctuation", "ignore_numbers"):
            if not isinstance(getattr(self, option), bool):
                raise AnswerSpecError(f"exact_match: {option} must be true or false, not {getattr(self, option)!r}")
        if self.regexes_to_ignore is not None:
            if isinstance(self.regexes_to_ignore, str):
                raise AnswerSpecError("regexes_to_ignore must be a list of regexes, not one string")
            object.__setattr__(self, "regexes_to_ignore", tuple(self.regexes_to_ignore))
            for pattern in self.regexes_to_ignore:
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as err:
                    raise AnswerSpecError(f"exact_match: bad regex in regexes_to_ignore {pattern!r}: {err}") from None
        if self.name != "exact_match" and self.config() != {"metric": self.name}:
            raise AnswerSpecError(f"metric {self.name!r} takes no options")

    @property
    def names(self) -> tuple[str, ...]:
        """The per-item values this metric gives, the primary (correctness) one first."""
        return METRICS[self.name]

    def config(self) -> dict[str, Any]:
        """The metric and its non-default options, as a ``metric_list`` entry."""
        out: dict[str, Any] = {"metric": self.name}
        for option in _EXACT_MATCH_OPTIONS:
            value = getattr(self, option)
            if value not in (False, None):
                out[option] = list(value) if isinstance(value, tuple) else value
        return out

    def answer_of(self, filtered: str) -> tuple[str, bool]:
        """The answer this metric reads from a filtered answer, and whether it found one.

        ``exact_match`` compares the filtered answer itself; ``minerva_math`` reads the normalised
        text after "Final Answer: The final answer is" (``"[invalidanswer]"`` when absent).
        """
        if self.name == "minerva_math":
            from sharpbench.answers.math import INVALID_ANSWER, get_unnormalized_answer, normalize_final_answer

            raw = get_unnormalized_answer(filtered)
            return normalize_final_answer(raw), raw != INVALID_ANSWER
        return filtered, True

    def compute(self, filtered: str, gold: str) -> dict[str, float]:
        """The metric of one item: ``{name: value}`` for each of :attr:`names`."""
        if self.name == "minerva_math":
            from sharpbench.answers.math import minerva_scores

            return minerva_scores(filtered, gold)
        value = exact_match(
            filtered,
            gold,
            ignore_case=self.ignore_case,
            ignore_punctuation=self.ignore_punctuation,
            regexes_to_ignore=self.regexes_to_ignore,
            ignore_numbers=self.ignore_numbers,
        )
        return {"exact_match": value}

    @classmethod
    def from_lmeval_config(cls, metric_list: Sequence[Mapping[str, Any]] | None) -> MetricSpec:
        """The metric of a ``generate_until`` task's ``metric_list`` (None: lm-eval's default, ``exact_match``)."""
        if metric_list is None:
            return cls()
        entries = list(metric_list)
        if len(entries) != 1:
            names = [e.get("metric") if isinstance(e, Mapping) else e for e in entries]
            raise AnswerSpecError(f"one answer metric is supported per task (exact_match), got {names!r}")
        entry = entries[0]
        if not isinstance(entry, Mapping) or "metric" not in entry:
            raise AnswerSpecError(f"a metric_list entry needs a 'metric' key, got {entry!r}")
        if entry["metric"] != "exact_match":
            raise AnswerSpecError(f"unknown answer metric {entry['metric']!r} in metric_list (known: exact_match)")
        if entry.get("aggregation", "mean") != "mean":
            raise AnswerSpecError(
                f"exact_match: only the 'mean' aggregation is supported, got {entry['aggregation']!r}"
            )
        options = {k: v for k, v in entry.items() if k not in _LMEVAL_METRIC_KEYS}
        unknown = sorted(set(options) - set(_EXACT_MATCH_OPTIONS))
        if unknown:
            raise AnswerSpecError(
                f"exact_match: unknown option(s) {', '.join(unknown)} (known: {', '.join(_EXACT_MATCH_OPTIONS)})"
            )
        return cls("exact_match", **options)


@dataclass(frozen=True)
class ScoredAnswers:
    """One item scored: per filter and per sample.

    Attributes
    ----------
    answers : dict
        filter -> the item's answer as the metric compared it (``filtered_resps[filter]``; for
        ``minerva_math`` the normalised final answer of that text).
    metrics : dict
        ``"<metric>,<filter>"`` (e.g. ``"exact_match,strict-match"``) -> the item's value, as
        lm-eval's ``process_results`` gives it.
    extracted : dict
        filter -> per sample, the answer extracted from that sample alone.
    correct : dict
        filter -> per sample, whether that sample alone is correct (the primary metric is 1).
    unextracted : dict
        filter -> per sample, True where extraction failed (a regex did not match: ``"[invalid]"``;
        for ``minerva_math``, no "Final Answer" sentence).
    sample_metrics : dict
        ``"<metric>,<filter>"`` -> per sample, each metric of that sample alone.
    """

    answers: dict[str, str]
    metrics: dict[str, float]
    extracted: dict[str, tuple[str, ...]]
    correct: dict[str, tuple[bool, ...]]
    unextracted: dict[str, tuple[bool, ...]]
    sample_metrics: dict[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerScoring:
    """Answer extraction and scoring of a generative task: filter pipelines and a metric, as data.

    Parameters
    ----------
    filters : tuple of FilterPipeline
        Each ends in ``take_first`` (one answer per item, as lm-eval's metrics need); names unique.
        Default: lm-eval's ``"none"`` pipeline (the first sample).
    metric : MetricSpec
        Default: plain ``exact_match``.
    """

    filters: tuple[FilterPipeline, ...] = (DEFAULT_PIPELINE,)
    metric: MetricSpec = MetricSpec()

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", tuple(self.filters))
        if not self.filters:
            raise AnswerSpecError("answer scoring needs at least one filter pipeline")
        names = [p.name for p in self.filters]
        if len(set(names)) != len(names):
            raise AnswerSpecError(f"filter pipeline names must be unique, got {names!r}")
        for pipeline in self.filters:
            if not isinstance(pipeline, FilterPipeline):
                raise AnswerSpecError(f"not a FilterPipeline: {pipeline!r}")
            if not pipeline.single_answer:
                raise AnswerSpecError(
                    f"filter pipeline {pipeline.name!r} must end in 'take_first' (the metric needs one answer per item)"
                )
        if not isinstance(self.metric, MetricSpec):
            raise AnswerSpecError(f"not a MetricSpec: {self.metric!r}")

    @classmethod
    def from_lmeval_config(
        cls,
        filter_list: Sequence[Mapping[str, Any]] | None = None,
        metric_list: Sequence[Mapping[str, Any]] | None = None,
        *,
        process_results: str | None = None,
    ) -> AnswerScoring:
        """Build from an lm-eval task config's ``filter_list`` and ``metric_list`` (the YAML dicts).

        Parameters
        ----------
        filter_list : list of dict, optional
            None: lm-eval's default ``"none"`` pipeline (``take_first``).
        metric_list : list of dict, optional
            None: lm-eval's default for ``generate_until`` (plain ``exact_match``).
        process_results : str, optional
            ``"minerva_math"`` for the minerva tasks, whose ``process_results`` replaces the
            metric functions (``metric_list`` must then name only ``exact_match``/``math_verify``).
        """
        if filter_list is None:
            filters: tuple[FilterPipeline, ...] = (DEFAULT_PIPELINE,)
        else:
            filters = tuple(FilterPipeline.from_config(config) for config in filter_list)
        if process_results is None:
            return cls(filters, MetricSpec.from_lmeval_config(metric_list))
        if process_results not in METRICS or process_results == "exact_match":
            raise AnswerSpecError(f"unknown process_results {process_results!r} (known: minerva_math)")
        spec = MetricSpec(process_results)
        names = [e.get("metric") if isinstance(e, Mapping) else e for e in (metric_list or ())]
        if not set(names) <= set(spec.names):
            raise AnswerSpecError(f"{process_results} gives {', '.join(spec.names)}; metric_list asks for {names!r}")
        return cls(filters, spec)

    @property
    def key(self) -> str:
        """A stable string of the whole specification (canonical JSON), for content hashes."""
        config = {"filters": [p.to_config() for p in self.filters], "metric": self.metric.config()}
        return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """Every ``"<metric>,<filter>"`` key :meth:`score` gives, filters in order."""
        return tuple(f"{m},{p.name}" for p in self.filters for m in self.metric.names)

    def unextracted(
        self, samples: Sequence[str], *, choices: Sequence[str] | None = None
    ) -> dict[str, tuple[bool, ...]]:
        """filter -> per sample, True where no answer could be extracted (see :class:`ScoredAnswers`)."""
        return {p.name: tuple(not self._extract(p, s, choices)[1] for s in samples) for p in self.filters}

    def _extract(self, pipeline: FilterPipeline, sample: str, choices: Sequence[str] | None) -> tuple[str, bool]:
        filtered, matched = pipeline.extract(sample, choices=choices)
        answer, found = self.metric.answer_of(filtered)
        return answer, matched and found

    def score(self, samples: Sequence[str], gold: str, *, choices: Sequence[str] | None = None) -> ScoredAnswers:
        """Score one item.

        Parameters
        ----------
        samples : sequence of str
            The item's generations, in sample (repeat) order; at least one.
        gold : str
            The reference: ``doc_to_target`` for ``exact_match``, the solution (with its
            ``\\boxed{}`` answer) for ``minerva_math``. Not a string: ``str(gold)``, as lm-eval casts it.
        choices : sequence of str, optional
            The item's answer choices, for ``multi_choice_regex`` filters.
        """
        if isinstance(samples, str) or not samples:
            raise ValueError("score needs a non-empty sequence of samples (strings)")
        gold = gold if isinstance(gold, str) else str(gold)
        primary = self.metric.names[0]
        answers, metrics, extracted, correct, unextracted, sample_metrics = {}, {}, {}, {}, {}, {}
        for pipeline in self.filters:
            name = pipeline.name
            cache: dict[str, dict[str, float]] = {}  # filtered answer -> metric values (repeats agree often)
            item = pipeline.apply(samples, choices=choices)
            answers[name] = self.metric.answer_of(item)[0]
            for metric, value in self._compute(item, gold, cache).items():
                metrics[f"{metric},{name}"] = value
            per_sample = [pipeline.extract(sample, choices=choices) for sample in samples]
            read = [self.metric.answer_of(filtered) for filtered, _ in per_sample]
            values = [self._compute(filtered, gold, cache) for filtered, _ in per_sample]
            extracted[name] = tuple(answer for answer, _ in read)
            unextracted[name] = tuple(
                not (matched and found) for (_, matched), (_, found) in zip(per_sample, read, strict=True)
            )
            correct[name] = tuple(v[primary] == 1.0 for v in values)
            for metric in self.metric.names:
                sample_metrics[f"{metric},{name}"] = tuple(v[metric] for v in values)
        return ScoredAnswers(answers, metrics, extracted, correct, unextracted, sample_metrics)

    def _compute(self, filtered: str, gold: str, cache: dict[str, dict[str, float]]) -> dict[str, float]:
        if filtered not in cache:
            cache[filtered] = self.metric.compute(filtered, gold)
        return cache[filtered]
