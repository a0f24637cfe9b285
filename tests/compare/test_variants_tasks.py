"""Prompt-variant questions beyond MMLU (ARC, AGIEval English), aligned with the MC tasks' items."""

from __future__ import annotations

import pytest

from sharpbench.compare import variants as V
from sharpbench.compare.errors import CompareError
from sharpbench.compare.variants import (
    Question,
    Variant,
    build_item,
    mmlu_questions,
    task_questions,
    variant_set,
)
from sharpbench.data.builtin.agieval import SUBSETS
from sharpbench.data.builtin.gen_tasks import agieval_docs
from sharpbench.data.registry import get_task


def _mc_items(name: str):
    return get_task(name).items()


def test_mmlu_questions_record_task_and_doc_id_and_task_questions_agree():
    qs = mmlu_questions(6, tasks="mmlu_astronomy,mmlu_anatomy", max_fewshot=5)
    assert [(q.task, q.doc_id) for q in qs] == [("mmlu_astronomy", 0), ("mmlu_anatomy", 0), ("mmlu_astronomy", 1),
                                                ("mmlu_anatomy", 1), ("mmlu_astronomy", 2), ("mmlu_anatomy", 2)]
    assert task_questions("mmlu_astronomy,mmlu_anatomy", 6, max_fewshot=5) == qs
    assert task_questions("mmlu", 60, max_fewshot=1) == mmlu_questions(60, max_fewshot=1)
    for q in qs:  # the plain variant of the question is the MC task's item at doc_id
        ref = _mc_items(q.task)[q.doc_id]
        it = build_item(q, Variant()).item
        assert it.requests == ref.requests and it.gold == ref.gold
    assert all(s.task == "" and s.doc_id == -1 for s in qs[0].fewshot)


def test_arc_questions_match_the_mc_task_at_doc_id():
    items = _mc_items("arc_challenge")
    qs = task_questions("arc_challenge", 10_000, max_fewshot=0)
    assert len(qs) == len(items) == 1172
    assert [q.qid for q in qs] == [q.doc_id for q in qs] == list(range(1172))
    for q in qs:
        ref = items[q.doc_id]
        assert q.task == "arc_challenge" and q.subject == "science" and q.fewshot == ()
        assert q.options == ref.choices and q.answer == ref.gold
        assert ref.requests[0].context == f"Question: {q.question}\nAnswer:"
    assert {len(q.options) for q in qs} == {3, 4, 5}


def test_arc_plain_and_fewshot_variants():
    """The variant prompt is MMLU's layout ("about science", lettered options), not arc_challenge's
    cloze prompt ("Question: ...\\nAnswer:" scored on option texts), so it is checked as text."""
    qs = task_questions("arc_challenge", 2, max_fewshot=2)
    q = qs[0]
    it = build_item(q, Variant()).item
    block = ("An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely "
             "effect of this increase in rotation?\nA. Planetary density will decrease.\nB. Planetary years will "
             "become longer.\nC. Planetary days will become shorter.\nD. Planetary gravity will become stronger.\n"
             "Answer:")
    head = "The following are multiple choice questions (with answers) about science.\n\n"
    assert it.requests[0].context == head + block
    assert [r.continuation for r in it.requests] == [" A", " B", " C", " D"] and it.gold == 2
    # few-shot pool: the first validation documents (the train split is not packaged)
    val = get_task("arc_challenge").spec.load_docs("validation")
    assert [s.question for s in q.fewshot] == [d["question"] for d in val[:2]]
    it2 = build_item(q, Variant(fewshot=1)).item
    shot = (val[0]["question"] + "\n" + "\n".join(f"{'ABCD'[j]}. {t}" for j, t in enumerate(val[0]["choices"]["text"]))
            + "\nAnswer: " + val[0]["answerKey"] + "\n\n")
    assert it2.requests[0].context == head + shot + block


def test_arc_five_option_item_uses_letter_e():
    q = next(q for q in task_questions("arc_challenge", 10_000, max_fewshot=0) if len(q.options) == 5)
    it = build_item(q, Variant(sep="(A)")).item
    assert it.choices == ("A", "B", "C", "D", "E")
    assert f"\n(E) {q.options[4]}\nAnswer:" in it.requests[0].context


@pytest.mark.parametrize("subset", SUBSETS)
def test_agieval_questions_match_the_mc_task_at_doc_id(subset):
    name = "agieval_" + subset.replace("-", "_")
    items = _mc_items(name)
    qs = task_questions(name, 10_000)
    docs = agieval_docs(subset)
    assert len(qs) == len(items) == len(docs)
    for q in qs:
        ref = items[q.doc_id]
        assert q.task == name and q.subject == "reasoning" and q.fewshot == ()
        assert q.answer == ref.gold
        assert q.options == tuple(c[3:].strip() for c in ref.choices)  # "(A)text" -> "text"
        assert [c[:3] for c in ref.choices] == [f"({'ABCDE'[j]})" for j in range(len(ref.choices))]
        # the question text is passage + newline + question; AGIEval's query: passage + "Q: " + question + ...
        d = docs[q.doc_id]
        assert q.question == (d["passage"] + "\n" if d["passage"] else "") + d["question"]
        assert ref.requests[0].context.startswith(d["passage"] + "Q: " + d["question"] + " Answer Choices: ")


def test_agieval_group_round_robin_samples_every_subset():
    qs = task_questions("agieval_en", 14)
    names = ["agieval_" + s.replace("-", "_") for s in SUBSETS]
    assert [q.task for q in qs] == names * 2
    assert [q.doc_id for q in qs] == [0] * 7 + [1] * 7 and [q.qid for q in qs] == list(range(14))


def test_five_option_agieval_item_under_every_default_variant():
    q = task_questions("agieval_lsat_lr", 1)[0]
    assert len(q.options) == 5
    chat = lambda s: f"<u>{s}</u>"
    built = 0
    for v in variant_set("default"):
        if v.fewshot:
            with pytest.raises(CompareError, match="agieval_lsat_lr has no few-shot pool.*fewshot=0"):
                build_item(q, v, chat=chat)
            continue
        vi = build_item(q, v, chat=chat)
        built += 1
        assert len(vi.item.choices) == 5 and sorted(vi.order) == list(range(5))
        assert vi.order[vi.item.gold] == q.answer
        if v.labels != "none":
            assert vi.item.choices == tuple(V.LABELS[v.labels][:5])
    assert built == 13
    ctx = build_item(q, Variant()).item.requests[0].context
    assert ctx.startswith("The following are multiple choice questions (with answers) about reasoning.\n\n")
    assert ctx.endswith("\n".join(f"{'ABCDE'[j]}. {o}" for j, o in enumerate(q.options)) + "\nAnswer:")
    lab = build_item(q, Variant(labels="1234", sep="A:")).item
    assert lab.choices == ("1", "2", "3", "4", "5") and f"\n5: {q.options[4]}\n" in lab.requests[0].context


def test_four_option_prompts_unchanged_by_the_longer_alphabets(monkeypatch):
    qs = mmlu_questions(4, tasks="mmlu_astronomy,mmlu_anatomy", max_fewshot=5)
    vs = variant_set("labels,sep,shift") + variant_set("default")
    chat = lambda s: f"<u>{s}</u>"
    new = [build_item(q, v, chat=chat) for q in qs for v in vs]
    monkeypatch.setitem(V.LABELS, "ABCD", "ABCD")
    monkeypatch.setitem(V.LABELS, "1234", "1234")
    monkeypatch.setitem(V.LABELS, "abcd", "abcd")
    old = [build_item(q, v, chat=chat) for q in qs for v in vs]
    assert new == old
    assert [v.name for v in variant_set("default")][1:4] == ["labels=1234", "labels=abcd", "labels=none"]


def test_too_many_options_and_unsupported_tasks():
    q = Question(0, "Which?", tuple("abcdefghijk"), 0, "misc")
    with pytest.raises(CompareError, match="11 options; the labels 1234 cover 9"):
        build_item(q, Variant(labels="1234"))
    with pytest.raises(CompareError, match="11 options; the labels ABCD cover 10"):
        build_item(q, Variant())
    assert len(build_item(q, Variant(labels="none")).item.choices) == 11
    with pytest.raises(CompareError, match="not MMLU-style.*arc_challenge"):
        task_questions("piqa", 5)
    with pytest.raises(CompareError, match="generative"):
        task_questions("agieval_lsat_ar_cot", 5)
    with pytest.raises(CompareError, match="limit"):
        task_questions("arc_challenge", 0)
    # MMLU without a pool keeps its old message (few-shot examples were not loaded)
    m = task_questions("mmlu_anatomy", 1, max_fewshot=0)[0]
    with pytest.raises(CompareError, match="1 few-shot examples asked, 0 available for anatomy"):
        build_item(m, Variant(fewshot=1))
