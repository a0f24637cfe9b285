"""Generative tasks (request kind ``generate_until``): a prompt in, the model's own words out.

A :class:`GenTaskSpec` extends :class:`~sharpbench.data.base.TaskSpec` with what
lm-eval 0.4.13's ``output_type: generate_until`` configs hold: stop sequences
and ``max_gen_toks`` (``generation_kwargs``), ``repeats``, fixed few-shot
exemplars (``fewshot_config.samples``) and the filter pipelines + metric that
extract and check the answer (:class:`sharpbench.answers.AnswerScoring`).

Prompt assembly follows ``ConfigurableTask.fewshot_context`` for generation
without a chat template: description + each few-shot example rendered as
``doc_to_text + target_delimiter + doc_to_target + fewshot_delimiter`` +
``doc_to_text(doc)``; with a chat template (:meth:`Task.with_style`) the
messages are built and rendered by :mod:`sharpbench.data.chat`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sharpbench.data.base import DEFAULT_FEWSHOT_SEED, Doc, Task, TaskSpec
from sharpbench.data.chat import PromptStyle
from sharpbench.data.errors import DataFileError, MissingDataError, TaskError
from sharpbench.data.task import GenItem

GEN_KWARGS = ("max_gen_toks", "do_sample", "temperature", "top_p", "top_k", "until")


def _no_choices(doc: Doc) -> list[str]:
    return []


@dataclass(frozen=True, kw_only=True)
class GenTaskSpec(TaskSpec):
    """A generative task: everything of :class:`TaskSpec` that applies, plus generation and scoring.

    Attributes (in addition to :class:`TaskSpec`'s)
    ----------
    scoring : sharpbench.answers.AnswerScoring
        Filter pipelines and metric.
    until : tuple of str
        Stop sequences (lm-eval's ``generation_kwargs.until``).
    max_gen_toks : int
        lm-eval's default is 256.
    do_sample, temperature : greedy by default
    repeats : int
        Samples per item.
    fewshot_samples : tuple of dict, optional
        Fixed few-shot documents (lm-eval's ``fewshot_config.samples``, taken
        in order as its ``first_n`` sampler does); ``None``: drawn from the
        few-shot split as for multiple choice.
    gen_prefix : str
        Text the answer starts with, appended to the prompt (lm-eval's ``gen_prefix``).
    """

    doc_to_choice: Callable[[Doc], list[str]] = _no_choices
    scoring: Any = None
    until: tuple[str, ...] = ()
    max_gen_toks: int = 256
    do_sample: bool = False
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repeats: int = 1
    fewshot_samples: tuple[Doc, ...] | None = None
    gen_prefix: str = ""

    kind = "generate_until"


@dataclass(frozen=True)
class GenOptions:
    """Per-run settings of generative tasks (the CLI's ``--gen-kwargs``, ``--repeats`` and ``--seed``).

    Attributes
    ----------
    gen_kwargs : mapping
        Overrides of ``max_gen_toks``, ``do_sample``, ``temperature``, ``top_p``, ``top_k``, ``until``.
    repeats : int, optional
        Samples per item (default: the task's).
    seed : int
        Base seed of sampled runs (each item and sample derives its own).
    """

    gen_kwargs: Mapping[str, Any] = field(default_factory=dict)
    repeats: int | None = None
    seed: int = DEFAULT_FEWSHOT_SEED

    def __post_init__(self) -> None:
        bad = sorted(set(self.gen_kwargs) - set(GEN_KWARGS))
        if bad:
            raise TaskError(f"unknown generation setting(s) {', '.join(bad)}; known: {', '.join(GEN_KWARGS)}")
        if self.repeats is not None and self.repeats < 1:
            raise TaskError(f"repeats must be >= 1, got {self.repeats}")


def sample_seed(base: int, item_id: int, sample: int) -> int:
    """The seed of one sample of one item: independent of batch, order and other items."""
    h = hashlib.sha256(f"{base}:{item_id}:{sample}".encode()).digest()
    return int.from_bytes(h[:4], "little")


class GenTask(Task):
    """A generative benchmark with a fixed number of few-shot examples and run options.

    Parameters
    ----------
    spec : GenTaskSpec
    num_fewshot : int, optional
        ``None``: the task's default.
    fewshot_seed : int
    options : GenOptions, optional
    """

    kind = "generate_until"

    def __init__(
        self,
        spec: GenTaskSpec,
        num_fewshot: int | None = None,
        fewshot_seed: int = DEFAULT_FEWSHOT_SEED,
        options: GenOptions | None = None,
    ) -> None:
        if spec.scoring is None:
            raise TaskError(f"task {spec.name}: a generative task needs a scoring (filters and metric)")
        super().__init__(spec, num_fewshot, fewshot_seed)
        self.options = options or GenOptions()
        if spec.fewshot_samples is not None and self.num_fewshot > len(spec.fewshot_samples):
            raise TaskError(
                f"task {spec.name}: {self.num_fewshot} few-shot examples requested, "
                f"the task has {len(spec.fewshot_samples)} fixed ones"
            )

    def with_options(self, options: GenOptions) -> GenTask:
        """The same task with other run options (a new object; built items are not shared)."""
        new = GenTask(self.spec, self.num_fewshot, self.fewshot_seed, options)
        new.style = self.style
        return new

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict[str, Any]:
        """The generation settings in force: the task's, overridden by the run options."""
        s: GenTaskSpec = self.spec  # type: ignore[assignment]
        out = {
            "until": tuple(s.until), "max_gen_toks": s.max_gen_toks, "do_sample": s.do_sample,
            "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k,
        }
        for k, v in self.options.gen_kwargs.items():
            out[k] = tuple(v) if k == "until" else v
        out["repeats"] = self.options.repeats or s.repeats
        return out

    @property
    def metric_names(self) -> list[str]:
        return list(self.spec.scoring.metric_keys)

    @property
    def template_hash(self) -> str:
        """sha256 of the prompt definition, the generation settings, the scoring and the chat setup."""
        payload = {
            "base": super().template_hash,
            "kind": self.kind,
            # repeats stay out: a run with more samples extends the same run (samples are stored one by one)
            "settings": {k: v for k, v in self.settings().items() if k != "repeats"},
            "seed": self.options.seed if self.settings()["do_sample"] else None,
            "scoring": self.spec.scoring.key,
            "gen_prefix": self.spec.gen_prefix,
            "fewshot_samples": self.spec.fewshot_samples is not None,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"GenTask({self.name!r}, num_fewshot={self.num_fewshot}, split={self.split!r})"

    # ------------------------------------------------------------------ prompts
    def fewshot_docs(self) -> list[Doc]:
        fixed = self.spec.fewshot_samples
        return list(fixed) if fixed is not None else super().fewshot_docs()

    def _sample(self, rnd: random.Random, pool: Sequence[Doc], doc: Doc) -> Sequence[Doc]:
        if self.spec.fewshot_samples is not None:  # lm-eval's first_n over the fixed samples
            return list(pool[: self.num_fewshot])
        return super()._sample(rnd, pool, doc)

    def _shot(self, doc: Doc) -> tuple[str, str]:
        """(question, answer) text of one few-shot example."""
        target = self.spec.doc_to_target(doc)
        if isinstance(target, list):
            target = target[0]
        return str(self.spec.doc_to_text(doc)), str(target)

    def build_item(self, index: int, doc: Doc, rnd: random.Random | None = None) -> GenItem:
        s: GenTaskSpec = self.spec  # type: ignore[assignment]
        try:
            shots = [self._shot(fs) for fs in self._sample(rnd, self.fewshot_docs(), doc)] if self.num_fewshot else []
            question = str(s.doc_to_text(doc))
            style = self.style or PromptStyle()
            prompt = style.build(question, shots, description=s.description, target_delimiter=s.target_delimiter,
                                 fewshot_delimiter=s.fewshot_delimiter, gen_prefix=s.gen_prefix or None)
            target = s.doc_to_target(doc)
            if isinstance(target, list):
                target = target[0]
            st = self.settings()
            meta = dict(s.doc_metadata(doc)) if s.doc_metadata else {}
            return GenItem(
                item_id=index, prompt=prompt.text, target=str(target), scoring=s.scoring, until=tuple(st["until"]),
                max_gen_toks=int(st["max_gen_toks"]), do_sample=bool(st["do_sample"]),
                temperature=float(st["temperature"]), top_p=float(st["top_p"]), top_k=int(st["top_k"]),
                repeats=int(st["repeats"]), messages=prompt.messages, metadata=meta, seed=self.options.seed,
            )
        except (MissingDataError, DataFileError):
            raise
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TaskError(f"task {self.name}, document {index}: {exc}") from exc

    def items(self, limit: int | None = None) -> list[GenItem]:  # type: ignore[override]
        docs = self.docs()
        if limit is not None and limit < 0:
            raise TaskError(f"limit must be >= 0, got {limit}")
        if not docs:
            raise TaskError(f"task {self.name}: the '{self.split}' split has no documents; there is nothing to evaluate")
        n = len(docs) if limit is None else min(int(limit), len(docs))
        if len(self._items) < n:
            rnd = random.Random(self.fewshot_seed) if self.num_fewshot > 0 else None
            self._items = [self.build_item(i, d, rnd) for i, d in enumerate(docs[:n])]
        return self._items[:n]


def make_task(spec: TaskSpec, num_fewshot: int | None = None, options: GenOptions | None = None) -> Task:
    """The task object for ``spec``: a :class:`GenTask` for generative specs, else a multiple-choice :class:`Task`."""
    if isinstance(spec, GenTaskSpec):
        return GenTask(spec, num_fewshot, options=options)
    return Task(spec, num_fewshot)


def with_gen_options(tasks: Sequence[Task], options: GenOptions | None) -> list[Task]:
    """Apply run options to the generative tasks of a list (multiple-choice tasks pass through)."""
    if options is None:
        return list(tasks)
    return [t.with_options(options) if isinstance(t, GenTask) or (
        getattr(t, "kind", "") == "generate_until" and hasattr(t, "with_options")) else t for t in tasks]


def replace_spec(spec: GenTaskSpec, **changes: Any) -> GenTaskSpec:
    """``dataclasses.replace`` for specs (kept here so callers need not import dataclasses)."""
    return dataclasses.replace(spec, **changes)
