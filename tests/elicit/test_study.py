"""The elicitation study end to end on the packaged SmolLM2: arms stored as runs, numbers recomputed by hand."""

from __future__ import annotations

import pytest

from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.families import parse_methods
from sharpbench.elicit.stats import canonical
from sharpbench.elicit.study import ElicitSettings, elicit

pytestmark = pytest.mark.slow

LIMIT = 12  # the probe's minimum
METHODS = "plain,variants,cot,system-prompts,vote,probe"
SETTINGS = dict(variants="labels", max_gen_toks=24, n_boot=100, n_splits=10)


@pytest.fixture(scope="module")
def study(tmp_path_factory, smollm2):
    store = tmp_path_factory.mktemp("elicit") / "s.duckdb"
    res = elicit([smollm2], "arc_challenge", methods=METHODS, limit=LIMIT, store=store,
                 settings=ElicitSettings(**SETTINGS))
    return res, store


def test_plain_arm_is_the_plain_evaluation(study, smollm2):
    import sharpbench as sb

    res, store = study
    cell = res.cells[0]
    plain = next(a for a in cell.arms if a.arm == "plain")
    ids = [i for i in range(LIMIT)]  # ARC-Challenge has one subtask: the first LIMIT documents
    rep = sb.evaluate(smollm2, "arc_challenge", item_ids=ids, store=store)
    assert plain.accuracy == pytest.approx(rep.tasks[0].metrics["acc_norm"][0])
    assert rep.n_computed == 0  # the study stored it: same run, reused
    assert cell.plain == pytest.approx(plain.accuracy)
    assert cell.dtype == "float32"  # the backend's, in the result and its JSON
    assert type(res).from_dict(res.to_dict()).cells[0].dtype == "float32"


def test_arms_and_methods(study):
    res, _ = study
    cell = res.cells[0]
    names = [a.arm for a in cell.arms]
    # labels dimension: ABCD (the letters prompt), 1234, abcd, none; the chat template addresses SmolLM2
    assert {"plain", "variant:letters", "variant:labels=1234", "variant:labels=abcd", "variant:labels=none",
            "system:none", "system:assistant", "system:expert", "system:praise", "system:terse", "direct", "cot",
            "vote", "probe", "prior"} == set(names)
    assert all(len(a.correct) == LIMIT and len(a.answers) == (0 if a.arm in ("probe", "prior") else LIMIT)
               for a in cell.arms)
    assert cell.comparisons and {(c.a, c.b) for c in cell.comparisons} == {("vote", "best-prompt"),
                                                                            ("probe", "elicited"), ("probe", "prior")}
    methods = {m.method: m for m in cell.methods}
    assert methods["variants"].n_arms == 5 and methods["system-prompts"].n_arms == 5
    for m in methods.values():
        assert 0 <= m.score <= 1 and m.low <= m.score + 1e-9 and m.score <= m.high + 1e-9
    assert methods["direct"].score == pytest.approx(next(a for a in cell.arms if a.arm == "direct").accuracy)
    assert cell.elicited_low <= cell.elicited <= cell.elicited_high
    accs = [a.accuracy for a in cell.arms if a.method in ("plain", "variants", "system-prompts", "direct", "cot")]
    assert cell.prompt_range == pytest.approx(max(accs) - min(accs))


def test_vote_recomputed_by_hand(study):
    res, _ = study
    cell = res.cells[0]
    prompts = [a for a in cell.arms if a.method in ("plain", "variants", "system-prompts", "direct", "cot")]
    plain = next(a for a in cell.arms if a.arm == "plain")
    gold = [a if c == 1 else None for a, c in zip(plain.answers, plain.correct)]  # known where plain was right
    vote = next(a for a in cell.arms if a.arm == "vote")
    for j in range(LIMIT):
        col = [a.answers[j] for a in prompts if a.answers[j] is not None]
        counts = {x: col.count(x) for x in col}
        top = max(counts.values())
        assert counts[vote.answers[j]] == top
        if gold[j] is not None:
            assert vote.correct[j] == float(vote.answers[j] == gold[j])


def test_generated_answers_read_by_format_then_by_stated_letter(study):
    """The cot arm, recomputed from the stored texts: the task's filter where it read a letter, otherwise
    the letter the text states; the cell's note counts each way."""
    import json

    import duckdb

    from sharpbench.elicit.extract import stated_letter

    res, store = study
    cell = res.cells[0]
    cot = next(a for a in cell.arms if a.arm == "cot")
    plain = next(a for a in cell.arms if a.arm == "plain")
    gold = [a if c == 1 else None for a, c in zip(plain.answers, plain.correct)]
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute("select g.item_id, g.text, g.extracted from runs r join generations g using (run_id) "
                           "where r.task = 'arc_challenge_cot' order by g.item_id").fetchall()
    assert [r[0] for r in rows] == list(range(LIMIT))
    from sharpbench.compare.variants import task_questions

    n_options = [len(q.options) for q in task_questions("arc_challenge", LIMIT, max_fewshot=5)]
    ways = {"format": 0, "stated": 0, "unread": 0}
    for j, (_, text, extracted) in enumerate(rows):
        strict = json.loads(extracted)["custom-extract"]
        if strict != "[invalid]" and "ABCDEFGHIJ".index(strict) < n_options[j]:
            want, way = strict.lower(), "format"
        else:
            letter = stated_letter(text, n_options[j])
            want, way = (letter.lower(), "stated") if letter else (None, "unread")
        ways[way] += 1
        assert cot.answers[j] == want
        if gold[j] is not None:
            assert cot.correct[j] == float(want == gold[j])
    note = cell.method("cot").note
    assert (f"{ways['format']} in the task's format, {ways['stated']} by the answer they state, "
            f"{ways['unread']} not read (of {LIMIT})") in note


def test_rerun_reuses_every_arm(study, smollm2):
    res, store = study
    again = elicit([smollm2], "arc_challenge", methods=METHODS, limit=LIMIT, store=store,
                   settings=ElicitSettings(**SETTINGS))
    a, b = res.cells[0], again.cells[0]
    # nothing computed again (a recomputed run would add its time): every arm's cost is read back from the store
    assert [x.seconds for x in b.arms] == pytest.approx([x.seconds for x in a.arms])
    assert all(x.seconds > 0 for x in b.arms if x.arm not in ("vote", "prior"))
    assert all(x.seconds is None for x in b.arms if x.arm in ("vote", "prior"))  # they compute nothing themselves
    assert [x.correct for x in a.arms] == [x.correct for x in b.arms]
    assert a.elicited == b.elicited and a.plain == b.plain


def test_a_study_run_in_two_calls_combines_into_the_one_call_numbers(study, smollm2):
    """Methods computed in separate calls (another session, a lost store: only the saved JSON) merge into
    the cell one call computes: arms united, the vote formed again, every number recomputed."""
    import dataclasses

    from sharpbench.elicit.result import ElicitResult
    from sharpbench.elicit.summary import combine

    res, store = study
    parts = [elicit([smollm2], "arc_challenge", methods=m, limit=LIMIT, store=store, settings=ElicitSettings(**SETTINGS))
             for m in ("plain,variants,probe", "plain,cot,system-prompts,vote")]
    parts = [ElicitResult.from_dict(p.to_dict(per_item=True)) for p in parts]  # as saved
    merged, full = combine(parts).cells[0], res.cells[0]
    assert [a.arm for a in merged.arms] == [a.arm for a in full.arms]
    assert [dataclasses.astuple(m) for m in merged.methods] == [dataclasses.astuple(m) for m in full.methods]
    assert merged.comparisons == full.comparisons
    assert (merged.elicited, merged.ratio, merged.prompt_std, merged.gold) == (full.elicited, full.ratio,
                                                                            full.prompt_std, full.gold)


def test_free_form_task_skips_the_probe(tmp_path, smollm2):
    res = elicit([smollm2], "gsm8k_cot", methods="plain,probe", limit=10, store=tmp_path / "g.duckdb",
                 settings=ElicitSettings(max_gen_toks=8, n_boot=50, n_splits=5))
    probe = res.cells[0].method("probe")
    assert probe.skipped and "free-form" in probe.note
    plain = res.cells[0].arms[0]
    assert all(a is None or a == canonical(a) for a in plain.answers)


def test_bad_input_fails_before_any_model_loads(tmp_path):
    def load(name):
        raise AssertionError("the model must not load")

    with pytest.raises(ElicitError, match="unknown method"):
        elicit(["m"], "arc_challenge", methods="plain,magic", load=load, store=tmp_path / "s.duckdb")
    with pytest.raises(ElicitError, match="does not know task"):
        elicit(["m"], "piqa", load=load, store=tmp_path / "s.duckdb")
    with pytest.raises(ElicitError, match="at least 10"):
        elicit(["m"], "arc_challenge", limit=5, load=load, store=tmp_path / "s.duckdb")
    with pytest.raises(ElicitError, match="self-consistency needs at least 2"):
        parse_methods("self-consistency:1")
    assert [m.label for m in parse_methods("cot,self-consistency")] == ["plain", "cot", "self-consistency:8"]


def test_arm_cost_accumulates_over_calls_and_splits_by_items(tmp_path):
    """Each run's seconds and items add up over the calls that computed them; an arm pays its runs' rate per
    item for its own items; a run computed without a record leaves the cost unknown."""
    from sharpbench.elicit.study import COST_CACHE, _Cell
    from sharpbench.store import Store

    with Store(tmp_path / "c.duckdb") as st:
        cell = _Cell(None, st, None, [], [], None, print)
        # 10 items of run a and 30 of run b computed in one 8-second call: 2 s and 6 s
        assert cell._cost([("a", 10, 10), ("b", 30, 30)], 8.0) == pytest.approx(8.0)
        # 10 more items of run a in 1 second: a now costs 3 s for 20 items; an arm of 4 of them costs 0.6 s
        assert cell._cost([("a", 10, 20)], 1.0) == pytest.approx(3.0)
        assert cell._cost([("a", 0, 4)], 0.5) == pytest.approx(0.6)
        assert st.artifacts(COST_CACHE, name="a")[0]["payload"] == pytest.approx({"seconds": 3.0, "items": 20})
        assert cell._cost([("c", 0, 1)], 0.1) is None  # run c has no record
        assert cell._cost([("a", 0, 4), (None, 4, 4)], 0.1) is None  # scored outside the store


@pytest.mark.parametrize("extracted, text, want, way", [
    ("C", "C", "c", "format"),  # the bare letter lm-eval's generative MMLU asks for
    ("The correct answer is C. paralysis", "The correct answer is C. paralysis", "c", "stated"),
    ("C. paralysis of the facial muscles", "C. paralysis of the facial muscles", "c", "stated"),
    ("To determine the truth values, we analyze", "To determine the truth values, we analyze", None, "unread"),
    ("E", "The answer is (E). No, the answer is (B).", "b", "stated"),  # E is no option of a 4-option question
])
def test_a_generated_mmlu_answer_is_read_as_one_option_letter(extracted, text, want, way):
    """lm-eval's generative MMLU filter keeps the whole response: only a bare option letter counts as the
    format; anything else is read by the letter it states."""
    from sharpbench.elicit.families import family
    from sharpbench.elicit.study import _Cell
    from sharpbench.results import Generation, GenSample

    cell = _Cell(None, None, family("mmlu"), [], [], ElicitSettings(), print)
    sample = GenSample(0, Generation(text, 8, "stop"), {"get_response": extracted})
    reads: dict[str, int] = {}
    assert cell._gen_answer(sample, "get_response", 4, reads, True) == (want, way)
    assert reads == {"stated": 0} | {way: 1}


@pytest.mark.parametrize("strict, text, lenient, want, way", [
    ("18", "... The answer is 18.", True, "18", "format"),
    ("[invalid]", "So she makes \\boxed{18} dollars a day.", True, "18", "stated"),
    ("[invalid]", "The answer is: $1,234", True, "1234", "stated"),
    ("[invalid]", "13 - 4 = 9 eggs remain", True, None, "unread"),  # a bare number is no stated answer
    ("[invalid]", "So she makes \\boxed{18} dollars a day.", False, None, "unread"),  # the plain arm: lm-eval's
])
def test_a_generated_gsm8k_answer_is_read_by_the_number_it_states(strict, text, lenient, want, way):
    from sharpbench.elicit.families import family
    from sharpbench.elicit.study import _Cell
    from sharpbench.results import Generation, GenSample

    cell = _Cell(None, None, family("gsm8k_cot"), [], [], ElicitSettings(), print)
    sample = GenSample(0, Generation(text, 8, "stop"), {"strict-match": strict})
    reads: dict[str, int] = {}
    assert cell._gen_answer(sample, "strict-match", 10, reads, lenient) == (want, way)
