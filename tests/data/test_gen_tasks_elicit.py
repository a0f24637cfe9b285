"""Generative tasks of the elicitation study: direct vs step by step on the MC tasks' documents, gsm8k variants."""

from __future__ import annotations

import re

import pytest

from sharpbench.data.builtin import agieval, mmlu
from sharpbench.data.builtin.gen_tasks import GSM8K_FEWSHOT, gsm8k_cot_variants
from sharpbench.data.gen import GenTask
from sharpbench.data.registry import get_task, list_groups, list_tasks, tasks_in_group

COT_DESC = ('The following are multiple choice questions (with answers) about {s}. Think step by step and then finish '
            'your answer with "the answer is (X)" where X is the correct letter choice.\n')


def _item(name: str, i: int = 0):
    return get_task(name).items(i + 1)[i]


def test_mmlu_cot_prompt_of_a_real_item():
    it = _item("mmlu_anatomy_cot")
    assert it.prompt == COT_DESC.format(s="anatomy") + (
        "Question:\n"
        "A lesion causing compression of the facial nerve at the stylomastoid foramen will cause ipsilateral\n"
        "Options:\n"
        "A. paralysis of the facial muscles.\n"
        "B. paralysis of the facial muscles and loss of taste.\n"
        "C. paralysis of the facial muscles, loss of taste and lacrimation.\n"
        "D. paralysis of the facial muscles, loss of taste, lacrimation and decreased salivation.\n"
        "Answer: Let's think step by step."
    )
    assert it.target == "A" and it.until == ("Question:",) and it.max_gen_toks == 1024
    assert it.metadata == {"subject": "anatomy", "category": "stem"}
    # the subject is written with spaces, as in MMLU's own description
    assert _item("mmlu_high_school_biology_cot").prompt.startswith(COT_DESC.format(s="high school biology"))


def test_arc_challenge_cot_prompt_of_a_real_item():
    it = _item("arc_challenge_cot")
    assert it.prompt == COT_DESC.format(s="science") + (
        "Question:\n"
        "An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely "
        "effect of this increase in rotation?\n"
        "Options:\n"
        "A. Planetary density will decrease.\n"
        "B. Planetary years will become longer.\n"
        "C. Planetary days will become shorter.\n"
        "D. Planetary gravity will become stronger.\n"
        "Answer: Let's think step by step."
    )
    assert it.target == "C" and it.max_gen_toks == 1024 and it.metadata == {"id": "Mercury_7175875"}


def test_agieval_direct_prompt_of_a_real_item():
    it = _item("agieval_sat_math_direct")
    assert it.prompt == (
        "The following are multiple choice questions (with answers) about reasoning. "
        "Answer with the letter of the correct option.\n"
        "Question:\n"
        "If $\\frac{x-1}{3}=k$ and $k=3$, what is the value of $x ?$\n"
        "Options:\nA. 2\nB. 4\nC. 9\nD. 10\n"
        "Answer:"
    )
    assert it.target == "D" and it.until == ("\n\n", "Question:") and it.max_gen_toks == 16
    # with a passage: the passage line, then the block of the _cot task without the step-by-step cue
    d, c = _item("agieval_lsat_ar_direct"), _item("agieval_lsat_ar_cot")
    assert d.prompt.startswith("The following are multiple choice questions (with answers) about reasoning. "
                               "Answer with the letter of the correct option.\nOf the eight students")
    assert d.prompt.split("\n", 1)[1] == c.prompt.split("\n", 1)[1].removesuffix(" Let's think step by step.")
    assert d.prompt.endswith("\nE. Mon. morning: Olivia; Mon. afternoon: Nina Tues. morning: Irving; Tues. afternoon: "
                             "Helen Wed. morning: Kyle; Wed. afternoon: George\nAnswer:")
    assert d.target == c.target == "C"


def test_gsm8k_direct_prompt_and_exemplars():
    t = get_task("gsm8k_direct")
    it, ref = t.items(1)[0], get_task("gsm8k_cot").items(1)[0]
    assert t.num_fewshot == 8
    assert it.prompt.startswith(
        "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
        "there will be 21 trees. How many trees did the grove workers plant today?\nA: The answer is 6.\n\n"
        "Q: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?\n"
        "A: The answer is 5.\n\n"
    )
    # same question, target, stops, scoring as gsm8k_cot; only the exemplars' answers differ
    assert it.prompt.rsplit("\n\n", 1)[1] == ref.prompt.rsplit("\n\n", 1)[1]
    assert it.prompt.rsplit("\n\n", 1)[1].startswith("Q: Janet’s ducks lay 16 eggs per day.")
    assert (it.target, it.until, it.max_gen_toks, it.scoring) == (ref.target, ref.until, ref.max_gen_toks, ref.scoring)
    assert it.target == "18"
    answers = re.findall(r"\nA: (.*)\n\n", it.prompt)
    assert answers == [f"The answer is {n}." for n in (6, 5, 39, 8, 9, 29, 33, 8)]
    cot_final = [re.search(r"The answer is (\d+)\.$", d["target"]).group(1) for d in GSM8K_FEWSHOT]
    assert answers == [f"The answer is {n}." for n in cot_final]
    assert get_task("gsm8k_direct").template_hash != get_task("gsm8k_cot").template_hash


@pytest.mark.parametrize("mc, gen", [("mmlu_anatomy", "mmlu_anatomy_cot"), ("mmlu_virology", "mmlu_virology_cot")])
def test_mmlu_cot_ids_and_gold_follow_the_mc_task(mc, gen):
    m, g = get_task(mc).items(), get_task(gen).items()
    assert len(m) == len(g) > 100
    for a, b in zip(m, g):
        assert a.item_id == b.item_id
        assert b.target == "ABCD"[a.gold]
        question = a.requests[0].context.removeprefix(get_task(mc).spec.description).split("\nA. ", 1)[0]
        assert f"Question:\n{question}\nOptions:\n" in b.prompt


def test_arc_challenge_cot_ids_and_gold_follow_the_mc_task():
    m, g = get_task("arc_challenge").items(), get_task("arc_challenge_cot").items()
    assert len(m) == len(g) == 1172
    for a, b in zip(m, g):
        assert a.item_id == b.item_id and a.metadata == b.metadata
        assert b.target == "ABCDE"[a.gold]
        options = [f"{'ABCDE'[j]}. {c.strip()}" for j, c in enumerate(a.choices)]
        assert b.prompt.endswith("\nOptions:\n" + "\n".join(options) + "\nAnswer: Let's think step by step.")


@pytest.mark.parametrize("subset", agieval.SUBSETS)
def test_agieval_direct_ids_and_gold_follow_the_mc_task(subset):
    name = "agieval_" + subset.replace("-", "_")
    m, g, c = (get_task(n).items() for n in (name, name + "_direct", name + "_cot"))
    assert len(m) == len(g) == len(c)
    for a, b, x in zip(m, g, c):
        assert a.item_id == b.item_id == x.item_id
        assert b.target == x.target == "ABCDEFG"[a.gold]
        shown = [ln.split(". ", 1)[1] for ln in b.prompt.split("\nOptions:\n", 1)[1].split("\n")[:-1]]
        assert shown == [ch.split(")", 1)[1].strip() for ch in a.choices]


def test_groups_and_registry():
    names = set(list_tasks())
    assert {"arc_challenge_cot", "gsm8k_direct"} <= names
    cot = tasks_in_group("mmlu_cot")
    assert len(cot) == len(set(cot)) == 57 and cot == [f"mmlu_{s}_cot" for s in mmlu.SUBJECTS]
    direct, chain = tasks_in_group("agieval_en_direct"), tasks_in_group("agieval_en_cot")
    assert [n.removesuffix("_direct") for n in direct] == [n.removesuffix("_cot") for n in chain]
    assert len(direct) == 7
    groups = list_groups()
    assert groups["mmlu_cot"].metric == "exact_match,custom-extract"
    assert groups["agieval_en_direct"].metric == "exact_match,letter-extract"
    assert get_task("mmlu_anatomy_cot").group == "mmlu_cot"
    assert get_task("agieval_lsat_ar_direct").group == "agieval_en_direct"
    for n, metric in (("mmlu_anatomy_cot", "exact_match,custom-extract"), ("arc_challenge_cot", "exact_match,custom-extract"),
                      ("agieval_lsat_ar_direct", "exact_match,letter-extract")):
        assert get_task(n).metric_names == [metric]
    assert get_task("gsm8k_direct").metric_names == get_task("gsm8k_cot").metric_names


@pytest.mark.parametrize("output, gold, ok", [
    ("The answer is (B).", "B", True),
    ("B", "B", True),
    (" B", "B", True),
    (" (B) because the ...", "B", True),
    ("(c) because the lawyer ...", "C", True),
    (" C. Mon. morning: Lenore", "C", True),
    ("B", "C", False),
    (" Because of the conditions, the answer is (D)", "D", True),  # a word starting with a letter is not a letter
    (" the answer is d", "D", True),
    (" I do not know", "A", False),
    (" I do not know", "I", False),  # a word, not the letter I
    ("\nI think the answer is (B).", "B", True),
    (" I'm sure: the answer is (E)", "E", True),
    ("\nA lesion of the facial nerve", "A", False),
    ("\nA.\nThe answer is C.", "A", True),  # the first letter wins
    (" D\n", "D", True),
    (" (b)", "B", True),
])
def test_direct_filter_extracts_the_letter(output, gold, ok):
    scoring = get_task("agieval_lsat_ar_direct").spec.scoring
    assert scoring.score([output], gold).metrics == {"exact_match,letter-extract": float(ok)}


@pytest.mark.parametrize("output, gold, ok", [
    ("A lesion at the foramen ... so the answer is (A).", "A", True),
    ("Step 1 ... the answer is B", "B", True),
    ("The answer is (B).", "C", False),
])
def test_cot_filter_on_the_new_tasks(output, gold, ok):
    for n in ("mmlu_anatomy_cot", "arc_challenge_cot"):
        scoring = get_task(n).spec.scoring
        assert scoring.score([output], gold).metrics == {"exact_match,custom-extract": float(ok)}


def test_gsm8k_cot_variants():
    base = get_task("gsm8k_cot")
    ref = base.items(1)[0]
    specs = gsm8k_cot_variants()
    names = [s.name for s in specs]
    assert names == ["gsm8k_cot[fewshot=4]", "gsm8k_cot[fewshot=2]", "gsm8k_cot[zeroshot]",
                     "gsm8k_cot[format=Question/Answer]", "gsm8k_cot[instruction]"]
    tasks = {s.name: GenTask(s) for s in specs}
    hashes = {t.template_hash for t in tasks.values()} | {base.template_hash}
    assert len(hashes) == 6 and len({s.template_version for s in specs} | {base.spec.template_version}) == 6
    items = {n: t.items(1)[0] for n, t in tasks.items()}
    for n, it in items.items():  # the same gold and scoring everywhere
        assert it.target == ref.target and it.scoring == ref.scoring and it.item_id == 0
    shots = ref.prompt.split("\n\n")
    question = shots[-1]
    assert items["gsm8k_cot[fewshot=4]"].prompt == "\n\n".join(shots[:4] + [question])
    assert items["gsm8k_cot[fewshot=2]"].prompt == "\n\n".join(shots[:2] + [question])
    assert items["gsm8k_cot[zeroshot]"].prompt == get_task("gsm8k_cot_zeroshot").items(1)[0].prompt
    assert items["gsm8k_cot[zeroshot]"].prompt.endswith("\nA: Let's think step by step.")
    fmt = items["gsm8k_cot[format=Question/Answer]"]
    assert fmt.prompt == ref.prompt.replace("Q: ", "Question: ").replace("\nA:", "\nAnswer:")
    assert fmt.prompt.count("Question: ") == 9 and "Q: " not in fmt.prompt
    assert fmt.until == ("Question:", "</s>", "<|im_end|>")
    ins = items["gsm8k_cot[instruction]"]
    assert ins.prompt == "Solve the following math word problems step by step.\n\n" + ref.prompt
    for n in ("gsm8k_cot[fewshot=4]", "gsm8k_cot[zeroshot]", "gsm8k_cot[instruction]"):
        assert items[n].until == ref.until
    # they score the same way: gsm8k_cot's strict and flexible filters
    assert items["gsm8k_cot[instruction]"].scoring.score(["So 18. The answer is 18."], "18").metrics == {
        "exact_match,strict-match": 1.0, "exact_match,flexible-extract": 1.0}


def test_existing_prompts_unchanged():
    """The tasks this module had before keep their prompt hash (template_version and settings)."""
    assert get_task("agieval_lsat_ar_cot").spec.template_version == "sharpbench:agieval_cot:1"
    assert _item("agieval_sat_math_cot").prompt.endswith("D. 10\nAnswer: Let's think step by step.")
