"""Concurrent use of one store by real processes: readers while a run writes, two writers, merge.

Issue #18 "Concurrent use": `eval` opens the store only to commit each chunk (under PATH.lock), so
`results` / `report` read while it runs and a second eval takes turns with it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.store import Store, StoreError, StoreLockedError

PROGRESS = re.compile(r"\[sharpbench\] (\w+): (\d+)/(\d+) items stored")

# A writer process: N_CHUNKS chunks of CHUNK synthetic 2-choice items into run(model, task); "model work"
# (a sleep) between commits happens outside the lock.
WRITER = textwrap.dedent("""
    import sys, time
    from sharpbench.engine.results import ChoiceResult, ItemResult
    from sharpbench.store import RunSpec, Store
    path, model, task, n_chunks, chunk, pause, first = sys.argv[1:8]
    n_chunks, chunk, pause, first = int(n_chunks), int(chunk), float(pause), int(first)
    spec = RunSpec(model, "fp-" + model, "hf", "float32", task, 0, "tmpl")
    st = Store(path, shared=True)
    print("ready", flush=True)
    for c in range(n_chunks):
        ids = range(first + c * chunk, first + (c + 1) * chunk)
        res = [ItemResult(i, i % 2, (ChoiceResult(-1.0 - i, i % 2 == 0, 3), ChoiceResult(-2.0, i % 2 == 1, 4)),
                          {"acc": float(i % 3 == 0)}) for i in ids]
        st.write_items(spec, res, content_hashes={i: f"h{i}" for i in ids}, overwrite=True)
        print("chunk", c, flush=True)
        time.sleep(pause)
    if "--hang" in sys.argv:
        sys.stdin.readline()
    st.finish_run(spec.run_id, status="complete", metrics={"acc": (0.5, 0.1)})
    st.close()
""")


def _env() -> dict[str, str]:
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    path = os.pathsep.join(p for p in (os.path.abspath(src), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "OMP_NUM_THREADS": "1"}


def _writer(path, model="m1", task="piqa", n_chunks=20, chunk=5, pause=0.02, first=0, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), model, task, str(n_chunks), str(chunk), str(pause), str(first),
         *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )


def _snapshot(path) -> list[tuple[str, str, int, int, int]]:
    """(model, status, n_items column, items rows, choices rows) per run, read in one turn."""
    with Store(path, read_only=True, shared=True) as st, st.session():
        out = []
        for r in st.runs().to_dict("records"):
            n_rows = len(st.items_frame([r["run_id"]]))
            n_choices = len(st.choices_frame([r["run_id"]]))
            out.append((r["model_id"], r["status"], int(r["n_items"]), n_rows, n_choices))
        return out


def _results_json(path) -> list[dict]:
    res = CliRunner().invoke(app, ["results", "--store", str(path), "--format", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_readers_poll_while_a_writer_commits(tmp_path):
    path = tmp_path / "s.duckdb"
    w = _writer(path, n_chunks=40, chunk=5, pause=0.03)
    assert w.stdout.readline().strip() == "ready"
    seen = []
    while w.poll() is None:
        for model, status, n_col, n_rows, n_choices in _snapshot(path):
            # a whole chunk or nothing: never a half-written one, never items without choices
            assert n_col == n_rows and n_rows % 5 == 0 and n_choices == 2 * n_rows, (n_col, n_rows, n_choices)
            seen.append(n_rows)
        if len(seen) % 5 == 0:
            rows = _results_json(path)  # the CLI too, not only the library
            assert all(r["status"] in ("running", "complete") for r in rows)
        time.sleep(0.1)
    assert w.returncode == 0, w.stderr.read()
    assert seen == sorted(seen) and 0 < len(set(seen)) and seen[-1] <= 200
    assert len(set(seen)) >= 3, f"the reader saw too few intermediate states: {sorted(set(seen))}"
    assert _snapshot(path) == [("m1", "complete", 200, 200, 400)]


def test_two_writers_take_turns(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).close()
    # two runs, and a third pair writing the same run's items (same key, same content) at once
    ws = [_writer(path, "a", "piqa", 30, 4, 0.0), _writer(path, "b", "arc_easy", 30, 4, 0.0),
          _writer(path, "c", "piqa", 10, 4, 0.0, 0), _writer(path, "c", "piqa", 10, 4, 0.0, 20)]
    for w in ws:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    snap = sorted(_snapshot(path))
    assert snap == [("a", "complete", 120, 120, 240), ("b", "complete", 120, 120, 240),
                    ("c", "complete", 60, 60, 120)]
    with Store(path, read_only=True) as st:
        items = st.items_frame()
        assert not items.duplicated(["run_id", "item_id"]).any()


def test_results_says_interrupted_when_the_writer_is_dead(tmp_path):
    path = tmp_path / "s.duckdb"
    w = _writer(path, "live", "piqa", 2, 5, 0.0, 0, "--hang")
    try:
        assert w.stdout.readline().strip() == "ready"
        assert w.stdout.readline().startswith("chunk")
        assert w.stdout.readline().startswith("chunk")
        assert [r["status"] for r in _results_json(path)] == ["running"]  # alive, between chunks
        os.kill(w.pid, signal.SIGKILL)
        w.wait(timeout=30)
        (row,) = _results_json(path)
        assert row["status"] == "interrupted" and row["n_items"] == 10
        assert row["when"] is not None  # when it started (it never finished)
        with Store(path, read_only=True) as st:  # the file itself is untouched by readers
            assert st.runs()["status"].tolist() == ["running"]
        with Store(path, shared=True) as st:  # a writer marks it
            assert st.runs()["status"].tolist() == ["interrupted"]
    finally:
        w.kill()
        w.wait(timeout=30)


def test_a_lock_held_too_long_is_a_clear_error(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys
            fd = os.open({str(path) + '.lock'!r}, os.O_RDWR | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("held", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(StoreLockedError, match=rf"in use by another process \(pid {holder.pid}\).*"
                                                   r"more than 0.5 s.*SHARPBENCH_STORE_TIMEOUT"):
            Store(path, read_only=True, shared=True, lock_timeout=0.5)
        assert time.monotonic() - t0 < 5
        with pytest.raises(StoreLockedError):
            Store(path, shared=True, lock_timeout=0.2)
    finally:
        holder.communicate("\n", timeout=30)
    assert _snapshot(path) == []  # free again


# ------------------------------------------------------------------ merge
def _fill(path, model, ids, hash_prefix="h", run_status="complete"):
    from sharpbench.engine.results import ChoiceResult, ItemResult
    from sharpbench.store import RunSpec

    spec = RunSpec(model, "fp-" + model, "hf", "float32", "piqa", 0, "tmpl")
    res = [ItemResult(i, i % 2, (ChoiceResult(-1.0 - i, True, 3), ChoiceResult(-2.0, False, 4)),
                      {"acc": float(i % 2 == 0)}) for i in ids]
    with Store(path, shared=True) as st:
        st.write_items(spec, res, content_hashes={i: f"{hash_prefix}{i}" for i in ids})
        if run_status != "running":
            st.finish_run(spec.run_id, status=run_status, metrics={"acc": (0.0, 0.0)}, limit=len(ids))
        st.save_artifact("irt", model, {"model": model})
    return spec.run_id


def _merge(*args):
    return CliRunner().invoke(app, ["results", "merge", *map(str, args)])


def test_merge_dedups_by_run_key_and_item(tmp_path):
    a, b, c = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    run_x = _fill(a, "x", range(0, 30))
    assert _fill(b, "x", range(20, 50)) == run_x  # same run, items 20..29 in both
    run_y = _fill(b, "y", range(0, 10))
    res = _merge(a, b, "-o", c)
    assert res.exit_code == 0, res.output
    assert "2 runs, 60 items (10 stored in more than one input, kept once), 2 artifacts" in res.stdout
    with Store(c, read_only=True) as st:
        runs = st.runs().set_index("run_id")
        assert runs.loc[run_x, "n_items"] == 50 and runs.loc[run_y, "n_items"] == 10
        assert runs.loc[run_x, "status"] == "complete"
        assert runs.loc[run_x, "metrics"]["acc"][0] == pytest.approx(0.5)  # recomputed over the union
        assert st.stored_item_ids(run_x) == set(range(50))
        assert len(st.choices_frame([run_x])) == 100
        assert {a["name"] for a in st.artifacts()} == {"x", "y"}
    # C exists now: refused without --force, replaced with it
    res = _merge(a, b, "-o", c)
    assert res.exit_code == 1 and "already exists; pass --force" in res.output
    assert _merge(a, b, "-o", c, "--force").exit_code == 0


def test_merge_refuses_different_content_and_foreign_files(tmp_path):
    a, b, c = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    run_x = _fill(a, "x", range(5))
    _fill(b, "x", range(3, 8), hash_prefix="other")
    res = _merge(a, b, "-o", c)
    assert res.exit_code == 1
    assert f"run {run_x} item 3: content hash h3 in {a} but other3 in {b}" in " ".join(res.output.split())
    assert not c.exists()
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE t (x INT)")
    con.close()
    res = _merge(a, foreign, "-o", c)
    assert res.exit_code == 1 and "not a sharpbench store" in res.output and not c.exists()
    res = _merge(a, a, "-o", foreign, "--force")  # never overwrites someone else's database
    assert res.exit_code == 1 and "not a sharpbench store" in res.output
    assert _merge(a, "-o", c).exit_code == 2


def test_merge_marks_runs_still_running_as_interrupted(tmp_path):
    a, b, c = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    _fill(a, "x", range(5), run_status="running")
    _fill(b, "y", range(5))
    res = _merge(a, b, "-o", c)
    assert res.exit_code == 0 and "was still running in" in res.output
    with Store(c, read_only=True) as st:
        assert sorted(st.runs()["status"]) == ["complete", "interrupted"]
        assert st.runs()["writer_pid"].isna().all()


# ------------------------------------------------------------- real model
def _eval_cmd(store, task="piqa", limit=200, *extra) -> list[str]:
    return [sys.executable, "-m", "sharpbench", "eval", "--model", "smollm2-135m", "--tasks", task,
            "--limit", str(limit), "--batch-size", "8", "--store", str(store), *extra]


REAL_LIMIT = int(os.environ.get("SHARPBENCH_CONCURRENT_LIMIT", "200"))


@pytest.mark.slow
def test_real_eval_with_readers_polling_every_100ms(tmp_path):
    path = tmp_path / "s.duckdb"
    proc = subprocess.Popen(_eval_cmd(path, limit=REAL_LIMIT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=_env())
    seen, n_polls, deadline = [], 0, time.monotonic() + 600
    try:
        while proc.poll() is None:
            assert time.monotonic() < deadline, "eval did not finish"
            if path.exists():
                try:
                    snap = _snapshot(path)
                except StoreError as exc:  # only before the eval created the schema
                    assert "not a sharpbench store" in str(exc) or "no store" in str(exc), exc
                    snap = []
                for model, status, n_col, n_rows, n_choices in snap:
                    assert n_col == n_rows and n_choices == 2 * n_rows
                    assert n_rows % 8 == 0 or n_rows == REAL_LIMIT, n_rows  # whole chunks of --batch-size
                    seen.append(n_rows)
                if n_polls % 10 == 0 and snap:
                    assert [r["status"] for r in _results_json(path)] in (["running"], ["complete"])
                n_polls += 1
            time.sleep(0.1)
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert seen == sorted(seen) and len(set(seen)) >= 3, sorted(set(seen))
    assert _snapshot(path) == [("smollm2-135m", "complete", REAL_LIMIT, REAL_LIMIT, 2 * REAL_LIMIT)]
    rep = CliRunner().invoke(app, ["report", "--store", str(path), "-o", str(tmp_path / "r.html")])
    assert rep.exit_code == 0, rep.output


@pytest.mark.slow
def test_two_real_evals_on_one_store_then_kill_one(tmp_path):
    path = tmp_path / "s.duckdb"
    a = subprocess.Popen(_eval_cmd(path, "piqa", 40), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=_env())
    b = subprocess.Popen(_eval_cmd(path, "arc_easy", 40), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=_env())
    try:
        _, err_a = a.communicate(timeout=600)
        _, err_b = b.communicate(timeout=600)
    finally:
        for p in (a, b):
            p.kill()
            p.wait(timeout=60)
    assert a.returncode == 0 and b.returncode == 0, (err_a[-1500:], err_b[-1500:])
    rows = {r["task"]: r for r in _results_json(path)}
    assert {t: (r["status"], r["n_items"]) for t, r in rows.items()} == {
        "piqa": ("complete", 40), "arc_easy": ("complete", 40)}

    # a third eval, killed mid-run: `results` must not call it running
    c = subprocess.Popen(_eval_cmd(path, "piqa", 80), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=_env())
    try:
        for line in c.stderr:
            m = PROGRESS.search(line)
            if m and 0 < int(m.group(2)) < int(m.group(3)):  # a chunk of the 40 new items is stored
                os.kill(c.pid, signal.SIGKILL)
                break
    finally:
        c.kill()
        c.wait(timeout=60)
    rows = {r["task"]: r for r in _results_json(path)}
    assert rows["piqa"]["status"] == "interrupted" and 40 < rows["piqa"]["n_items"] < 80
    assert rows["arc_easy"]["status"] == "complete"


def test_shared_store_keeps_the_store_api(tmp_path):
    """Ad-hoc SQL on a shared store: inside session() / transaction(); the file is free between turns."""
    path = tmp_path / "s.duckdb"
    run_id = _fill(path, "x", range(4))
    st = Store(path, shared=True)
    with pytest.raises(StoreError, match="use `with store.session\\(\\):`"):
        st.connection
    with st.transaction():
        st.connection.execute("UPDATE runs SET model_id = 'y' WHERE run_id = ?", [run_id])
    with st.session():
        assert st.connection.execute("SELECT model_id FROM runs").fetchall() == [("y",)]
        assert st.get_run(run_id)["n_items"] == 4  # nested calls share the turn
    assert st.response_matrix().shape == (1, 4)
    assert len(st.export(tmp_path / "exp")) == 5  # runs, items, choices, generations, artifacts
    # between turns another process may open the file
    out = subprocess.run([sys.executable, "-c", f"import duckdb; print(duckdb.connect({str(path)!r}, "
                          "read_only=True).execute('SELECT count(*) FROM items').fetchone()[0])"],
                         capture_output=True, text=True, env=_env(), timeout=60)
    assert out.stdout.strip() == "4", out.stderr
    st.close()


def test_merge_reads_stores_of_an_older_sharpbench(tmp_path):
    """No writer columns, no content hashes: merged, the hashed copy of a duplicated item kept."""
    a, b, c = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    run_x = _fill(a, "x", range(6))
    _fill(b, "x", range(4, 10))
    con = duckdb.connect(str(a))
    for col in ("writer_pid", "writer_host", "writer_start"):
        con.execute(f"ALTER TABLE runs DROP COLUMN {col}")
    con.execute("ALTER TABLE items DROP COLUMN content_hash")
    con.close()
    res = _merge(a, b, "-o", c)
    assert res.exit_code == 0, res.output
    with Store(c, read_only=True) as st:
        hashes = st.stored_item_hashes(run_x)
        assert sorted(hashes) == list(range(10))
        assert [hashes[i] for i in range(4, 10)] == [f"h{i}" for i in range(4, 10)]
        assert all(hashes[i] is None for i in range(4))
