"""Several generative tasks in one decoding stream: each item lands in its own run, as if run alone."""

from __future__ import annotations

import pytest

import sharpbench as sb


def _texts(store, rep):
    with sb.Store(store) as st:
        return {t.task: [(r.item_id, [s.generation.text for s in r.samples]) for r in st.item_results(t.run_id)]
                for t in rep.tasks}


@pytest.mark.parametrize("sampled", [False, True])
def test_tasks_sharing_item_ids_decode_together(tmp_path, smollm2, sampled):
    tasks = "mmlu_anatomy_gen,mmlu_astronomy_gen,mmlu_virology_gen"  # ids 0..2 in each: routed by position
    kw = dict(limit=3, gen_kwargs={"max_gen_toks": 6, **({"do_sample": True, "temperature": 1.0} if sampled else {})},
              repeats=2 if sampled else None, seed=7 if sampled else None)
    together = sb.evaluate(smollm2, tasks, store=tmp_path / "a.duckdb", **kw)
    apart = {}
    for t in tasks.split(","):
        rep = sb.evaluate(smollm2, t, store=tmp_path / "b.duckdb", **kw)
        apart.update(_texts(tmp_path / "b.duckdb", rep))
    assert _texts(tmp_path / "a.duckdb", together) == apart
    assert [t.n_computed for t in together.tasks] == [3, 3, 3]
    again = sb.evaluate(smollm2, tasks, store=tmp_path / "a.duckdb", **kw)
    assert again.n_computed == 0
    assert [t.metrics for t in again.tasks] == [t.metrics for t in together.tasks]
