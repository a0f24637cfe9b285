"""Issue #18, "Silently wrong results": each case is refused or reported instead of giving a wrong number.

Real components throughout: task files and JSONL on disk, real DuckDB stores, the real CLI (typer's
CliRunner), the shared response matrices. The fake ``HashBackend`` (tests/cli) stands in for a model
where only the store logic matters; the ``slow`` test runs the packaged smollm2-135m.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.data.errors import DataFileError, DataQualityWarning, TaskError
from sharpbench.data.registry import get_task
from sharpbench.engine.pipeline import ChangedItemsWarning, run_eval
from sharpbench.matrix import MatrixError
from sharpbench.store import Store
from sharpbench.store.errors import StoreCorruptError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from test_eval_pipeline import HashBackend  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MATRICES = SHARED / "response-matrices"
CHEMBENCH = MATRICES / "chembench_binary_matrix.csv"

runner = CliRunner()

QUESTIONS = [
    ("What is 2 + 2?", ["3", "4", "5"], 1),
    ("Which colour is the clear daytime sky?", ["blue", "green", "red"], 0),
    ("What is the capital of France?", ["Rome", "Paris", "Madrid"], 1),
    ("How many legs does a spider have?", ["six", "eight", "ten"], 1),
    ("Which gas do plants take in?", ["oxygen", "helium", "carbon dioxide"], 2),
    ("What is frozen water called?", ["ice", "steam", "sand"], 0),
    ("How many days are in a week?", ["five", "seven", "nine"], 1),
    ("Which planet is closest to the Sun?", ["Mercury", "Mars", "Jupiter"], 0),
]


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _write_task(folder: Path, rows: list[dict], *, extra: str = "", text: str = "Question: {q}\\nAnswer:") -> Path:
    data = folder / "toy.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    task = folder / "toy.toml"
    task.write_text(
        f'name = "toy"\npath = "toy.jsonl"\ndoc_to_text = "{text}"\nchoices = "options"\ngold = "answer"\n{extra}',
        encoding="utf-8",
    )
    return task


def _rows(questions=QUESTIONS) -> list[dict]:
    return [{"qid": f"q{i}", "q": q, "options": opts, "answer": gold} for i, (q, opts, gold) in enumerate(questions)]


# ------------------------------------------------------------------ 1. edited data reused from the store
def test_edited_answers_and_questions_are_recomputed_not_reused(tmp_path):
    task = _write_task(tmp_path, _rows())
    store = tmp_path / "s.duckdb"
    first = run_eval(HashBackend(), str(task), store=store).tasks[0]
    assert (first.n_computed, first.n_reused, first.n_changed) == (8, 0, 0)

    edited = _rows()
    for r in edited[:3]:  # other answers for items 0-2
        r["answer"] = (r["answer"] + 1) % 3
    edited[5]["q"] = "What is liquid water called when it boils?"  # another question for item 5
    _write_task(tmp_path, edited)
    with pytest.warns(ChangedItemsWarning, match=r"toy: 4 stored item\(s\) no longer match .* item ids 0, 1, 2, 5"):
        again = run_eval(HashBackend(), str(task), store=store).tasks[0]
    assert (again.n_computed, again.n_reused, again.n_changed, again.changed_ids) == (4, 4, 4, [0, 1, 2, 5])

    fresh = run_eval(HashBackend(), str(task), store=tmp_path / "fresh.duckdb").tasks[0]
    assert again.metrics == fresh.metrics  # the same numbers as an evaluation from scratch
    with Store(store) as st:  # the run's stored aggregate is recomputed too
        assert st.get_run(again.run_id)["metrics"]["acc"][0] == pytest.approx(fresh.metrics["acc"][0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChangedItemsWarning)
        third = run_eval(HashBackend(), str(task), store=store).tasks[0]
    assert (third.n_computed, third.n_reused) == (0, 8)


def test_items_stored_without_content_hash_are_recomputed(tmp_path):
    """Stores written before content hashes: their items cannot be checked, so they are not trusted."""
    task = _write_task(tmp_path, _rows())
    store = tmp_path / "s.duckdb"
    run_eval(HashBackend(), str(task), store=store)
    con = duckdb.connect(str(store))
    con.execute("UPDATE items SET content_hash = NULL WHERE item_id < 2")
    con.close()
    with pytest.warns(ChangedItemsWarning, match=r"2 stored item\(s\) were written by an older sharpbench"):
        rep = run_eval(HashBackend(), str(task), store=store).tasks[0]
    assert (rep.n_computed, rep.n_reused, rep.n_unverified) == (2, 6, 2)


def test_old_store_gains_the_content_hash_column(tmp_path):
    store = tmp_path / "old.duckdb"
    with Store(store):
        pass
    con = duckdb.connect(str(store))
    con.execute("ALTER TABLE items DROP COLUMN content_hash")
    con.close()
    with Store(store) as st:
        cols = {r[0] for r in st.connection.execute("DESCRIBE items").fetchall()}
    assert "content_hash" in cols


@pytest.mark.slow
def test_cli_eval_after_editing_the_data_recomputes_with_a_real_model(tmp_path):
    """The issue's reproduction: edit a task file's answers, run `eval` again (smollm2-135m, 8 items)."""
    task = _write_task(tmp_path, _rows())
    store = tmp_path / "s.duckdb"
    res = _invoke("eval", "--model", "smollm2-135m", "--tasks", task, "--store", store)
    assert res.exit_code == 0, res.output
    assert "8 items computed, 0 reused" in res.stderr
    edited = _rows()
    for r in edited:
        r["answer"] = (r["answer"] + 1) % 3
    _write_task(tmp_path, edited)
    res = _invoke("eval", "--model", "smollm2-135m", "--tasks", task, "--store", store, "-o", tmp_path / "r.json")
    assert res.exit_code == 0, res.output
    assert "8 items computed, 0 reused" in res.stderr
    assert "8 of the computed items had changed since they were stored" in res.stderr
    assert "toy: 8 stored item(s) no longer match the task's data" in res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n_changed"] == 8 and report["tasks"][0]["changed_ids"] == list(range(8))
    res = _invoke("eval", "--model", "smollm2-135m", "--tasks", task, "--store", tmp_path / "fresh.duckdb",
                  "-o", tmp_path / "fresh.json")
    fresh = json.loads((tmp_path / "fresh.json").read_text())
    assert report["tasks"][0]["metrics"] == fresh["tasks"][0]["metrics"]


# ------------------------------------------------------------------ 2. matrix orientation
def test_chembench_items_as_rows_is_refused_without_a_flag():
    res = _invoke("matrix", "info", CHEMBENCH)
    assert res.exit_code != 0
    assert "looks transposed: its 2854 rows have item-like ids" in res.stderr
    assert "--items-as-rows" in res.stderr and "models x" not in res.stdout
    res = _invoke("matrix", "info", CHEMBENCH, "--items-as-rows")
    assert res.exit_code == 0, res.output
    assert "22 models x 2854 items" in res.stdout
    # an explicit --models-as-rows is obeyed (the user said so)
    res = _invoke("matrix", "info", CHEMBENCH, "--models-as-rows")
    assert res.exit_code == 0 and "2854 models x 22 items" in res.stdout


def test_models_as_rows_matrix_reads_without_a_flag():
    res = _invoke("matrix", "info", MATRICES / "mmlu_pro_matrix.csv")
    assert res.exit_code == 0, res.output
    assert "29 models x 12032 items" in res.stdout


@pytest.fixture()
def transposed(tmp_path) -> Path:
    """A small ChemBench-like file: rows are items (ids 0..39), columns are models."""
    frame = pd.read_csv(CHEMBENCH, index_col=0).iloc[:40, :8]
    path = tmp_path / "transposed.csv"
    frame.to_csv(path)
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["matrix", "info", "{m}"],
        ["matrix", "import", "{m}", "--out", "{tmp}/o.parquet"],
        ["matrix", "export", "{m}", "--out", "{tmp}/o.csv"],
        ["irt", "fit", "{m}"],
        ["calibrate", "--tasks", "mmlu_pro", "--from-matrix", "{m}", "--out", "{tmp}/b.json"],
        ["distill", "hard", "{m}", "--method", "mean"],
        ["distill", "tiny", "{m}", "--method", "random"],
        ["rank", "{m}"],
        ["skills", "{m}"],
        ["report", "--matrix", "{m}", "-o", "{tmp}/r.html"],
        ["predict", "--responses", "{m}", "--subset", "{tmp}/subset.json"],
        ["adaptive", "simulate", "{m}", "--bank", "{tmp}/bank.json"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_every_matrix_command_refuses_a_transposed_file(command, transposed, tmp_path):
    if command[:2] == ["adaptive", "simulate"]:  # needs a real bank to get as far as reading the matrix
        from sharpbench.adaptive.calibrate import calibrate_bank
        from sharpbench.matrix.io import read_matrix

        calibrate_bank(read_matrix(transposed, items_as_rows=True), "b", benchmark="b").save(tmp_path / "bank.json")
    args = [a.format(m=transposed, tmp=tmp_path) for a in command]
    res = runner.invoke(app, args)
    assert res.exit_code != 0, res.output
    assert "looks transposed" in res.output and "Traceback" not in res.output


def test_every_reader_shares_the_orientation_check(transposed):
    from sharpbench.matrix.io import read_matrix  # the one reader (issue #15): distill and insight use it too

    for read in (read_matrix,):
        with pytest.raises(MatrixError, match="looks transposed"):
            read(transposed)
        assert read(transposed, items_as_rows=True).n_models == 8


def test_orientation_guess():
    from sharpbench.matrix.orientation import guess_items_as_rows

    assert guess_items_as_rows(["0", "1", "2"], ["GPT-4o", "Llama-3.1-8B-Instruct"]) is True
    assert guess_items_as_rows(["GPT-4o", "Llama-3.1-8B-Instruct"], ["0", "1", "2"]) is False
    assert guess_items_as_rows(["org/model-7b", "org/other-13b"], ["algebra.1", "law.3"]) is False
    assert guess_items_as_rows(["a", "b"], ["c", "d"]) is None  # nothing to go on: the default applies


# ------------------------------------------------------------------ 3. item bank from id coincidences
def test_calibrate_refuses_chembench_for_mmlu_pro():
    res = _invoke("calibrate", "--tasks", "mmlu_pro", "--from-matrix", CHEMBENCH, "--items-as-rows",
                  "--out", "/nonexistent/never-written.json")
    assert res.exit_code == 2
    assert "118 of the matrix's 2854 items are not items of this task" in res.output
    assert "only coincide with task ids" in res.output


def test_calibrate_checks_item_content_not_only_ids(tmp_path):
    """ChemBench rows whose ids all exist in MMLU-Pro: ids pass, the question texts do not."""
    items = pd.read_json(MATRICES / "mmlu_pro_items.jsonl", lines=True)
    qids = set(items["question_id"].astype(str))
    chem = pd.read_csv(CHEMBENCH, index_col=0)
    chem = chem[chem.index.astype(str).isin(qids)].iloc[:60]
    matrix = tmp_path / "chem_matrix.csv"
    chem.T.to_csv(matrix)  # models as rows, only ids that MMLU-Pro also has
    table = tmp_path / "chem_items.jsonl"  # found beside chem_matrix.csv without --items
    table.write_text("".join(
        json.dumps({"question_id": int(i), "question": f"What is the molar mass of compound {i}?"}) + "\n"
        for i in chem.index), encoding="utf-8")
    res = _invoke("calibrate", "--tasks", "mmlu_pro", "--from-matrix", matrix, "--out", tmp_path / "b.json")
    assert res.exit_code == 2
    assert "60 of 60 matrix items have a question text that is not the task's question" in res.output
    assert not (tmp_path / "b.json").exists()


def test_calibrate_accepts_the_real_mmlu_pro_matrix_with_its_items(tmp_path):
    items = pd.read_json(MATRICES / "mmlu_pro_items.jsonl", lines=True)
    cs = items[items.category == "computer science"].iloc[:120]
    ids = set(cs["question_id"].astype(str))
    frame = pd.read_csv(MATRICES / "mmlu_pro_matrix.csv", index_col=0,
                        usecols=lambda c: c == "Unnamed: 0" or c in ids)
    frame.to_csv(tmp_path / "cs_matrix.csv")
    cs.to_json(tmp_path / "cs_items.jsonl", orient="records", lines=True)
    res = _invoke("calibrate", "--tasks", "mmlu_pro", "--from-matrix", tmp_path / "cs_matrix.csv",
                  "--out", tmp_path / "b.json", "--format", "json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["task_check"] == "ids and question texts (cs_items.jsonl)"
    assert info["items"] + info["excluded_items"] == 120


# ------------------------------------------------------------------ 4. degenerate items
def _eval_toy(tmp_path: Path):
    return _invoke("eval", "--model", "smollm2-135m", "--tasks", tmp_path / "toy.toml",
                   "--store", tmp_path / "s.duckdb")


def test_single_choice_item_is_refused(tmp_path):
    rows = _rows()
    rows[3]["options"], rows[3]["answer"] = ["eight"], 0
    rows[6]["options"], rows[6]["answer"] = ["seven"], 0
    _write_task(tmp_path, rows)
    res = _eval_toy(tmp_path)
    assert res.exit_code == 2  # bad input: EXIT_INPUT in every command (issue #15)
    assert "task toy: 2 item(s) have fewer than 2 choices, so they are always scored correct: item ids 3, 6" in res.stderr
    assert not (tmp_path / "s.duckdb").exists() or Store(tmp_path / "s.duckdb", read_only=True).runs().empty


def test_empty_choice_string_is_refused(tmp_path):
    rows = _rows()
    rows[2]["options"] = ["Rome", "", "Madrid"]
    _write_task(tmp_path, rows)
    res = _eval_toy(tmp_path)
    assert res.exit_code == 2  # bad input: EXIT_INPUT in every command (issue #15)
    assert "task toy: 1 item(s) have an empty choice string: item ids 2" in res.stderr


def test_empty_data_file_is_refused(tmp_path):
    _write_task(tmp_path, [])
    res = _eval_toy(tmp_path)
    assert res.exit_code == 2  # bad input: EXIT_INPUT in every command (issue #15)
    assert "toy.jsonl: the data file has no rows; there is nothing to evaluate" in res.stderr


def test_duplicate_ids_are_refused(tmp_path):
    rows = _rows()
    rows[4]["qid"] = rows[1]["qid"]
    rows[7]["qid"] = rows[1]["qid"]
    _write_task(tmp_path, rows, extra='id = "qid"\n')
    res = _eval_toy(tmp_path)
    assert res.exit_code == 2  # bad input: EXIT_INPUT in every command (issue #15)
    assert "1 id value(s) of field 'qid' occur more than once: q1; ids must be unique" in res.stderr


def test_null_choice_is_refused(tmp_path):
    rows = _rows()
    rows[0]["options"] = ["3", None, "5"]
    _write_task(tmp_path, rows)
    with pytest.raises(DataFileError, match=r"1 row\(s\) have a null choice .*item ids 0"):
        get_task(str(tmp_path / "toy.toml")).items()


def test_null_prompt_field_renders_empty_with_a_warning(tmp_path):
    """AGIEval sat-en-without-passage has passage: null; a task file over it must not say 'None'."""
    src = SHARED / "agieval" / "sat-en-without-passage.jsonl"
    task = tmp_path / "sat.toml"
    task.write_text(
        f'name = "sat_nopassage"\npath = "{src.resolve()}"\n'
        'doc_to_text = "{passage}Q: {question}\\nA:"\nchoices = "options"\ngold = "label"\n',
        encoding="utf-8",
    )
    n = sum(1 for line in src.read_text(encoding="utf-8").splitlines() if line.strip())
    with pytest.warns(DataQualityWarning, match=rf"{n} row\(s\) have a null prompt field, rendered as empty "
                                                rf"text \(not 'None'\): 'passage' in item ids 0, 1, 2"):
        items = get_task(str(task)).items()
    assert not any(it.requests[0].context.startswith("None") for it in items)
    assert items[0].requests[0].context.startswith("Q: ")


def test_builtin_task_degenerate_items_are_warned_with_ids():
    """Built-in benchmarks keep lm-eval's scoring (parity) but say which items are degenerate."""
    with pytest.warns(DataQualityWarning, match=r"task mmlu_pro: 5 item\(s\) have fewer than 2 choices.*"
                                                r"item ids 2029, 2152, 5513, 5515, 6754"):
        items = get_task("mmlu_pro").items()
    assert len(items) == 12032


def test_single_choice_error_is_a_task_error(tmp_path):
    rows = _rows()
    rows[0]["options"], rows[0]["answer"] = ["4"], 0
    _write_task(tmp_path, rows)
    with pytest.raises(TaskError, match="fewer than 2 choices"):
        get_task(str(tmp_path / "toy.toml")).items(limit=2)


# ------------------------------------------------------------------ 5. foreign DuckDB file as --store
@pytest.fixture()
def foreign_db(tmp_path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE sales (day DATE, amount DOUBLE)")
    con.execute("INSERT INTO sales VALUES ('2026-01-01', 12.5)")
    con.close()
    return path


def _tables(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


def test_eval_refuses_a_foreign_duckdb_file(foreign_db, tmp_path):
    task = _write_task(tmp_path, _rows())
    res = _invoke("eval", "--model", "smollm2-135m", "--tasks", task, "--limit", "2", "--store", foreign_db)
    assert res.exit_code == 1
    assert "is a DuckDB file but not a sharpbench store (it holds sales and no sharpbench meta table)" in res.stderr
    assert _tables(foreign_db) == {"sales"}  # nothing written into it


def test_store_api_refuses_foreign_files_but_accepts_its_own(foreign_db, tmp_path):
    for read_only in (False, True):
        with pytest.raises(StoreCorruptError, match="not a sharpbench store"):
            Store(foreign_db, read_only=read_only)
    # a table called meta is not enough
    con = duckdb.connect(str(foreign_db))
    con.execute("CREATE TABLE meta (k VARCHAR, v VARCHAR)")
    con.close()
    with pytest.raises(StoreCorruptError, match="not a sharpbench store"):
        Store(foreign_db)
    own = tmp_path / "own.duckdb"
    Store(own).close()
    with Store(own) as st:  # a sharpbench store reopens fine
        assert st.runs().empty
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    Store(empty).close()  # an empty DuckDB file (no tables) becomes a store
    assert "runs" in _tables(empty)
