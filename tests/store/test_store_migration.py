"""Schema v1 -> v2: a store written by the v1 code is migrated in place on open, read-only opens leave it alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from sharpbench.store import SCHEMA_VERSION, Store
from store_gen_helpers import gen_item, gen_result, gen_spec

REPO = Path(__file__).resolve().parents[2]
V1_COMMIT = "ed077a8"  # the last commit with schema version 1

# What the v1 code writes: two finished multiple-choice runs, one left running, an artifact.
_WRITE_V1 = textwrap.dedent(
    """
    import json, sys
    from sharpbench.store import Store, RunSpec, SCHEMA_VERSION
    from sharpbench.results import ChoiceResult, ItemResult
    from sharpbench.metrics import summarize
    assert SCHEMA_VERSION == 1, SCHEMA_VERSION
    path = sys.argv[1]
    with Store(path) as st:
        for model, task, n in (("a", "piqa", 5), ("b", "piqa", 5), ("a", "arc_easy", 3)):
            spec = RunSpec(model, "fp-" + model, "hf", "float32", task, 0, "tmpl", task_version="1.0", n_total=10)
            res = [ItemResult(i, i % 2, (ChoiceResult(-1.0 - i, i % 2 == 0, 2), ChoiceResult(-1.5, i % 2 == 1, 3)),
                              {"acc": float((i + len(model)) % 2), "acc_norm": 1.0, "brier": 0.5})
                   for i in range(n)]
            st.write_items(spec, res, {0: {"subject": "x"}}, content_hashes={i: f"h{i}" for i in range(n)})
            if task == "piqa":
                st.finish_run(spec.run_id, status="complete", metrics=summarize(res), limit=n)
        st.save_artifact("irt", "fit", {"theta": [0.1, 0.2]})
    """
)


def _v1_source(tmp_path: Path) -> Path:
    """The v1 sharpbench package, exported from git (skips where the history is not there)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    probe = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{V1_COMMIT}^{{commit}}"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"commit {V1_COMMIT} (schema v1) is not in this checkout's history")
    dest = tmp_path / "v1"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", V1_COMMIT, "src/sharpbench"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def _run_v1(src: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def v1_store(tmp_path_factory) -> tuple[Path, Path]:
    """(a store file written by the real v1 code, the v1 source folder)."""
    tmp = tmp_path_factory.mktemp("v1")
    src = _v1_source(tmp)
    path = tmp / "v1.duckdb"
    out = _run_v1(src, _WRITE_V1, str(path))
    assert out.returncode == 0, out.stderr
    return path, src


def _version(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return int(con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
    finally:
        con.close()


def _dump(path: Path) -> dict[str, list]:
    """Every v1 table's rows (v1 columns only), read with plain DuckDB."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for table, cols in (
            ("runs", ("run_id, model_id, fingerprint, task, num_fewshot, template_hash, \"limit\", n_total, status, "
                      "n_items, metrics, created_at, finished_at")),
            ("items", "run_id, item_id, gold, n_choices, acc, acc_norm, brier, extra_metrics, metadata, content_hash"),
            ("choices", "run_id, item_id, choice, loglik, is_greedy, n_tokens"),
            ("artifacts", "kind, name, payload"),
        ):
            out[table] = con.execute(f"SELECT {cols} FROM {table} ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


def _interrupted(runs: list) -> list:
    """v1 run rows as the store shows them after an exclusive open: a run left 'running' is 'interrupted'."""
    return [r if r[8] != "running" else (*r[:8], "interrupted", *r[9:]) for r in runs]


def test_v1_store_is_migrated_in_place(v1_store, tmp_path):
    src_path, _ = v1_store
    path = tmp_path / "s.duckdb"
    shutil.copy(src_path, path)
    assert _version(path) == 1
    before = _dump(path)
    assert len(before["items"]) == 13 and len(before["choices"]) == 26
    assert [r[8] for r in before["runs"]].count("running") == 1

    Store(path).close()  # opening for writing migrates
    assert _version(path) == SCHEMA_VERSION == 2
    assert _dump(path) == {**before, "runs": _interrupted(before["runs"])}  # every v1 value intact

    with Store(path) as st:
        runs = st.runs()
        assert set(runs["kind"]) == {"multiple_choice"} and set(runs["primary_metric"]) == {"acc"}
        assert all(c is None for c in runs["run_config"])
        assert st.generations_frame().empty and st.items_frame()["gold_text"].isna().all()
        m = st.response_matrix(tasks=["piqa"])
        assert list(m.models) == ["a", "b"] and m.n_items == 5
        piqa_a = runs.loc[(runs.model_id == "a") & (runs.task == "piqa"), "run_id"].iloc[0]
        res = st.item_results(piqa_a)
        assert [r.gold for r in res] == [0, 1, 0, 1, 0] and res[1].choices[0].loglik == -2.0
        assert st.stored_item_hashes(piqa_a) == {i: f"h{i}" for i in range(5)}
        # the migrated store takes generative runs next to the old ones
        spec = gen_spec()
        st.write_items(spec, [gen_result(0, range(2), right={0})], gen_items={0: gen_item(0, repeats=2)})
        assert st.missing_samples(spec.run_id, [gen_item(0, repeats=2)]) == {0: []}
    after = _dump(path)
    new_run = gen_spec().run_id
    assert [r for r in after["runs"] if r[0] != new_run] == _interrupted(before["runs"])
    assert [r for r in after["items"] if r[0] != new_run] == before["items"]
    assert after["choices"] == before["choices"] and after["artifacts"] == before["artifacts"]

    with Store(path) as st:  # reopening a v2 store changes no data (only marks our unfinished run interrupted)
        assert st.get_run(new_run)["kind"] == "generate_until"
    again = _dump(path)
    assert {k: v for k, v in again.items() if k != "runs"} == {k: v for k, v in after.items() if k != "runs"}
    assert _interrupted(again["runs"]) == _interrupted(after["runs"])


def test_old_sharpbench_refuses_the_migrated_store(v1_store, tmp_path):
    src_path, v1_src = v1_store
    path = tmp_path / "s.duckdb"
    shutil.copy(src_path, path)
    Store(path).close()
    out = _run_v1(v1_src, "import sys\nfrom sharpbench.store import Store\nStore(sys.argv[1])", str(path))
    assert out.returncode != 0 and "schema version 2, newer than this sharpbench" in out.stderr


def test_read_only_open_leaves_a_v1_store_as_it_is(v1_store, tmp_path):
    src_path, _ = v1_store
    path = tmp_path / "s.duckdb"
    shutil.copy(src_path, path)
    before = path.read_bytes()
    for shared in (False, True):
        with Store(path, read_only=True, shared=shared) as st:
            runs = st.runs()
            assert len(runs) == 3 and set(runs["kind"]) == {"multiple_choice"}
            assert st.get_run(runs["run_id"].iloc[0])["primary_metric"] == "acc"
            assert st.generations_frame().empty
            assert st.items_frame()["gold_text"].isna().all()
            assert st.response_matrix(tasks=["piqa"]).n_models == 2
            assert st.response_matrix(tasks=["piqa"], metric="acc_norm").values.min() == 1.0
            out = st.export(tmp_path / f"exp{shared}", format="parquet")
            assert "generations.parquet" in [p.name for p in out]
    assert _version(path) == 1 and path.read_bytes() == before


def test_merge_reads_v1_inputs(v1_store, tmp_path):
    from sharpbench.store.merge import merge_stores

    src_path, _ = v1_store
    a = tmp_path / "a.duckdb"
    shutil.copy(src_path, a)
    b = tmp_path / "b.duckdb"
    with Store(b) as st:
        st.write_items(gen_spec(), [gen_result(i, range(2)) for i in range(3)])
    summary = merge_stores([a, b], tmp_path / "c.duckdb")
    assert summary.n_runs == 4 and summary.n_items == 16
    assert _version(a) == 1  # inputs are only read
    with Store(tmp_path / "c.duckdb", read_only=True) as st:
        assert sorted(st.runs()["kind"]) == ["generate_until"] + ["multiple_choice"] * 3
        assert len(st.generations_frame()) == 6 and len(st.choices_frame()) == 26


_RACER = textwrap.dedent(
    """
    import sys, time, json
    from pathlib import Path
    from sharpbench.store import Store
    path, role, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    if role == "reader":
        seen = []
        for _ in range(15):
            with Store(path, read_only=True, shared=True, lock_timeout=120) as st:
                runs = st.runs()
                seen.append(len(runs))
                assert set(runs["kind"]) <= {"multiple_choice", "generate_until"}, runs["kind"]
                st.response_matrix(tasks=["piqa"])
        print(json.dumps(seen))
    else:
        sys.path.insert(0, sys.argv[4])
        from store_gen_helpers import gen_result, gen_spec
        with Store(path, shared=True, lock_timeout=120) as st:
            spec = gen_spec(model=role, fp=role)
            for i in range(3):
                st.write_items(spec, [gen_result(i, range(2))])
        print("wrote")
    """
)


def test_concurrent_openers_of_a_v1_store(v1_store, tmp_path):
    """Two writers (each migrating on open) and two readers start together on a v1 file: all succeed."""
    src_path, _ = v1_store
    path = tmp_path / "s.duckdb"
    shutil.copy(src_path, path)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH"))
                                                         if p), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(path), role, str(go), str(Path(__file__).parent)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for role in ("w1", "reader", "w2", "reader")
    ]
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    for (out, _), role in zip(outs, ("w1", "reader", "w2", "reader")):
        if role == "reader":
            counts = json.loads(out)
            assert all(3 <= c <= 5 for c in counts) and counts == sorted(counts)
    assert _version(path) == 2
    with Store(path, read_only=True) as st:
        runs = st.runs()
        assert len(runs) == 5 and sorted(runs["kind"]) == ["generate_until"] * 2 + ["multiple_choice"] * 3
        assert len(st.generations_frame()) == 12 and len(st.choices_frame()) == 26


# The v1 layout as its code created it (commit ed077a8, src/sharpbench/store/schema.py): a fallback that runs
# even where git history is absent.
_V1_DDL = (
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, model_id VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL,
        backend VARCHAR NOT NULL, dtype VARCHAR NOT NULL, task VARCHAR NOT NULL, task_group VARCHAR,
        task_version VARCHAR, num_fewshot INTEGER NOT NULL, template_hash VARCHAR NOT NULL, "limit" INTEGER,
        n_total INTEGER, sharpbench_version VARCHAR NOT NULL, source VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP, status VARCHAR NOT NULL, n_items INTEGER NOT NULL, metrics JSON)""",
    """CREATE TABLE items (run_id VARCHAR NOT NULL, item_id INTEGER NOT NULL, gold INTEGER NOT NULL,
        n_choices INTEGER NOT NULL, acc DOUBLE, acc_norm DOUBLE, acc_bytes DOUBLE, brier DOUBLE,
        acc_mutual_info DOUBLE, extra_metrics JSON, metadata JSON, content_hash VARCHAR,
        PRIMARY KEY (run_id, item_id))""",
    "ALTER TABLE runs ADD COLUMN writer_pid INTEGER",
    "ALTER TABLE runs ADD COLUMN writer_host VARCHAR",
    "ALTER TABLE runs ADD COLUMN writer_start BIGINT",
    """CREATE TABLE choices (run_id VARCHAR NOT NULL, item_id INTEGER NOT NULL, choice INTEGER NOT NULL,
        loglik DOUBLE NOT NULL, is_greedy BOOLEAN NOT NULL, n_tokens INTEGER, PRIMARY KEY (run_id, item_id, choice))""",
    """CREATE TABLE artifacts (kind VARCHAR NOT NULL, name VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
        payload JSON NOT NULL, PRIMARY KEY (kind, name))""",
    "INSERT INTO meta VALUES ('schema_version', '1')",
    """INSERT INTO runs VALUES ('r1', 'a', 'fpa', 'hf', 'float32', 'piqa', NULL, '1.0', 0, 't', NULL, 2, '0.1',
        'sharpbench', TIMESTAMP '2026-01-01 00:00:00', TIMESTAMP '2026-01-01 00:01:00', 'complete', 2,
        '{"acc": [0.5, 0.5]}', NULL, NULL, NULL)""",
    ("INSERT INTO items VALUES ('r1', 0, 1, 2, 1.0, 0.0, 1.0, 0.2, NULL, NULL, NULL, 'h0'), "
     "('r1', 1, 0, 2, 0.0, 0.0, 0.0, 0.7, NULL, '{\"exact_match\": 1.0}', '{\"subject\": \"s\"}', 'h1')"),
    ("INSERT INTO choices VALUES ('r1', 0, 0, -2.0, false, 2), ('r1', 0, 1, -1.0, true, 2), "
     "('r1', 1, 0, -1.0, true, 1), ('r1', 1, 1, -3.0, false, 4)"),
)


def test_v1_layout_migrates_without_git(tmp_path):
    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    for stmt in _V1_DDL:
        con.execute(stmt)
    con.close()
    with Store(path, read_only=True) as st:
        assert st.runs()["kind"].tolist() == ["multiple_choice"]
    assert _version(path) == 1
    with Store(path) as st:
        res = st.item_results("r1")
        assert [r.gold for r in res] == [1, 0] and res[1].metrics["exact_match"] == 1.0
        assert [c.loglik for c in res[0].choices] == [-2.0, -1.0]
        assert st.get_run("r1")["kind"] == "multiple_choice" and st.get_run("r1")["metrics"] == {"acc": [0.5, 0.5]}
        cols = [r[0] for r in st.connection.execute("DESCRIBE items").fetchall()]
        assert cols[-2:] == ["gold_text", "prompt"]
    assert _version(path) == 2
    # a new v2 store has the same column order as a migrated one (exports and merges line up)
    with Store(tmp_path / "new.duckdb") as fresh, Store(path, read_only=True) as old:
        for table in ("runs", "items", "generations"):
            assert [r[:2] for r in fresh.connection.execute(f"DESCRIBE {table}").fetchall()] == [
                r[:2] for r in old.connection.execute(f"DESCRIBE {table}").fetchall()], table
