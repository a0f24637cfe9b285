"""A cell's numbers from its arms, and combining results computed apart (other cells, or the same cell's
other methods) into one study."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from elicit_samples import MODELS, TASKS, sample_result

from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.result import ArmScore, ElicitResult
from sharpbench.elicit.stats import answer_prior, half_splits
from sharpbench.elicit.summary import Arm, combine, gold_from_arms, summarize

N = 40
STATS = dict(n_boot=200, n_splits=20, seed=7)
SETTINGS = {"limit": N, "n_boot": 200, "n_splits": 20, "seed": 7}


def _arms(seed: int = 3) -> tuple[list[Arm], list[str]]:
    """Prompt arms of different skill over 4 options, a probe, per-item answers scored against gold."""
    rng = np.random.default_rng(seed)
    gold = list(rng.choice(list("abcd"), N))
    arms = []
    for method, name, skill in [("plain", "plain", 0.4), ("variants", "variant:a", 0.5), ("variants", "variant:b", 0.3),
                                ("system-prompts", "system:terse", 0.45), ("direct", "direct", 0.35),
                                ("cot", "cot", 0.6)]:
        ans = [g if rng.random() < skill else (None if rng.random() < 0.1 else str(rng.choice(list("abcd"))))
               for g in gold]
        arms.append(Arm(method, name, ans, np.array([float(a == g) for a, g in zip(ans, gold)]), 100, 2.0, name))
    arms.append(Arm("probe", "probe", [], rng.random(N).round(1), 100, 5.0))
    return arms, gold


def _cell(arms, gold, methods, notes=None):
    return summarize("m", "t", [dataclasses.replace(a) for a in arms], gold, dict(notes or {}), methods,
                     params=1e8, instruct=True, dtype="bfloat16", **STATS)


def _result(cell, methods: str) -> ElicitResult:
    return ElicitResult([cell], {**SETTINGS, "methods": methods})


def _same_numbers(a, b):
    assert [x.arm for x in a.arms] == [x.arm for x in b.arms]
    assert [x.correct for x in a.arms] == [x.correct for x in b.arms]
    assert [dataclasses.astuple(m) for m in a.methods] == [dataclasses.astuple(m) for m in b.methods]
    assert [dataclasses.astuple(x) for x in a.comparisons] == [dataclasses.astuple(x) for x in b.comparisons]
    for k in ("plain", "elicited", "elicited_low", "elicited_high", "ratio", "ratio_low", "ratio_high",
              "best_method", "prompt_std", "prompt_range", "dtype", "params", "instruct"):
        assert getattr(a, k) == getattr(b, k), k


def test_summarize_forms_the_vote_and_scores_every_method():
    arms, gold = _arms()
    cell = _cell(arms, gold, {"plain", "variants", "system-prompts", "cot", "vote", "probe"})
    vote = next(a for a in cell.arms if a.arm == "vote")
    assert vote.correct == [float(v is not None and v == g) for v, g in zip(vote.answers, gold)]
    assert cell.gold == gold and cell.method("vote").note.startswith("majority over 6 prompts")
    assert [m.method for m in cell.methods] == ["plain", "variants", "system-prompts", "direct", "cot",
                                                "best-prompt", "vote", "probe", "prior"]
    assert cell.method("variants").n_arms == 3  # the plain prompt is one of the variants
    assert cell.plain == pytest.approx(np.mean(arms[0].correct))
    with pytest.raises(ElicitError, match="covers 39 items"):
        _cell([dataclasses.replace(arms[0], correct=arms[0].correct[:-1])], gold, {"plain"})


def test_a_cell_computed_in_two_calls_merges_into_the_numbers_of_one():
    arms, gold = _arms()
    full = _cell(arms, gold, {"plain", "variants", "system-prompts", "cot", "vote", "probe"},
                 {"cot": "generated in the chat template", "system-prompts": "system messages in the chat template"})
    first = _cell([arms[0], arms[4], arms[5]], gold, {"plain", "cot"}, {"cot": "generated in the chat template"})
    second = _cell([arms[0], *arms[1:4], arms[6]], gold, {"plain", "variants", "system-prompts", "vote", "probe"},
                   {"system-prompts": "system messages in the chat template"})
    both = combine([_result(first, "plain,cot"), _result(second, "plain,variants,system-prompts,vote,probe")])
    assert len(both.cells) == 1
    _same_numbers(both.cell("m", "t"), full)
    assert both.cell("m", "t").method("cot").note == "generated in the chat template"
    assert set(both.settings["methods"].split(",")) == {"plain", "cot", "variants", "system-prompts", "vote", "probe"}


def test_a_cell_saved_before_gold_was_kept_merges_by_the_answers_arms_got_right():
    arms, gold = _arms()
    full = _cell([*arms[:3], arms[5]], gold, {"plain", "variants", "cot", "vote"})
    parts = [(_cell(arms[:3], gold, {"plain", "variants"}), "plain,variants"),
             (_cell([arms[0], arms[5]], gold, {"plain", "cot", "vote"}), "plain,cot,vote")]  # a vote of 2: skipped
    assert parts[1][0].method("vote").skipped
    old = []
    for cell, methods in parts:  # saved and read back as results were before they kept the gold answers
        d = _result(cell, methods).to_dict(per_item=True)
        d["cells"][0].pop("gold")
        old.append(ElicitResult.from_dict(d))
    merged = combine(old).cells[0]
    _same_numbers(merged, full)  # the vote over all four prompts, scored right where the gold is known
    known = gold_from_arms(merged.arms, N)
    assert all(k is None or k == g for k, g in zip(known, gold))
    assert [k is not None for k in known] == [any(a.correct[j] for a in merged.arms if a.answers) for j in range(N)]


def test_merging_refuses_arms_that_disagree_and_cells_without_their_answers():
    arms, gold = _arms()
    a = _cell(arms[:2], gold, {"plain", "variants"})
    flipped = dataclasses.replace(arms[1], answers=list(arms[1].answers), correct=arms[1].correct.copy())
    flipped.correct[0] = 1 - flipped.correct[0]
    b = _cell([arms[0], flipped], gold, {"plain", "variants"})
    with pytest.raises(ElicitError, match=r"arm variant:a differs between results \(1 items"):
        combine([_result(a, "plain,variants"), _result(b, "plain,variants")])
    c = _cell(arms[:3], gold[:], {"plain", "variants"})
    c.gold = ["a"] * N
    with pytest.raises(ElicitError, match="gold answers"):
        combine([_result(a, "plain,variants"), _result(c, "plain,variants")])
    sample = sample_result(models=MODELS[:1], tasks=TASKS[:1])  # arms without per-item answers
    twice = ElicitResult([dataclasses.replace(sample.cells[0])], dict(sample.settings))
    with pytest.raises(ElicitError, match="without its per-item answers"):
        combine([sample, twice])
    short = _cell(arms[:2], gold, {"plain"})
    short.n_items = N - 1
    with pytest.raises(ElicitError, match="cover 40 and 39 items"):
        combine([_result(a, "plain"), _result(short, "plain")])


def test_combine_keeps_every_cell_and_unites_the_methods(tmp_path):
    a = sample_result(models=MODELS[:2])
    b = sample_result(models=MODELS[2:])
    b.settings = {**b.settings, "methods": "plain,probe,extra", "batch_size": 64}
    both = combine([a, b])
    assert [(c.model, c.task) for c in both.cells] == [(c.model, c.task) for c in a.cells + b.cells]
    methods = both.settings["methods"].split(",")
    assert set(methods) == set(a.settings["methods"].split(",")) | {"plain", "probe", "extra"}
    assert len(methods) == len(set(methods))
    back = ElicitResult.load(both.save(tmp_path / "both.json", per_item=True))
    assert back.cell(MODELS[3][0], TASKS[0][0]).arms[0].correct == b.cells[-len(TASKS)].arms[0].correct


def test_combine_refuses_settings_that_change_the_numbers_and_nothing():
    a, b = sample_result(models=MODELS[:1]), sample_result(models=MODELS[1:2])
    b.settings = {**b.settings, "n_splits": 7}
    with pytest.raises(ElicitError, match="n_splits"):
        combine([a, b])
    with pytest.raises(ElicitError, match="at least one"):
        combine([])


def test_gold_from_arms_refuses_two_right_answers():
    one = ArmScore("plain", "plain", 1.0, 2, answers=["a", "b"], correct=[1.0, 1.0])
    other = ArmScore("cot", "cot", 0.5, 2, answers=["c", "b"], correct=[1.0, 0.0])
    assert gold_from_arms([one, dataclasses.replace(other, correct=[0.0, 1.0])], 2) == ["a", "b"]
    with pytest.raises(ElicitError, match="item 0: arms are right with answers 'a' and 'c'"):
        gold_from_arms([one, other], 2)


def test_a_probe_is_compared_with_the_answer_prior_which_never_counts_as_elicited():
    arms, gold = _arms()
    gold = ["a" if j % 5 else g for j, g in enumerate(gold)]  # "a" right far more often than 1 in 4
    with_probe = _cell(arms, gold, {"plain", "variants", "probe"})
    prior = with_probe.method("prior")
    expected = answer_prior(gold, half_splits(N, STATS["n_splits"], STATS["seed"]))
    assert prior.score == pytest.approx(expected.mean()) and prior.score > 0.5
    assert prior.note.startswith("baseline: the answer most often right")
    assert {(c.a, c.b) for c in with_probe.comparisons} >= {("probe", "elicited"), ("probe", "prior")}
    without = _cell(arms[:-1], gold, {"plain", "variants"})  # no probe: no prior either
    assert without.method("prior") is None and with_probe.best_method != "prior"
    assert (with_probe.elicited, with_probe.ratio) == (without.elicited, without.ratio)  # a baseline, not a prompt
    unknown = _cell(arms, [None] + gold[1:], {"plain", "probe"})
    assert unknown.method("prior").skipped and "gold answers are unknown" in unknown.method("prior").note


def test_a_saved_cell_alone_is_recomputed_with_its_numbers_unchanged_and_gains_the_prior():
    """The repository's saved Qwen2.5-Coder-0.5B AGIEval cell (probe included), combined on its own."""
    from pathlib import Path

    saved = ElicitResult.load(Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "elicit_cells"
                              / "qwen2.5-coder-0.5b__agieval_en.json")
    old = saved.cells[0]
    old_rows = {m.method: m for m in old.methods}
    assert "prior" not in old_rows  # saved before the prior existed
    new = combine([saved]).cells[0]
    for m in old.methods:
        assert dataclasses.astuple(new.method(m.method)) == pytest.approx(dataclasses.astuple(m)), m.method
    assert (new.plain, new.elicited, new.ratio, new.best_method) == (old.plain, old.elicited, old.ratio,
                                                                     old.best_method)
    assert new.seconds == pytest.approx(old.seconds) and new.seconds > 0  # the prior costs nothing
    assert new.method("prior").score == pytest.approx(
        answer_prior(old.gold, half_splits(old.n_items, saved.settings["n_splits"], saved.settings["seed"])).mean())
    assert any((c.a, c.b) == ("probe", "prior") for c in new.comparisons)
