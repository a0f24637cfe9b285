"""Answer-extraction filters as data: lm-evaluation-harness 0.4.13's filter pipelines, one item at a time.

lm-eval turns a model's raw generations into the answer a metric sees with named *filter
pipelines* (``filter_list`` in a task's YAML): each pipeline is a list of steps (``regex``,
``take_first``, ``majority_vote``, ...) applied in order to the list of an item's samples
(``repeats``). This module holds those steps as frozen, hashable dataclasses with the same
semantics, so a task declares its extraction as data and sharpbench applies it without lm-eval.

Two ways to apply a pipeline:

* :meth:`FilterPipeline.apply` does what lm-eval does to one item: the value it returns is
  ``filtered_resps[name]``, what ``process_results`` gives the metric (a string once the pipeline
  ends in ``take_first``, as every lm-eval task's does).
* :meth:`FilterPipeline.extract` applies the pipeline to one sample alone (reducing steps are
  the identity on one sample), and says whether every regex step matched: the per-sample answer
  that sharpbench stores and the flag that counts unextracted answers.

Steps supported (lm-eval's registered names): ``regex``, ``multi_choice_regex``, ``take_first``,
``take_first_k``, ``majority_vote``, ``lowercase``, ``uppercase``, ``remove_whitespace``.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

from sharpbench.answers.errors import AnswerSpecError

__all__ = [
    "FALLBACK",
    "DEFAULT_PIPELINE",
    "FilterPipeline",
    "Step",
    "Regex",
    "MultiChoiceRegex",
    "TakeFirst",
    "TakeFirstK",
    "MajorityVote",
    "Lowercase",
    "Uppercase",
    "RemoveWhitespace",
    "STEPS",
]

#: lm-eval's ``RegexFilter`` fallback: the answer of a sample the regex did not match.
FALLBACK = "[invalid]"


def _compile(pattern: str, function: str, option: str = "regex_pattern") -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise AnswerSpecError(f"filter {function!r}: {option} must be a string, not {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as err:
        raise AnswerSpecError(f"filter {function!r}: bad {option} '{pattern}': {err}") from None


def _pick(regex: re.Pattern[str], text: str, group_select: int) -> str | None:
    """lm-eval's match selection: ``findall``, the ``group_select``-th match, the first non-empty group.

    Returns None where lm-eval returns the fallback (no match, or only empty groups), and also where
    ``group_select`` is out of range (lm-eval raises ``IndexError`` there; sharpbench counts the sample
    as unextracted instead of failing the run).
    """
    matches = regex.findall(text)
    if not matches or not -len(matches) <= group_select < len(matches):
        return None
    match = matches[group_select]
    if isinstance(match, tuple):  # several groups (alternation): the first that matched
        match = next((m for m in match if m), None)
        if match is None:
            return None
    return match.strip()


class Step:
    """A filter step; subclasses are frozen dataclasses whose fields are lm-eval's keyword arguments.

    ``function`` is lm-eval's registered name. A *mapping* step (``reduces = False``) turns each
    sample into one string with :meth:`one` (None: no match, the fallback is used); a *reducing*
    step changes the list of samples as a whole with :meth:`apply`.
    """

    function: ClassVar[str]
    reduces: ClassVar[bool] = False

    def one(self, text: str, choices: Sequence[str] | None) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def fallback_for(self, text: str) -> str:
        """The string a sample becomes when :meth:`one` returns None."""
        return text

    def apply(self, value: tuple[str, ...], choices: Sequence[str] | None = None) -> Any:
        """lm-eval's ``Filter.apply`` on one item's responses."""
        out = []
        for text in value:
            got = self.one(text if isinstance(text, str) else "", choices)
            out.append(self.fallback_for(text) if got is None else got)
        return tuple(out)

    def config(self) -> dict[str, Any]:
        """The step as lm-eval's YAML writes it: ``{"function": name, **kwargs}``."""
        kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items() if not k.startswith("_")}
        return {"function": self.function, **kwargs}


@dataclass(frozen=True)
class Regex(Step):
    """lm-eval's ``regex`` filter (``RegexFilter``): the ``group_select``-th ``findall`` match, stripped.

    Where a match is a tuple (a pattern with several groups, e.g. an alternation
    ``(a)|(b)``), its first non-empty group is taken; a sample without a match (or with only
    empty groups) becomes ``fallback``.
    """

    function: ClassVar[str] = "regex"
    regex_pattern: str = r"#### (\-?[0-9\.\,]+)"
    group_select: int = 0
    fallback: str = FALLBACK
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _compile(self.regex_pattern, self.function))

    def one(self, text: str, choices: Sequence[str] | None) -> str | None:
        return _pick(self._regex, text, self.group_select)

    def fallback_for(self, text: str) -> str:
        # lm-eval strips a match but not the fallback, except when every group of a tuple match was
        # empty: then the fallback goes through the same ``.strip()`` as a match.
        matches = self._regex.findall(text)
        if (
            matches
            and -len(matches) <= self.group_select < len(matches)
            and isinstance(matches[self.group_select], tuple)
        ):
            return self.fallback.strip()
        return self.fallback


@lru_cache(maxsize=1)
def _punctuation_table() -> dict[int, None]:
    return dict.fromkeys(i for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P"))


@dataclass(frozen=True)
class MultiChoiceRegex(Step):
    """lm-eval's ``multi_choice_regex`` filter: a regex, else the text of a choice, else ``": X"``.

    Needs the item's answer choices (``choices=`` of :meth:`FilterPipeline.apply`). When
    ``regex_pattern`` does not match, the response (after ``regexes_to_ignore``, case and Unicode
    punctuation folding) is searched for a choice's text, which maps to ``"(A)"``, ``"(B)"``, ...;
    then for a bare letter after a colon (``": B"`` -> ``"(B)"``).
    """

    function: ClassVar[str] = "multi_choice_regex"
    regex_pattern: str = r"#### (\-?[0-9\.\,]+)"
    group_select: int = 0
    fallback: str = FALLBACK
    ignore_case: bool = False
    ignore_punctuation: bool = False
    regexes_to_ignore: tuple[str, ...] | None = None
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _compile(self.regex_pattern, self.function))
        if self.regexes_to_ignore is not None:
            object.__setattr__(self, "regexes_to_ignore", tuple(self.regexes_to_ignore))
            for pattern in self.regexes_to_ignore:
                _compile(pattern, self.function, "regexes_to_ignore")

    def _fold(self, text: str) -> str:
        for pattern in self.regexes_to_ignore or ():
            text = re.sub(pattern, "", text)
        if self.ignore_case:
            text = text.lower()
        if self.ignore_punctuation:
            text = text.translate(_punctuation_table())
        return text

    def _find(self, regex: re.Pattern[str], text: str, convert: Mapping[str, str]) -> str:
        matches = regex.findall(text)
        if not matches or not -len(matches) <= self.group_select < len(matches):
            return ""
        match = matches[self.group_select]
        if isinstance(match, tuple):
            match = next((m for m in match if m), "")
            if not match:
                return ""
        match = match.strip()
        return convert.get(match, match) if match else match

    def one(self, text: str, choices: Sequence[str] | None) -> str | None:
        if choices is None:
            raise AnswerSpecError("filter 'multi_choice_regex' needs the item's answer choices (choices=...)")
        to_letter: dict[str, str] = {}
        letters: list[str] = []
        for i, choice in enumerate(choices):
            letter = chr(ord("A") + i)
            to_letter[self._fold(choice.strip())] = f"({letter})"
            letters.append(letter)
        # longest first, so a choice that is a prefix of another cannot shadow it (lm-eval does the same)
        by_text = re.compile("|".join(sorted((re.escape(t) for t in to_letter), key=len, reverse=True)))
        by_letter = re.compile(rf":[\s]*({'|'.join(letters)})")
        match = self._find(self._regex, text, {})
        if not match:
            match = self._find(by_text, self._fold(text), to_letter)
        if not match:
            match = self._find(by_letter, text, {letter: f"({letter})" for letter in letters})
        return match or None

    def fallback_for(self, text: str) -> str:
        return self.fallback


@dataclass(frozen=True)
class TakeFirst(Step):
    """lm-eval's ``take_first``: the first sample; the item's answer is then one string."""

    function: ClassVar[str] = "take_first"
    reduces: ClassVar[bool] = True

    def apply(self, value: tuple[str, ...], choices: Sequence[str] | None = None) -> str:
        if not value:
            raise ValueError("take_first: the item has no samples")
        return value[0]


@dataclass(frozen=True)
class TakeFirstK(Step):
    """lm-eval's ``take_first_k``: the first ``k`` samples (at least ``k`` are needed)."""

    function: ClassVar[str] = "take_first_k"
    reduces: ClassVar[bool] = True
    k: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
            raise AnswerSpecError(f"filter 'take_first_k': k must be a positive integer, not {self.k!r}")

    def apply(self, value: tuple[str, ...], choices: Sequence[str] | None = None) -> tuple[str, ...]:
        if len(value) < self.k:
            raise ValueError(f"take_first_k: needs at least k={self.k} samples per item (repeats), got {len(value)}")
        return tuple(value[: self.k])


@dataclass(frozen=True)
class MajorityVote(Step):
    """lm-eval's ``majority_vote``: the most frequent sample (ties: the one seen first), as a 1-tuple."""

    function: ClassVar[str] = "majority_vote"
    reduces: ClassVar[bool] = True

    def apply(self, value: tuple[str, ...], choices: Sequence[str] | None = None) -> tuple[str, ...]:
        return (Counter(value).most_common(1)[0][0],)


@dataclass(frozen=True)
class Lowercase(Step):
    """lm-eval's ``lowercase``: ``str.lower`` of each sample."""

    function: ClassVar[str] = "lowercase"

    def one(self, text: str, choices: Sequence[str] | None) -> str:
        return text.lower()


@dataclass(frozen=True)
class Uppercase(Step):
    """lm-eval's ``uppercase``: ``str.upper`` of each sample."""

    function: ClassVar[str] = "uppercase"

    def one(self, text: str, choices: Sequence[str] | None) -> str:
        return text.upper()


@dataclass(frozen=True)
class RemoveWhitespace(Step):
    """lm-eval's ``remove_whitespace``: leading and trailing whitespace stripped from each sample."""

    function: ClassVar[str] = "remove_whitespace"

    def one(self, text: str, choices: Sequence[str] | None) -> str:
        return text.strip()


#: lm-eval's registered filter name -> the step class that implements it.
STEPS: dict[str, type[Step]] = {
    cls.function: cls
    for cls in (Regex, MultiChoiceRegex, TakeFirst, TakeFirstK, MajorityVote, Lowercase, Uppercase, RemoveWhitespace)
}


def _step_from_config(config: Mapping[str, Any], pipeline: str) -> Step:
    if not isinstance(config, Mapping) or "function" not in config:
        raise AnswerSpecError(f"filter pipeline {pipeline!r}: each step needs a 'function' key, got {config!r}")
    function = config["function"]
    if not isinstance(function, str) or function not in STEPS:
        raise AnswerSpecError(
            f"filter pipeline {pipeline!r}: unknown filter function {function!r} (known: {', '.join(sorted(STEPS))})"
        )
    kwargs = {k: v for k, v in config.items() if k != "function"}
    try:
        return STEPS[function](**kwargs)
    except TypeError:
        known = [f for f in STEPS[function].__dataclass_fields__ if not f.startswith("_")]
        bad = sorted(set(kwargs) - set(known))
        raise AnswerSpecError(
            f"filter {function!r} in pipeline {pipeline!r}: unknown option(s) {', '.join(bad)}"
            f" (known: {', '.join(known) or 'none'})"
        ) from None


@dataclass(frozen=True)
class FilterPipeline:
    """One named lm-eval filter pipeline (an entry of a task's ``filter_list``).

    Parameters
    ----------
    name : str
        The filter's name, as in lm-eval's metric keys (``"exact_match,strict-match"``).
    steps : tuple of Step
        Applied in order. Nothing may follow ``take_first`` (lm-eval would iterate over the
        characters of the answer).
    """

    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise AnswerSpecError(f"a filter pipeline needs a non-empty name, got {self.name!r}")
        object.__setattr__(self, "steps", tuple(self.steps))
        for i, step in enumerate(self.steps):
            if not isinstance(step, Step):
                raise AnswerSpecError(f"filter pipeline {self.name!r}: step {i} is not a filter step: {step!r}")
            if isinstance(step, TakeFirst) and i != len(self.steps) - 1:
                after = self.steps[i + 1].function
                raise AnswerSpecError(
                    f"filter pipeline {self.name!r}: {after!r} follows 'take_first', which must come last"
                )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FilterPipeline:
        """Build from lm-eval's YAML form ``{"name": ..., "filter": [{"function": ..., **kwargs}, ...]}``.

        Raises
        ------
        AnswerSpecError
            (a ``ValueError``) for an unknown filter function or option, a bad regex, a missing key.
        """
        if not isinstance(config, Mapping) or "name" not in config or "filter" not in config:
            raise AnswerSpecError(f"a filter pipeline needs 'name' and 'filter' keys, got {config!r}")
        name = config["name"]
        steps = config["filter"]
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
            raise AnswerSpecError(f"filter pipeline {name!r}: 'filter' must be a list of steps, got {steps!r}")
        return cls(name, tuple(_step_from_config(step, name) for step in steps))

    def to_config(self) -> dict[str, Any]:
        """The pipeline in lm-eval's YAML form (inverse of :meth:`from_config`)."""
        return {"name": self.name, "filter": [step.config() for step in self.steps]}

    @property
    def single_answer(self) -> bool:
        """True when the pipeline ends in ``take_first``, so that :meth:`apply` gives one string."""
        return bool(self.steps) and isinstance(self.steps[-1], TakeFirst)

    @property
    def has_regex(self) -> bool:
        """True when some step can fail to match (and then gives its fallback)."""
        return any(isinstance(step, (Regex, MultiChoiceRegex)) for step in self.steps)

    def apply(self, samples: Sequence[str], *, choices: Sequence[str] | None = None) -> str | tuple[str, ...]:
        """lm-eval's ``filtered_resps[name]`` of one item: the answer its metric sees.

        Parameters
        ----------
        samples : sequence of str
            The item's generations, in sample (repeat) order.
        choices : sequence of str, optional
            The item's answer choices; only ``multi_choice_regex`` needs them.

        Returns
        -------
        str or tuple of str
            One string when the pipeline ends in ``take_first``; otherwise the remaining samples.
        """
        if isinstance(samples, str):
            raise TypeError("samples must be a sequence of strings, not one string")
        value: Any = tuple(samples)
        for step in self.steps:
            value = step.apply(value, choices)
        return value

    def extract(self, sample: str, *, choices: Sequence[str] | None = None) -> tuple[str, bool]:
        """The pipeline applied to one sample alone, and whether every regex step matched.

        Reducing steps (``take_first``, ``take_first_k``, ``majority_vote``) leave a single sample as
        it is, so this is the answer lm-eval would give for an item with that one generation.

        Returns
        -------
        answer : str
            The extracted answer (``"[invalid]"``, or the step's fallback, where a regex did not match).
        matched : bool
            False when some regex step found nothing and its fallback was used.
        """
        text, matched = sample, True
        for step in self.steps:
            if step.reduces:
                continue
            got = step.one(text, choices)
            if got is None:
                matched = False
                text = step.fallback_for(text)
            else:
                text = got
        return text, matched


#: lm-eval's pipeline when a task has no ``filter_list``: ``"none"``, the first sample.
DEFAULT_PIPELINE = FilterPipeline("none", (TakeFirst(),))
