"""Store: schema, chunked writes, duplicates, artifacts, matrices, export, bad files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import duckdb
import numpy as np
import pandas as pd
import pytest

from sharpbench.engine.results import ChoiceResult, ItemResult
from sharpbench.store import (
    SCHEMA_VERSION,
    RunSpec,
    Store,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreVersionError,
    run_key,
)


def _spec(model="m1", fp="fp1", task="piqa", dtype="float32", k=0, group=None) -> RunSpec:
    return RunSpec(model, fp, "hf", dtype, task, k, "tmpl", task_group=group, task_version="1.0")


def _results(ids, n_choices=2, seed=0) -> list[ItemResult]:
    rng = np.random.default_rng(seed)
    out = []
    for i in ids:
        lls = rng.normal(-5, 2, n_choices)
        gold = i % n_choices
        acc = float(np.argmax(lls) == gold)
        out.append(
            ItemResult(
                i,
                gold,
                tuple(ChoiceResult(float(ll), bool(j == np.argmax(lls)), 3 + j) for j, ll in enumerate(lls)),
                {"acc": acc, "acc_norm": 1.0 - acc, "brier": 0.25, "exact_match": 1.0},
            )
        )
    return out


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.duckdb") as st:
        yield st


def test_run_key_ignores_model_name_and_tracks_setup():
    a = _spec(model="a")
    assert a.run_id == _spec(model="b").run_id  # same weights, other name -> same run
    assert a.run_id != _spec(fp="other").run_id
    assert a.run_id != _spec(dtype="bfloat16").run_id
    assert a.run_id != _spec(k=5).run_id
    assert a.run_id == run_key("fp1", "hf", "float32", "piqa", 0, "tmpl")


def test_write_roundtrip_exact(store):
    spec = _spec()
    res = _results(range(7), n_choices=4)
    assert store.write_items(spec, res, {0: {"subject": "anatomy"}}) == 7
    back = store.item_results(spec.run_id)
    assert back == res  # logliks, greedy flags, n_tokens and metrics bit-identical
    run = store.get_run(spec.run_id)
    assert run["n_items"] == 7 and run["status"] == "running" and run["task_version"] == "1.0"
    assert store.stored_item_ids(spec.run_id) == set(range(7))
    items = store.items_frame([spec.run_id])
    assert json.loads(items.loc[items.item_id == 0, "metadata"].iloc[0]) == {"subject": "anatomy"}
    assert json.loads(items.loc[0, "extra_metrics"]) == {"exact_match": 1.0}
    assert len(store.choices_frame([spec.run_id])) == 28


def test_duplicate_chunk_is_rejected_whole(store):
    spec = _spec()
    store.write_items(spec, _results(range(5)))
    with pytest.raises(StoreError, match="already stored; nothing was written"):
        store.write_items(spec, _results(range(4, 9)))  # item 4 is a duplicate
    assert store.stored_item_ids(spec.run_id) == set(range(5))
    assert len(store.choices_frame()) == 10
    store.write_items(spec, _results(range(5, 9)))  # the store still works after the rollback
    assert store.get_run(spec.run_id)["n_items"] == 9


def test_primary_keys_forbid_duplicate_rows(store):
    spec = _spec()
    store.write_items(spec, _results([0]))
    with pytest.raises(duckdb.ConstraintException):
        store.connection.execute("INSERT INTO choices VALUES (?, 0, 0, -1.0, true, 1)", [spec.run_id])


def test_bad_result_fails_before_writing(store):
    spec = _spec()
    bad = _results(range(3)) + [ItemResult(3, 0, (ChoiceResult(float("nan"), False, 1),), {})]
    with pytest.raises(ValueError, match="loglik is nan"):
        store.write_items(spec, bad)
    assert store.get_run(spec.run_id) is None and store.items_frame().empty


def test_finish_run_limit_and_metrics(store):
    spec = _spec()
    store.write_items(spec, _results(range(3)))
    store.finish_run(spec.run_id, status="complete", metrics={"acc": (0.5, np.float64(0.1))}, limit=3)
    run = store.get_run(spec.run_id)
    assert run["status"] == "complete" and run["limit"] == 3 and run["metrics"] == {"acc": [0.5, 0.1]}
    store.finish_run(spec.run_id, status="complete", limit=2)  # limit only grows
    assert store.get_run(spec.run_id)["limit"] == 3
    store.finish_run(spec.run_id, status="complete", limit=None)  # whole split asked
    assert store.get_run(spec.run_id)["limit"] is None
    store.finish_run(spec.run_id, status="complete", limit=10)
    assert store.get_run(spec.run_id)["limit"] is None


def test_stale_running_run_becomes_interrupted_on_reopen(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as st:
        spec = _spec()
        st.write_items(spec, _results(range(2)))
    with Store(path) as st:
        assert st.get_run(spec.run_id)["status"] == "interrupted"


def test_runs_filters(store):
    store.write_items(_spec(model="a", fp="A"), _results(range(2)))
    store.write_items(_spec(model="b", fp="B", task="arc_easy"), _results(range(3)))
    assert set(store.runs()["model_id"]) == {"a", "b"}
    assert list(store.runs(models=["b"])["task"]) == ["arc_easy"]
    assert store.runs(tasks=["piqa"], models="b").empty


def test_response_matrix(store):
    store.write_items(_spec(model="a", fp="A", group="mmlu", task="mmlu_anatomy"), _results(range(4), 4),
                      {i: {"subject": "anatomy"} for i in range(4)})
    store.write_items(_spec(model="b", fp="B", group="mmlu", task="mmlu_anatomy"), _results(range(2), 4, seed=1))
    store.write_items(_spec(model="a", fp="A", task="piqa"), _results(range(3)))
    m = store.response_matrix()
    assert m.models == ("a", "b")
    assert set(m.items) == {f"mmlu_anatomy/{i}" for i in range(4)} | {f"piqa/{i}" for i in range(3)}
    assert np.isnan(m.to_frame().loc["b", "mmlu_anatomy/3"]) and np.isnan(m.to_frame().loc["b", "piqa/0"])
    assert m.item_meta.loc["mmlu_anatomy/1", "subject"] == "anatomy"
    assert m.item_meta.loc["mmlu_anatomy/1", "group"] == "mmlu"
    assert m.item_meta.loc["piqa/2", "n_choices"] == 2
    assert m.model_meta.loc["b", "fingerprint"] == "B"
    expected = [r.metrics["acc"] for r in _results(range(4), 4)]
    assert m.to_frame().loc["a", [f"mmlu_anatomy/{i}" for i in range(4)]].tolist() == expected
    sub = store.response_matrix(tasks=["piqa"], metric="acc_norm")
    assert sub.shape == (1, 3)
    assert store.response_matrix(metric="exact_match").to_frame().iloc[0, 0] == 1.0
    with pytest.raises(StoreError, match="no stored items match"):
        store.response_matrix(models=["nobody"])
    with pytest.raises(StoreError, match="not stored"):
        store.response_matrix(metric="f1")


def test_response_matrix_disambiguates_setups(store):
    store.write_items(_spec(model="a", dtype="float32"), _results(range(2)))
    store.write_items(_spec(model="a", dtype="bfloat16"), _results(range(2)))
    m = store.response_matrix()
    assert set(m.models) == {"a[hf,float32,0-shot]", "a[hf,bfloat16,0-shot]"}


def test_artifacts(store):
    store.save_artifact("irt", "2pl", {"a": np.arange(3), "loglik": np.float64(-1.5)})
    store.save_artifact("distill", "subset", {"items": ["piqa/1"]})
    store.save_artifact("irt", "2pl", {"a": [9]})  # replaces
    arts = store.artifacts("irt")
    assert len(arts) == 1 and arts[0]["payload"] == {"a": [9]} and arts[0]["name"] == "2pl"
    assert {a["kind"] for a in store.artifacts()} == {"irt", "distill"}
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        store.save_artifact("x", "y", {"bad": object()})


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export(store, tmp_path, fmt):
    spec = _spec()
    store.write_items(spec, _results(range(5), 3))
    paths = store.export(tmp_path / "exp", format=fmt)
    assert sorted(p.name for p in paths) == sorted(f"{t}.{fmt}" for t in ("runs", "items", "choices", "generations", "artifacts"))
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    choices = read(tmp_path / "exp" / f"choices.{fmt}")
    assert len(choices) == 15
    np.testing.assert_array_equal(
        np.sort(choices["loglik"].to_numpy()), np.sort(store.choices_frame()["loglik"].to_numpy())
    )
    with pytest.raises(ValueError, match="unknown export format"):
        store.export(tmp_path / "x", format="xlsx")


def test_corrupt_file(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorruptError, match="not a readable DuckDB store"):
        Store(bad)


def test_plain_duckdb_file_is_not_a_store_read_only(tmp_path):
    path = tmp_path / "other.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(StoreCorruptError, match="not a sharpbench store"):
        Store(path, read_only=True)


def test_missing_store_read_only(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "none.duckdb", read_only=True)


def test_newer_schema_version(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    with pytest.raises(StoreVersionError, match="newer than this sharpbench"):
        Store(path)


def test_locked_by_another_process(tmp_path):
    path = tmp_path / "s.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from sharpbench.store import Store
            s = Store({str(path)!r})
            print("ready", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match=rf"in use by another process \(pid {holder.pid}\)"):
            Store(path)
        with pytest.raises(StoreLockedError):
            Store(path, read_only=True)
    finally:
        holder.communicate("\n", timeout=30)
    Store(path).close()  # free again once the holder exits


def test_read_only_store_refuses_writes(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as st:
        st.write_items(_spec(), _results(range(2)))
    with Store(path, read_only=True) as ro:
        assert len(ro.runs()) == 1
        with pytest.raises(StoreError, match="read-only"):
            ro.write_items(_spec(), _results([5]))


def test_same_process_read_only_shares_the_writer(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as writer:
        writer.write_items(_spec(), _results(range(3)))
        with Store(path, read_only=True) as reader:
            assert reader.stored_item_ids(_spec().run_id) == {0, 1, 2}
            with pytest.raises(StoreError, match="read-only"):
                reader.save_artifact("k", "n", {})
    with Store(path, read_only=True) as reader:
        with pytest.raises(StoreLockedError, match="open read-only elsewhere in this process"):
            Store(path)
