"""Which prompts ("arms") each elicitation method runs on each task family.

A family is what ``sharpbench elicit --tasks`` names: ``mmlu`` (a subject
sample, or one ``mmlu_<subject>``), ``arc_challenge``, ``agieval_en`` (or one
``agieval_<subset>``) and ``gsm8k_cot``. It knows

* the item sample: ``(subtask, doc_id)`` pairs, round-robin over subtasks so a
  limit covers every subject;
* the plain prompt: the lm-eval task as it is (multiple-choice log-likelihood
  for MMLU, ARC-Challenge and AGIEval; 8-shot chain of thought for gsm8k);
* the generative tasks of the ``cot`` method (direct answer and step by step);
* the prompt variants of the ``variants`` method (the multiple-choice format
  grid of ``sharpbench sensitivity``, or gsm8k_cot's variants).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sharpbench.elicit.errors import ElicitError

METHODS = ("plain", "variants", "cot", "self-consistency", "system-prompts", "vote", "probe")
DEFAULT_METHODS = "plain,variants,cot,system-prompts,vote,probe"

#: The system messages of the ``system-prompts`` method (name -> text).
SYSTEM_PROMPTS = {
    "assistant": "You are a helpful assistant.",
    "expert": "You are a world-class expert. You answer every question accurately and carefully.",
    "praise": "You are brilliant and you always answer questions correctly.",
    "terse": "Answer with the final answer only, without explanation.",
}


@dataclass(frozen=True)
class MethodSpec:
    """A method as asked for on the command line (``self-consistency:8`` -> k = 8)."""

    name: str
    k: int = 0

    @property
    def label(self) -> str:
        return f"{self.name}:{self.k}" if self.k else self.name


def parse_methods(spec: str | Sequence[str]) -> list[MethodSpec]:
    """Methods from ``"plain,variants,cot,self-consistency:8,system-prompts,probe"``.

    ``plain`` is always included (it is every gain's baseline) and ``vote`` is
    added when more than one prompt arm runs. ``self-consistency`` without
    ``:k`` samples 8 times.
    """
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec) if p and p.strip()]
    out: list[MethodSpec] = []
    for p in parts:
        name, _, k = p.partition(":")
        if name not in METHODS:
            raise ElicitError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        if k and name != "self-consistency":
            raise ElicitError(f"method {name!r} takes no ':{k}' (only self-consistency:K does)")
        try:
            kk = int(k) if k else (8 if name == "self-consistency" else 0)
        except ValueError:
            raise ElicitError(f"self-consistency:K needs an integer K, got {k!r}") from None
        if name == "self-consistency" and kk < 2:
            raise ElicitError(f"self-consistency needs at least 2 samples, got {kk}")
        if name not in {m.name for m in out}:
            out.append(MethodSpec(name, kk))
    if "plain" not in {m.name for m in out}:
        out.insert(0, MethodSpec("plain"))
    return out


@dataclass(frozen=True)
class Family:
    """A task family of the study (see the module docstring)."""

    name: str
    kind: str  # "multiple_choice" | "generate_until"
    source: str  # task / group name the item sample comes from
    direct: Callable[[str], str]  # plain subtask -> generative direct-answer task
    cot: Callable[[str], str]  # plain subtask -> generative step-by-step task
    mc_metric: str = "acc"  # multiple choice: lm-eval's reported accuracy (acc or acc_norm)
    fewshot_pool: bool = True  # variants may add few-shot examples
    subject: str = ""  # for prompts that name the subject
    # answers compare as lm-eval's exact_match options (canonical form for votes)
    match: dict[str, Any] = field(default_factory=lambda: {"ignore_case": True, "ignore_punctuation": True})

    @property
    def is_mc(self) -> bool:
        return self.kind == "multiple_choice"


GSM8K_MATCH = {"ignore_case": True, "ignore_punctuation": False,
               "regexes_to_ignore": (",", r"\$", "(?s).*#### ", r"\.$")}


def family(name: str) -> Family:
    """The family of a ``--tasks`` entry, with a clear error for the rest."""
    if name == "mmlu" or (name.startswith("mmlu_") and not name.endswith(("_gen", "_cot"))):
        return Family(name, "multiple_choice", name, direct=lambda t: f"{t}_gen", cot=lambda t: f"{t}_cot")
    if name == "arc_challenge":
        return Family(name, "multiple_choice", name, direct=lambda t: "arc_challenge_gen",
                      cot=lambda t: "arc_challenge_cot", mc_metric="acc_norm")
    if name == "agieval_en" or (name.startswith("agieval_") and not name.endswith(("_cot", "_direct"))):
        return Family(name, "multiple_choice", name, direct=lambda t: f"{t}_direct", cot=lambda t: f"{t}_cot",
                      fewshot_pool=False)
    if name == "gsm8k_cot":
        return Family(name, "generate_until", name, direct=lambda t: "gsm8k_direct", cot=lambda t: "gsm8k_cot",
                      match=dict(GSM8K_MATCH))
    raise ElicitError(
        f"elicit does not know task {name!r}; it runs mmlu (or mmlu_<subject>), arc_challenge, "
        "agieval_en (or agieval_<subset>) and gsm8k_cot"
    )


def sample_items(fam: Family, limit: int) -> tuple[list[tuple[str, int]], list[Any]]:
    """The cell's items, ``(subtask, doc_id)`` in order, and for multiple choice the variant questions.

    Multiple choice: round-robin over the family's subtasks (``limit``
    questions in all). gsm8k: its first ``limit`` test questions.
    """
    if limit < 1:
        raise ElicitError(f"--limit must be >= 1, got {limit}")
    if fam.is_mc:
        from sharpbench.compare.variants import task_questions

        qs = task_questions(fam.source, limit, max_fewshot=5 if fam.fewshot_pool else 0)
        return [(q.task, int(q.doc_id)) for q in qs], qs
    from sharpbench.data.registry import get_task

    n = min(limit, len(get_task(fam.source).docs()))
    return [(fam.source, i) for i in range(n)], []


def mc_variants(fam: Family, spec: str = "default") -> list[Any]:
    """The prompt variants of a multiple-choice family (``sharpbench sensitivity``'s grid).

    Variants that add few-shot examples are left out where the family has no
    few-shot pool (AGIEval); the variant equal to lm-eval's MMLU prompt is
    left out for MMLU (it is the plain arm).
    """
    from sharpbench.compare.variants import variant_set

    out = []
    for v in variant_set(spec):
        if v.fewshot and not fam.fewshot_pool:
            continue
        if v.name == "plain" and fam.source.startswith("mmlu"):
            continue
        out.append(v)
    return out


def gen_variants(fam: Family) -> list[Any]:
    """Prompt variants of a generative family (task specs), e.g. gsm8k_cot's few-shot and format variants."""
    from sharpbench.data.builtin.gen_tasks import gsm8k_cot_variants

    if fam.source != "gsm8k_cot":
        return []
    return list(gsm8k_cot_variants())
