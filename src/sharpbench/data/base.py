"""The :class:`Task`: documents in, loglikelihood requests out, as lm-eval 0.4.13 builds them.

A :class:`TaskSpec` holds everything that defines a multiple-choice task (how a
document becomes a prompt, its choices and its gold answer, which splits exist
and how few-shot examples are drawn); a :class:`Task` is a spec bound to a
number of few-shot examples, and turns documents into :class:`~sharpbench.data.task.Item`.

Prompt assembly follows ``lm_eval.api.task.ConfigurableTask.fewshot_context`` and
``construct_requests`` of lm-evaluation-harness 0.4.13 for ``output_type:
multiple_choice`` without chat templates:

* context = description + each few-shot example rendered as
  ``doc_to_text + target_delimiter + answer + fewshot_delimiter`` + ``doc_to_text(doc)``;
* one request per choice, continuation = ``target_delimiter + choice``;
* "multiple input" tasks (Winogrande) instead put each choice in the context
  and share one continuation ``target_delimiter + doc_to_target(doc)``.

Few-shot sampling reproduces lm-eval's samplers: ``first_n`` takes the first
documents of the few-shot split; ``default`` draws with ``random.Random(seed)``
(seed 1234 as ``simple_evaluate``), one generator shared by the documents in order.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sharpbench.data.errors import DataFileError, MissingDataError, TaskError
from sharpbench.data.task import Item, Request

Doc = dict[str, Any]
DocLoader = Callable[[str], list[Doc]]

DEFAULT_FEWSHOT_SEED = 1234


@dataclass(frozen=True)
class TaskSpec:
    """Everything that defines a multiple-choice task, independent of few-shot count.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"arc_easy"``.
    load_docs : callable
        ``load_docs(split) -> list[dict]``: the processed documents of a split
        (raises :class:`MissingDataError` when the split is not available).
    doc_to_text : callable
        Prompt of a document (for ``multiple_input`` tasks: the index of the
        gold choice, as lm-eval's Winogrande ``doc_to_text``).
    doc_to_choice : callable
        The choice strings of a document.
    doc_to_target : callable
        Gold as a choice index, a choice string, or a one-element list of an
        index; for ``multiple_input`` tasks the shared continuation text.
    training_split, validation_split, test_split, fewshot_split : str or None
        lm-eval's split configuration. Items come from ``test_split`` if set,
        else ``validation_split``; few-shot examples from ``fewshot_split``, else
        the first of training/validation/test that is set.
    fewshot_sampler : {"default", "first_n"}
        lm-eval's sampler name.
    template_version : str
        Bumped whenever the prompt code of the task changes; part of the hash.
    """

    name: str
    load_docs: DocLoader
    doc_to_text: Callable[[Doc], Any]
    doc_to_choice: Callable[[Doc], list[str]]
    doc_to_target: Callable[[Doc], Any]
    template_version: str
    training_split: str | None = None
    validation_split: str | None = None
    test_split: str | None = None
    fewshot_split: str | None = None
    fewshot_sampler: Literal["default", "first_n"] = "default"
    group: str | None = None
    description: str = ""
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    metric_names: tuple[str, ...] = ("acc",)
    multiple_input: bool = False
    default_num_fewshot: int = 0
    supports_fewshot: bool = True
    doc_metadata: Callable[[Doc], dict[str, Any]] | None = None
    source: str = ""
    extra_hash: dict[str, Any] = field(default_factory=dict)
    version: str | None = None  # lm-eval's ``metadata.version`` for tasks it has
    # Degenerate items (fewer than 2 choices, an empty choice) are an error when True (the user's own
    # data: task files); a warning when False (built-in benchmarks, scored as lm-eval does for parity).
    strict_items: bool = False

    @property
    def eval_split(self) -> str:
        split = self.test_split or self.validation_split
        if split is None:
            raise TaskError(
                f"task {self.name}: neither a test nor a validation split is configured"
            )
        return split

    @property
    def resolved_fewshot_split(self) -> str:
        split = (
            self.fewshot_split
            or self.training_split
            or self.validation_split
            or self.test_split
        )
        assert split is not None  # eval_split guarantees one split exists
        return split


class Task:
    """A multiple-choice benchmark with a fixed number of few-shot examples.

    ``kind`` is the request kind of its items (``"multiple_choice"``;
    :class:`sharpbench.data.gen.GenTask` is ``"generate_until"``).

    Parameters
    ----------
    spec : TaskSpec
        The task definition.
    num_fewshot : int, optional
        Few-shot examples per prompt; ``None`` uses the task's default (0 for
        every built-in task, as lm-eval's YAML files).
    fewshot_seed : int
        Seed of lm-eval's default sampler (``--fewshot_random_seed``, 1234).
    """

    kind = "multiple_choice"

    def __init__(
        self,
        spec: TaskSpec,
        num_fewshot: int | None = None,
        fewshot_seed: int = DEFAULT_FEWSHOT_SEED,
    ) -> None:
        n = spec.default_num_fewshot if num_fewshot is None else int(num_fewshot)
        if n < 0:
            raise TaskError(f"task {spec.name}: num_fewshot must be >= 0, got {n}")
        if n > 0 and not spec.supports_fewshot:
            raise TaskError(
                f"task {spec.name} has no few-shot split that lm-eval 0.4.13 can use; run it with num_fewshot=0"
            )
        self.spec = spec
        self.num_fewshot = n
        self.fewshot_seed = int(fewshot_seed)
        self.style: Any = None  # a sharpbench.data.chat.PromptStyle: chat template / system prompt
        self._docs: list[Doc] | None = None
        self._fewshot_docs: list[Doc] | None = None
        self._items: list[Item] = []

    def with_style(self, style: Any) -> Task:
        """The same task addressed through ``style`` (a :class:`~sharpbench.data.chat.PromptStyle`).

        A plain style (no chat template, no system prompt) leaves prompts and
        the template hash exactly as without one.
        """
        import copy

        new = copy.copy(self)
        new.style = None if style is None or style.is_plain else style
        new._items = []
        return new

    # ------------------------------------------------------------------ attributes
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def group(self) -> str | None:
        """Top-level group (e.g. ``"mmlu"``) or ``None``."""
        return self.spec.group

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def target_delimiter(self) -> str:
        return self.spec.target_delimiter

    @property
    def fewshot_delimiter(self) -> str:
        return self.spec.fewshot_delimiter

    @property
    def source(self) -> str:
        """Where the documents come from (short description)."""
        return self.spec.source

    @property
    def version(self) -> str | None:
        """The task version lm-eval 0.4.13 reports for this task (``None`` for sharpbench-only tasks)."""
        return self.spec.version

    @property
    def metric_names(self) -> list[str]:
        return list(self.spec.metric_names)

    @property
    def split(self) -> str:
        return self.spec.eval_split

    @property
    def fewshot_split(self) -> str | None:
        return self.spec.resolved_fewshot_split if self.num_fewshot > 0 else None

    @property
    def template_hash(self) -> str:
        """sha256 of everything that defines the prompts (code version, splits, few-shot settings)."""
        s = self.spec
        payload = {
            "name": s.name,
            "template_version": s.template_version,
            "split": s.eval_split,
            "num_fewshot": self.num_fewshot,
            "fewshot_split": self.fewshot_split,
            "fewshot_sampler": s.fewshot_sampler if self.num_fewshot else None,
            "fewshot_seed": self.fewshot_seed
            if self.num_fewshot and s.fewshot_sampler == "default"
            else None,
            "description": s.description,
            "target_delimiter": s.target_delimiter,
            "fewshot_delimiter": s.fewshot_delimiter,
            "multiple_input": s.multiple_input,
            "extra": s.extra_hash,
        }
        if self.style is not None:  # plain prompts keep the hash they always had
            payload["chat"] = self.style.key
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    @property
    def n_docs(self) -> int:
        return len(self.docs())

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}, num_fewshot={self.num_fewshot}, split={self.split!r})"
        )

    # ------------------------------------------------------------------ documents
    def docs(self) -> list[Doc]:
        """The processed documents of the evaluation split (cached)."""
        if self._docs is None:
            self._docs = list(self.spec.load_docs(self.split))
        return self._docs

    def fewshot_docs(self) -> list[Doc]:
        """The documents few-shot examples are drawn from (cached)."""
        if self._fewshot_docs is None:
            split = self.spec.resolved_fewshot_split
            if split == self.split:
                self._fewshot_docs = self.docs()
            else:
                try:
                    self._fewshot_docs = list(self.spec.load_docs(split))
                except MissingDataError as exc:
                    raise MissingDataError(
                        f"task {self.name}: {self.num_fewshot}-shot prompts need the '{split}' split, "
                        f"which is not available here ({exc})"
                    ) from exc
        return self._fewshot_docs

    # ------------------------------------------------------------------ prompts
    def _qa(self, doc: Doc) -> tuple[str, str | None]:
        """(question, answer text) of a few-shot example (``None``: no answer), as lm-eval's ``build_qa_turn``."""
        s = self.spec
        q = s.doc_to_text(doc)
        choices = s.doc_to_choice(doc)
        a = s.doc_to_target(doc)
        if s.multiple_input:
            q = choices[q]
            choices = None
        if a is None or (isinstance(a, str) and a == ""):
            return q, None
        if choices and isinstance(a, int):
            text = choices[a]
        elif isinstance(a, list):
            text = a[0]
        else:
            text = a
        if not isinstance(text, str):
            raise TaskError(
                f"task {self.name}: few-shot answer {text!r} is not a string"
            )
        return q, text

    def _answer_text(self, doc: Doc) -> tuple[str, str]:
        """(question + target delimiter, answer + few-shot delimiter) of a few-shot example, plain prompts."""
        q, text = self._qa(doc)
        if text is None:
            return q, ""
        s = self.spec
        return q + s.target_delimiter, text + s.fewshot_delimiter

    def _sample(
        self, rnd: random.Random, pool: Sequence[Doc], doc: Doc
    ) -> Sequence[Doc]:
        n = self.num_fewshot
        s = self.spec
        # lm-eval compares the *configured* splits, so None == None (no test split,
        # no explicit few-shot split: e.g. piqa) also excludes the evaluated doc.
        eval_doc = doc if s.fewshot_split == s.test_split else None
        if s.fewshot_sampler == "first_n":
            cand = (
                [x for x in pool if x != eval_doc]
                if eval_doc is not None
                else list(pool)
            )
            if n > len(cand):
                raise TaskError(
                    f"task {self.name}: {n} few-shot examples requested, {len(cand)} available"
                )
            return cand[:n]
        if not pool:
            raise TaskError(
                f"task {self.name}: no documents to draw few-shot examples from"
            )
        if eval_doc is None:
            res = rnd.sample(pool, n)
        else:
            res = [x for x in rnd.sample(pool, n + 1) if x != eval_doc][:n]
        if len(res) < n:
            res = rnd.sample([x for x in pool if x != eval_doc], n)
        return res

    def _prefix(self, rnd: random.Random | None, doc: Doc) -> str:
        parts = [self.spec.description]
        if self.num_fewshot > 0:
            assert rnd is not None
            for fs in self._sample(rnd, self.fewshot_docs(), doc):
                parts.extend(self._answer_text(fs))
        return "".join(parts)

    def build_item(
        self, index: int, doc: Doc, rnd: random.Random | None = None
    ) -> Item:
        """Build the :class:`Item` of one document (``index`` = lm-eval's ``doc_id``)."""
        s = self.spec
        try:
            if self.style is not None:
                return self._build_styled(index, doc, rnd)
            prefix = self._prefix(rnd, doc)
            choices = [str(c) for c in s.doc_to_choice(doc)]
            target = s.doc_to_target(doc)
            if s.multiple_input:
                gold = s.doc_to_text(doc)
                requests = tuple(
                    Request(prefix + c, s.target_delimiter + target) for c in choices
                )
            else:
                context = prefix + s.doc_to_text(doc)
                requests = tuple(
                    Request(context, s.target_delimiter + c) for c in choices
                )
                gold = _gold_index(target, choices)
            meta = dict(s.doc_metadata(doc)) if s.doc_metadata else {}
            return Item(
                item_id=index,
                requests=requests,
                gold=gold,
                choices=tuple(choices),
                metadata=meta,
            )
        except (MissingDataError, DataFileError):
            raise
        except (ValueError, KeyError, IndexError, TypeError) as exc:  # TaskError too
            raise TaskError(f"task {self.name}, document {index}: {exc}") from exc

    def _build_styled(self, index: int, doc: Doc, rnd: random.Random | None) -> Item:
        """An item whose prompts go through the chat template / system prompt (lm-eval's chat requests)."""
        s = self.spec
        shots = []
        if self.num_fewshot > 0:
            assert rnd is not None
            shots = [self._qa(fs) for fs in self._sample(rnd, self.fewshot_docs(), doc)]  # the plain path's draws
        choices = [str(c) for c in s.doc_to_choice(doc)]
        target = s.doc_to_target(doc)
        kw = dict(description=s.description, target_delimiter=s.target_delimiter,
                  fewshot_delimiter=s.fewshot_delimiter)
        if s.multiple_input:
            gold = s.doc_to_text(doc)
            pairs = self.style.input_requests(choices, target, shots, **kw)
        else:
            pairs = self.style.choice_requests(str(s.doc_to_text(doc)), choices, shots, **kw)
            gold = _gold_index(target, choices)
        meta = dict(s.doc_metadata(doc)) if s.doc_metadata else {}
        return Item(item_id=index, requests=tuple(Request(c, x) for c, x in pairs), gold=gold,
                    choices=tuple(choices), metadata=meta)

    def items(self, limit: int | None = None) -> list[Item]:
        """The first ``limit`` items (all when ``None``), as lm-eval's ``--limit N``.

        Built items are cached: the few-shot sampler draws documents in order, so
        the first N items are a prefix of any longer build and repeated calls
        (adaptive testing asks for one item at a time) cost nothing.
        """
        docs = self.docs()
        if limit is not None and limit < 0:
            raise TaskError(f"limit must be >= 0, got {limit}")
        if not docs:
            raise TaskError(
                f"task {self.name}: the '{self.split}' split has no documents ({self.source or 'no source'}); "
                "there is nothing to evaluate"
            )
        n = len(docs) if limit is None else min(int(limit), len(docs))
        if len(self._items) < n:
            rnd = random.Random(self.fewshot_seed) if self.num_fewshot > 0 else None
            built = [self.build_item(i, d, rnd) for i, d in enumerate(docs[:n])]
            check_items(self.name, built, strict=self.spec.strict_items)
            self._items = built
        return self._items[:n]


def _ids_text(ids: Sequence[int], most: int = 10) -> str:
    return ", ".join(map(str, ids[:most])) + (f", ... ({len(ids) - most} more)" if len(ids) > most else "")


def check_items(task: str, items: Sequence[Item], *, strict: bool = True) -> None:
    """Flag items that cannot be scored meaningfully (README: "What sharpbench refuses and why").

    * fewer than two choices: the only choice is always the most likely, so
      the item is scored correct whatever the model knows;
    * an empty (or blank) choice string: its loglikelihood is 0 (the maximum)
      and its length normalisation divides by zero.

    ``strict`` (task files: the user's own data) raises :class:`TaskError`;
    otherwise (built-in benchmarks, which lm-eval 0.4.13 scores as they are)
    a :class:`DataQualityWarning` counts and names the items, which stay.
    """
    problems = []
    single = [it.item_id for it in items if len(it.choices) < 2]
    if single:
        problems.append(
            f"{len(single)} item(s) have fewer than 2 choices, so they are always scored correct: "
            f"item ids {_ids_text(single)}"
        )
    blank = [it.item_id for it in items if any(not c.strip() for c in it.choices)]
    if blank:
        problems.append(f"{len(blank)} item(s) have an empty choice string: item ids {_ids_text(blank)}")
    if not problems:
        return
    if strict:
        raise TaskError(f"task {task}: " + "; ".join(problems) + "; fix or remove them in the data")
    import warnings

    from sharpbench.data.errors import DataQualityWarning

    warnings.warn(
        f"task {task}: " + "; ".join(problems) + " (kept and scored as lm-eval 0.4.13 does)",
        DataQualityWarning,
        stacklevel=3,
    )


def _gold_index(target: Any, choices: list[str]) -> int:
    """lm-eval's gold resolution: an int index, a choice string, or ``[index]``."""
    if isinstance(target, list):
        if len(target) != 1:
            raise TaskError(f"several gold answers {target} are not supported")
        target = target[0]
    if isinstance(target, bool):
        return int(target)
    if isinstance(target, int):
        return target
    if isinstance(target, str):
        if target in choices:
            return choices.index(target)
        raise TaskError(f"gold answer {target!r} is not one of the choices {choices}")
    raise TaskError(
        f"gold answer {target!r} has unsupported type {type(target).__name__}"
    )
