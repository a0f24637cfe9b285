"""Self-consistency end to end on the packaged SmolLM2, on a multiple-choice task: K samples per item stored
in one run, the arm's answer the majority of the samples' answers, a rerun computing nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from sharpbench.elicit.extract import stated_letter
from sharpbench.elicit.families import family, sample_items
from sharpbench.elicit.stats import canonical
from sharpbench.elicit.study import ElicitSettings, elicit
from sharpbench.store import Store

pytestmark = pytest.mark.slow

LIMIT, K = 10, 3
SETTINGS = dict(max_gen_toks=24, sc_temperature=1.0, n_boot=100, n_splits=10)


@pytest.fixture(scope="module")
def sc(tmp_path_factory, smollm2):
    store = tmp_path_factory.mktemp("sc") / "s.duckdb"
    res = elicit([smollm2], "arc_challenge", methods=f"plain,self-consistency:{K}", limit=LIMIT, store=store,
                 settings=ElicitSettings(**SETTINGS))
    return res, store


def test_k_samples_per_item_and_the_majority_of_their_answers(sc):
    res, store = sc
    cell = res.cells[0]
    arm = next(a for a in cell.arms if a.arm == f"sc@{K}")
    assert arm.method == "self-consistency" and len(arm.answers) == LIMIT
    method = next(m for m in cell.methods if m.method == "self-consistency")
    assert method.score == pytest.approx(arm.accuracy)
    assert f"majority of {K} samples at temperature 1.0" in method.note
    with Store(store, read_only=True) as s:
        runs = s.runs()
        run = runs[runs.task.str.endswith("_cot")].iloc[0]
        results = s.item_results(run.run_id, list(range(LIMIT)))
    assert [len(r.samples) for r in results] == [K] * LIMIT
    texts = [smp.generation.text for r in results for smp in r.samples]
    assert len(set(texts)) > LIMIT  # sampled: the samples of an item differ
    _, questions = sample_items(family("arc_challenge"), LIMIT)
    for r, q, ans, ok in zip(results, questions, arm.answers, arm.correct):
        n = len(q.options)
        read = []
        for smp in r.samples:  # the task's own format first, else the letter the text states (by hand)
            x = canonical(smp.extracted.get(next(iter(smp.extracted))), ignore_punctuation=True)
            if x not in "abcdefghij"[:n] or not x:
                x = canonical(stated_letter(smp.generation.text, n), ignore_punctuation=True)
            read.append(x)
        counts = Counter(x for x in read if x is not None)
        top = max(counts.values(), default=0)
        want = next((x for x in read if x is not None and counts[x] == top), None)  # ties: the earliest sample
        assert ans == want, (read, ans)
        assert ok == float(ans is not None and ans == canonical(r.gold, ignore_punctuation=True))
    assert any(a is not None for a in arm.answers)  # some samples were read: the check above is not vacuous
    assert arm.accuracy == pytest.approx(sum(arm.correct) / LIMIT)


def test_rerun_reuses_the_samples(sc, smollm2):
    res, store = sc
    again = elicit([smollm2], "arc_challenge", methods=f"plain,self-consistency:{K}", limit=LIMIT, store=store,
                   settings=ElicitSettings(**SETTINGS))
    a = next(x for x in res.cells[0].arms if x.arm == f"sc@{K}")
    b = next(x for x in again.cells[0].arms if x.arm == f"sc@{K}")
    assert a.answers == b.answers and a.seconds == pytest.approx(b.seconds)
