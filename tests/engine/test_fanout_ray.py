"""Fan-out over models x task shards: a real local Ray cluster must fill the store exactly as a sequential run."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from sharpbench.engine.fanout import read_models_file, run_fanout

pytestmark = pytest.mark.slow
MODELS = ["smollm2-135m", "gemma3-270m"]
TASKS = "piqa,arc_easy"


def _contents(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        runs = con.execute("SELECT run_id, model_id, task, n_items, status FROM runs ORDER BY run_id").fetchall()
        items = con.execute("SELECT run_id, item_id, gold, acc, acc_norm FROM items ORDER BY ALL").fetchall()
        choices = con.execute("SELECT run_id, item_id, choice, loglik, is_greedy FROM choices ORDER BY ALL").fetchall()
    finally:
        con.close()
    return runs, items, choices


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    path = tmp_path_factory.mktemp("seq") / "seq.duckdb"
    report = run_fanout(MODELS, TASKS, store=path, limit=6, shard_size=4)
    assert not report.failures and report.n_shards == 8
    return path, report


def test_ray_cluster_fills_the_store_as_the_sequential_run(sequential, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        path = tmp_path / "ray.duckdb"
        report = run_fanout(MODELS, TASKS, store=path, limit=6, shard_size=4, ray="auto")
    finally:
        ray.shutdown()
    assert not report.failures and report.n_shards == 8 and report.executor == "ray(auto)"
    seq_runs, seq_items, seq_choices = _contents(sequential[0])
    runs, items, choices = _contents(path)
    assert runs == seq_runs and len(runs) == 4
    assert all(r[3] == 6 and r[4] == "complete" for r in runs)
    assert items == seq_items
    assert len(choices) == len(seq_choices)
    for a, b in zip(choices, seq_choices):
        assert a[:3] == b[:3] and a[4] == b[4]
        assert a[3] == pytest.approx(b[3], abs=1e-4)  # same shards, same batches: same logliks


def test_rerun_reuses_everything(sequential):
    path, first = sequential
    again = run_fanout(MODELS, TASKS, store=path, limit=6, shard_size=4)
    assert again.n_shards == 0 and not again.failures
    for a, b in zip(first.reports, again.reports):
        assert [t.metrics for t in a.tasks] == [t.metrics for t in b.tasks]
        assert all(t.n_reused == 6 and t.n_computed == 0 for t in b.tasks)


def test_failed_shards_are_reported_and_the_rest_is_stored(tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama", "hidden_size": "not a number"}')
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    models = tmp_path / "models.txt"
    models.write_text(f"smollm2-135m\n# a checkpoint that cannot load\n{broken}\n")
    store = tmp_path / "s.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "sharpbench", "eval", "--models", str(models), "--tasks", "piqa", "--limit", "4",
         "--shard-size", "2", "--retries", "1", "--store", str(store)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1, proc.stderr
    assert "2 shard(s) failed" in proc.stderr and "broken-model/piqa#0" in proc.stderr
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM items").fetchone()[0] == 4  # smollm2's items are all there
    finally:
        con.close()


def test_models_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_models_file(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="no model"):
        read_models_file(empty)
    dup = tmp_path / "dup.txt"
    dup.write_text("a\nb\na\n")
    with pytest.raises(ValueError, match="more than once"):
        read_models_file(dup)
