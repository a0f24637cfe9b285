"""Store schema v2: generative items (write, read back, resume by sample), kinds, matrices, merge, export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sharpbench.metrics import summarize
from sharpbench.results import ChoiceResult, GenItemResult, GenSample, Generation, ItemResult
from sharpbench.store import RunSpec, Store, StoreError
from sharpbench.store.generations import sample_hash
from store_gen_helpers import gen_item, gen_result, gen_spec


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.duckdb") as st:
        yield st


def _mc(ids, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in ids:
        lls = rng.normal(-5, 2, 3)
        out.append(ItemResult(i, i % 3, tuple(ChoiceResult(float(x), False, 2) for x in lls),
                              {"acc": float(np.argmax(lls) == i % 3), "acc_norm": 0.0}))
    return out


def test_generative_roundtrip_is_exact(store):
    spec = gen_spec(run_config={"gen_kwargs": {"max_gen_toks": 64}, "system_prompt": "Be careful."})
    res = [gen_result(i, range(3), right={0, 2}) for i in range(4)]
    items = {i: gen_item(i, repeats=3) for i in range(4)}
    assert store.write_items(spec, res, {1: {"level": 3}}, content_hashes={i: it.content_hash for i, it in items.items()},
                             gen_items=items) == 4
    back = store.item_results(spec.run_id)
    assert back == res  # dataclass equality: texts, tokens, stop reasons, extracted, correct, seconds, metrics
    assert all(isinstance(r, GenItemResult) for r in back)
    assert store.item_results(spec.run_id, [2]) == [res[2]]

    run = store.get_run(spec.run_id)
    assert run["kind"] == "generate_until"
    assert run["primary_metric"] == "exact_match,strict-match"
    assert run["run_config"] == {"gen_kwargs": {"max_gen_toks": 64}, "system_prompt": "Be careful."}
    items_df = store.items_frame([spec.run_id])
    assert list(items_df["gold"]) == [-1] * 4 and list(items_df["n_choices"]) == [0] * 4
    assert list(items_df["gold_text"]) == ["0", "2", "4", "6"]
    assert items_df["prompt"].iloc[3] == items[3].prompt
    assert json.loads(items_df["metadata"].iloc[1]) == {"level": 3}
    assert list(store.stored_item_hashes(spec.run_id).values()) == [items[i].content_hash for i in range(4)]
    gens = store.generations_frame([spec.run_id])
    assert len(gens) == 12 and set(gens["content_hash"]) == {sample_hash(items[0]), sample_hash(items[1]),
                                                               sample_hash(items[2]), sample_hash(items[3])}
    assert store.choices_frame([spec.run_id]).empty

    # the pipeline's finish_run: summarize over what item_results returns
    agg = summarize(back)
    assert agg["exact_match,strict-match"][0] == pytest.approx(0.5)
    store.finish_run(spec.run_id, status="complete", metrics=agg)
    assert store.runs()["kind"].tolist() == ["generate_until"]


def test_chunk_is_all_or_nothing(store):
    spec = gen_spec()
    store.write_items(spec, [gen_result(0, range(2))])
    with pytest.raises(StoreError, match="already stored"):
        store.write_items(spec, [gen_result(1, range(2)), gen_result(0, range(2))])
    assert store.stored_item_ids(spec.run_id) == {0}
    assert len(store.generations_frame([spec.run_id])) == 2
    bad = GenItemResult(5, "1", (GenSample(0, Generation("a", 1, "eos")), GenSample(0, Generation("b", 1, "eos"))))
    with pytest.raises(ValueError, match="sample index 0"):
        store.write_items(spec, [gen_result(4), bad])
    with pytest.raises(ValueError, match="no samples"):
        store.write_items(spec, [GenItemResult(6, "1", ())])
    assert store.stored_item_ids(spec.run_id) == {0}


def test_a_run_holds_one_kind(store):
    spec = gen_spec()
    store.write_items(spec, [gen_result(0)])
    with pytest.raises(StoreError, match="generate_until run; it cannot hold multiple-choice"):
        store.write_items(spec, _mc([1]))
    with pytest.raises(StoreError, match="mixes"):
        store.write_items(spec, [gen_result(2)] + _mc([3]))
    mc = RunSpec("m1", "fp1", "hf", "float32", "piqa", 0, "t")
    store.write_items(mc, _mc([0]))
    assert store.get_run(mc.run_id)["kind"] == "multiple_choice"
    assert store.get_run(mc.run_id)["primary_metric"] == "acc"
    with pytest.raises(StoreError, match="multiple_choice run"):
        store.write_items(mc, [gen_result(1)])
    with pytest.raises(ValueError, match="run kind must be one of"):
        RunSpec("m", "f", "hf", "float32", "t", 0, "x", kind="chat")


def test_resume_computes_only_missing_samples(store):
    spec = gen_spec()
    four = {i: gen_item(i, repeats=4) for i in range(3)}
    store.write_items(spec, [gen_result(i, range(4)) for i in range(3)], gen_items=four)
    assert store.missing_samples(spec.run_id, list(four.values())) == {0: [], 1: [], 2: []}

    eight = [gen_item(i, repeats=8) for i in range(4)]  # item 3 was never generated
    assert store.missing_samples(spec.run_id, eight) == {0: [4, 5, 6, 7], 1: [4, 5, 6, 7], 2: [4, 5, 6, 7],
                                                         3: list(range(8))}
    have = store.stored_samples(spec.run_id, eight)
    assert sorted(have) == [0, 1, 2] and [s.index for s in have[1]] == [0, 1, 2, 3]
    assert have[1] == list(gen_result(1, range(4)).samples)

    # the engine adds samples 4..7 to the stored 0..3 and writes the whole item again
    full = gen_result(1, range(8))
    store.write_items(spec, [full], content_hashes={1: eight[1].content_hash}, overwrite=True,
                      gen_items={1: eight[1]})
    assert store.missing_samples(spec.run_id, eight[:2]) == {0: [4, 5, 6, 7], 1: []}
    assert store.item_results(spec.run_id, [1]) == [full]
    assert len(store.generations_frame([spec.run_id], item_ids=[1])) == 8

    # fewer repeats: nothing to generate, only the first samples are handed back
    two = gen_item(1, repeats=2)
    assert store.missing_samples(spec.run_id, [two]) == {1: []}
    assert [s.index for s in store.stored_samples(spec.run_id, [two])[1]] == [0, 1]

    # a changed prompt makes every stored sample stale
    changed = gen_item(0, repeats=4, prompt="Q: something else\nA:")
    assert store.missing_samples(spec.run_id, [changed]) == {0: [0, 1, 2, 3]}
    assert store.stored_samples(spec.run_id, [changed]) == {}

    # samples written without their GenItem carry no hash: never reused
    other = gen_spec(task="gsm8k_cot_zeroshot")
    store.write_items(other, [gen_result(0, range(2))])
    assert store.missing_samples(other.run_id, [gen_item(0, repeats=2)]) == {0: [0, 1]}


def test_sample_hash_ignores_repeats_and_metadata_only():
    base = gen_item(3, repeats=1)
    assert sample_hash(base) == sample_hash(gen_item(3, repeats=8))
    from dataclasses import replace

    assert sample_hash(replace(base, metadata={"x": 1})) == sample_hash(base)
    for change in ({"max_gen_toks": 65}, {"until": ("Q:",)}, {"do_sample": True, "temperature": 0.7},
                   {"target": "7"}, {"prompt": "other"}):
        assert sample_hash(replace(base, **change)) != sample_hash(base), change
    # nor does the item's content hash: more repeats extend the stored samples (missing_samples says which)
    assert base.content_hash == gen_item(3, repeats=8).content_hash


def test_awkward_generated_text_is_stored(store):
    spec = gen_spec()
    texts = ["", "nul \x00 inside", "bad byte \udcff here", "emoji \U0001F600 and \u00e9"]
    res = [GenItemResult(i, "1", (GenSample(0, Generation(t, 3, "length"), {"strict-match": t},
                                            {"strict-match": 0.0}),), {"exact_match,strict-match": 0.0})
           for i, t in enumerate(texts)]
    store.write_items(spec, res)
    back = [r.samples[0].generation.text for r in store.item_results(spec.run_id)]
    assert back == ["", "nul \x00 inside", "bad byte \ufffd here", "emoji \U0001F600 and \u00e9"]
    assert store.item_results(spec.run_id)[2].samples[0].extracted == {"strict-match": "bad byte \ufffd here"}


def test_delete_and_replace_drop_generations(store):
    spec = gen_spec()
    store.write_items(spec, [gen_result(i, range(2)) for i in range(3)])
    store.write_items(spec, [gen_result(9, range(1))], replace=True)
    assert len(store.generations_frame()) == 1
    store.delete_run(spec.run_id)
    assert store.generations_frame().empty and store.items_frame().empty


# ------------------------------------------------------------------ response matrices
def _gen_models(store, task="gsm8k_cot", n=6):
    """Three models: a knows items 0-4, b knows 0-2, c knows 0 (flexible-extract one more each)."""
    specs = {}
    for name, k in (("a", 5), ("b", 3), ("c", 1)):
        spec = gen_spec(model=name, fp=f"fp-{name}", task=task)
        store.write_items(spec, [gen_result(i, range(2), right=set(range(k)), flex_right=set(range(k + 1)))
                                 for i in range(n)])
        specs[name] = spec
    return specs


def test_matrix_of_a_generative_run_per_filter(store):
    _gen_models(store)
    m = store.response_matrix()  # default: the primary metric, exact_match of the first filter
    assert list(m.models) == ["a", "b", "c"]
    assert list(m.items) == [f"gsm8k_cot/{i}" for i in range(6)]
    np.testing.assert_array_equal(m.values, [[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    strict = store.response_matrix(metric="exact_match,strict-match")
    np.testing.assert_array_equal(strict.values, m.values)
    flex = store.response_matrix(metric="exact_match,flexible-extract")
    np.testing.assert_array_equal(flex.values, [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])
    assert list(m.item_meta["n_choices"]) == [0] * 6
    with pytest.raises(StoreError, match=r"not stored for the selected runs \(stored: exact_match,strict-match, "
                                         r"exact_match,flexible-extract\)"):
        store.response_matrix(metric="exact_match,nope")
    with pytest.raises(ValueError, match="invalid metric name"):
        store.response_matrix(metric="x'); DROP TABLE runs; --")


def test_matrix_mixes_kinds_by_primary_metric(store):
    _gen_models(store, n=3)
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        # same n-shot as the generative runs: one respondent per model (the existing labelling rule)
        store.write_items(RunSpec(name, f"fp-{name}", "hf", "float32", "piqa", 8, "t"), _mc(range(4), seed))
    m = store.response_matrix()
    assert list(m.models) == ["a", "b", "c"]
    assert m.n_items == 7 and not np.isnan(m.values).any()
    acc = store.items_frame().dropna(subset=["acc"])
    assert m.values[:, 3:].sum() == acc["acc"].sum()
    only_acc = store.response_matrix(metric="acc")  # generative cells are missing, not wrong
    assert np.isnan(only_acc.values[:, :3]).all() and not np.isnan(only_acc.values[:, 3:]).any()


# ------------------------------------------------------------------ export and merge
def test_export_holds_generations(store, tmp_path):
    _gen_models(store, n=2)
    paths = store.export(tmp_path / "exp", format="parquet")
    assert "generations.parquet" in [p.name for p in paths]
    gens = pd.read_parquet(tmp_path / "exp" / "generations.parquet")
    assert len(gens) == 12 and set(gens.columns) >= {"text", "n_tokens", "stop_reason", "extracted", "correct"}


def test_merge_keeps_generations(tmp_path):
    from sharpbench.store.merge import merge_stores

    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    spec = gen_spec()
    with Store(a) as st:
        st.write_items(spec, [gen_result(i, range(2), right={0}) for i in range(3)])
        st.finish_run(spec.run_id, status="complete", metrics=summarize(st.item_results(spec.run_id)))
    with Store(b) as st:
        st.write_items(spec, [gen_result(i, range(2), right={3}) for i in range(2, 5)])
        st.write_items(RunSpec("m1", "fp1", "hf", "float32", "piqa", 0, "t"), _mc(range(2)))
    out = merge_stores([a, b], tmp_path / "c.duckdb")
    assert out.n_items == 7
    with Store(tmp_path / "c.duckdb", read_only=True) as st:
        back = st.item_results(spec.run_id)
        assert [r.item_id for r in back] == [0, 1, 2, 3, 4]
        assert back[3] == gen_result(3, range(2), right={3}) and back[0] == gen_result(0, range(2), right={0})
        run = st.get_run(spec.run_id)
        assert run["kind"] == "generate_until" and run["primary_metric"] == "exact_match,strict-match"
        assert run["metrics"]["exact_match,strict-match"][0] == pytest.approx(2 / 5)
        assert len(st.generations_frame()) == 10


def test_primary_metric(store):
    bare = GenItemResult(0, "1", (GenSample(0, Generation("1", 1, "eos")),))
    spec = gen_spec()
    store.write_items(spec, [bare])  # no metrics yet: the run learns its primary metric from a later chunk
    assert store.get_run(spec.run_id)["primary_metric"] is None
    store.write_items(spec, [gen_result(1)])
    assert store.get_run(spec.run_id)["primary_metric"] == "exact_match,strict-match"
    store.write_items(spec, [gen_result(2)])
    chosen = gen_spec(task="minerva_math500", primary_metric="exact_match,flexible-extract")
    store.write_items(chosen, [gen_result(0)])
    assert store.get_run(chosen.run_id)["primary_metric"] == "exact_match,flexible-extract"


def test_lmeval_generative_samples_use_the_same_metric_names(tmp_path):
    """`exact_match,<filter>` selects a filter's cells in lm-eval --log_samples output as in the store."""
    from sharpbench.matrix.io import read_matrix

    d = tmp_path / "org__m"
    d.mkdir()
    (d / "results_2026-01-01T00-00-00.json").write_text(json.dumps({"model_name": "org/m"}))
    lines = []
    for i in range(3):  # lm-eval writes one line per document and filter
        for flt, em in (("strict-match", float(i == 0)), ("flexible-extract", float(i < 2))):
            lines.append(json.dumps({"doc_id": i, "filter": flt, "exact_match": em, "target": str(i),
                                     "resps": [[f"answer {i}"]], "filtered_resps": [str(i)]}))
    (d / "samples_gsm8k_cot_2026-01-01T00-00-00.jsonl").write_text("\n".join(lines))
    strict = read_matrix(tmp_path, metric="exact_match,strict-match")
    flex = read_matrix(tmp_path, metric="exact_match,flexible-extract")
    assert strict.to_frame().loc["org/m"].tolist() == [1.0, 0.0, 0.0]
    assert flex.to_frame().loc["org/m"].tolist() == [1.0, 1.0, 0.0]
    assert read_matrix(tmp_path, metric="exact_match").to_frame().loc["org/m"].tolist() == [1.0, 0.0, 0.0]
