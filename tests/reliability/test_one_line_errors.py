"""Issue #18: failures that used to end in a traceback end in one `error: ...` line (real files, real
DuckDB stores, the real CLI through typer's CliRunner or a subprocess)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.engine.results import ChoiceResult, ItemResult
from sharpbench.store import RunSpec, Store

runner = CliRunner()

TASK_TOML = """
name = "{name}"
path = "{data}"
doc_to_text = "Question: {{question}}\\nAnswer:"
choices = "options"
gold = "answer"
id = "qid"
metric_names = ["acc", "acc_norm"]
"""


def _cli(*args: str):
    """Run the CLI in this process; a traceback (an uncaught exception) fails the test."""
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return res


def _one_error_line(res) -> str:
    """The single `error: ...` line of a failed command (and no traceback)."""
    out = res.output
    assert res.exit_code != 0, out
    assert "Traceback" not in out and "╭" not in out, out
    lines = [ln for ln in out.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, out
    return lines[0]


def _task(tmp_path: Path, name: str, data: bytes) -> Path:
    (tmp_path / f"{name}.jsonl").write_bytes(data)
    task = tmp_path / f"{name}.toml"
    task.write_text(TASK_TOML.format(name=name, data=f"{name}.jsonl"), encoding="utf-8")
    return task


def _small_store(path: Path, model: str = "m1") -> Path:
    """A real store with one finished run of three items (no model needed)."""
    with Store(path) as st:
        spec = RunSpec(model, f"fp-{model}", "hf", "float32", "piqa", 0, "tmpl", task_version="1.0", n_total=1838)
        st.write_items(spec, [ItemResult(i, 0, (ChoiceResult(-1.0, True, 2), ChoiceResult(-2.0, False, 3)),
                                         {"acc": 1.0, "acc_norm": 1.0}) for i in range(3)], {})
        st.finish_run(spec.run_id, status="complete", metrics={"acc": (1.0, 0.0), "acc_norm": (1.0, 0.0)}, limit=3)
    return path


def _read_only_dir(tmp_path: Path) -> Path:
    """A folder this process cannot write into: a chmod 555 folder, or (as root, who ignores modes)
    /sys, which containers mount read-only; skip where neither refuses a write."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    for cand in (ro, Path("/sys")):
        probe = cand / "sharpbench-probe.txt"
        try:
            probe.write_text("x")
        except OSError:
            return cand
        probe.unlink()
    pytest.skip("no folder here refuses writes")


# ------------------------------------------------------------------ data files
def test_non_utf8_data_file_is_named_by_tasks_show_and_eval(tmp_path):
    task = _task(tmp_path, "latin", b'{"qid": "q1", "question": "Caf\xe9?", "options": ["a", "b"], "answer": 0}\n')
    want = f"error: {tmp_path / 'latin.jsonl'}: line 1, column 31: byte 0xe9 is not UTF-8; save the file as UTF-8"
    shown = _one_error_line(_cli("tasks", "show", task))
    assert shown.startswith(want)
    res = _cli("eval", "--tasks", task, "--store", tmp_path / "s.duckdb")
    assert res.exit_code == 2 and _one_error_line(res).startswith(want)  # bad input: EXIT_INPUT in every command (issue #15)


def test_non_utf8_task_file(tmp_path):
    task = tmp_path / "bad.toml"
    task.write_bytes(b'name = "caf\xe9"\n')
    line = _one_error_line(_cli("tasks", "show", task))
    assert line.startswith(f"error: {task}: line 1, column 12: byte 0xe9 is not UTF-8")


def test_lone_surrogate_in_a_prompt_fails_before_the_model_loads(tmp_path):
    rows = [{"qid": "q1", "question": "ok?", "options": ["a", "b"], "answer": 0},
            {"qid": "q2", "question": "Bad \\ud800 char?", "options": ["a", "b"], "answer": 1}]
    # json.dumps would escape the surrogate as \\ud800 text; write the JSON escape itself
    data = "".join(json.dumps(r).replace("\\\\ud800", "\\ud800") + "\n" for r in rows).encode()
    task = _task(tmp_path, "sur", data)
    want = ("error: task sur: item 1, choice 0: the context holds a lone surrogate '\\ud800' at character 14 "
            "(not valid Unicode")
    assert _one_error_line(_cli("tasks", "show", task)).startswith(want)
    assert _one_error_line(_cli("tasks", "show", task, "--format", "json")).startswith(want)
    store = tmp_path / "s.duckdb"
    # A model name that cannot load: the check must come first, so the error is the data's.
    res = _cli("eval", "--tasks", task, "--model", "no-such-model-xyz", "--store", store)
    assert _one_error_line(res).startswith(want)


# ------------------------------------------------------------------ eval options
@pytest.mark.parametrize(
    ("backend", "arg", "hint"),
    [("hf", "batchsize=4", "(did you mean 'batch_size'?)"),
     ("llamacpp", "n_thread=1", "(did you mean 'n_threads'?)"),
     ("openai", "max_concurency=2", "(did you mean 'max_concurrency'?)")],
)
def test_model_arg_typo_lists_the_valid_keys(tmp_path, backend, arg, hint):
    key = arg.split("=")[0]
    res = _cli("eval", "--backend", backend, "--tasks", "piqa", "--limit", "2", "-M", arg,
               "--store", tmp_path / "s.duckdb")
    line = _one_error_line(res)
    assert res.exit_code == 2
    assert line.startswith(f"error: unknown --model-arg '{key}' for the {backend} backend {hint}; valid keys: ")
    valid = line.split("valid keys: ")[1].split(", ")
    assert valid == sorted(valid) and {"batch_size", "max_length"} <= set(valid)


def test_device_cuda_on_a_cpu_torch_fails_before_loading(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    res = _cli("eval", "--tasks", "piqa", "--limit", "2", "--device", "cuda", "--store", tmp_path / "s.duckdb")
    line = _one_error_line(res)
    why = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no CUDA GPU on this machine"
    assert line == (f"error: --device cuda: {why} (torch {torch.__version__}); leave --device out to use the CPU, "
                    "or install a CUDA build of torch")
    assert res.exit_code == 1
    assert not (tmp_path / "s.duckdb").exists()  # checked before anything was opened or loaded


def test_openai_backend_without_httpx_names_the_extra(tmp_path):
    """The minimal install has no httpx: simulate it in a real subprocess and check the escaped message."""
    code = (
        "import sys; sys.modules['httpx'] = None\n"  # `import httpx` now raises ImportError
        "from sharpbench.cli.app import main\n"
        "sys.argv = ['sharpbench', 'eval', '--backend', 'openai', '--tasks', 'piqa', '--limit', '2',\n"
        f"            '-M', 'base_url=http://127.0.0.1:9/v1', '-M', 'tokenizer=smollm2-135m', '--store', {str(tmp_path / 's.duckdb')!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: the openai backend needs httpx, which this install lacks: pip install "sharpbench[openai]"'
    )


def test_error_text_with_brackets_is_printed_literally(tmp_path):
    """Rich markup used to eat `[llamacpp]`-like parts of eval's errors; paths with brackets too."""
    folder = tmp_path / "runs [v2]" / "[bold]x"
    folder.mkdir(parents=True)
    task = _task(folder, "latin", b'{"qid": "q1", "question": "\xff", "options": ["a", "b"], "answer": 0}\n')
    res = _cli("eval", "--tasks", task, "--store", tmp_path / "s.duckdb")
    assert f"error: {folder / 'latin.jsonl'}: line 1" in _one_error_line(res)
    res = _cli("eval", "--tasks", "piqa", "-M", "nokeyvalue")
    assert _one_error_line(res) == "error: --model-arg expects KEY=VALUE, got 'nokeyvalue'"


# ------------------------------------------------------------------ matrices
@pytest.mark.parametrize(
    "matrix_msg", ["the file is empty (no header, no rows)", "only a header row, no rows of scores"],
)
def test_empty_or_header_only_csv_matrix(tmp_path, matrix_msg):
    path = tmp_path / "m.csv"
    path.write_bytes(b"" if "empty" in matrix_msg else b",i1,i2\n")
    for cmd in (["matrix", "info"], ["matrix", "import", "--out", tmp_path / "o.parquet"], ["irt", "fit"]):
        res = _cli(*cmd, path)
        assert _one_error_line(res) == f"error: {path}: {matrix_msg}", cmd
    # one reader (issue #15): the insight commands and report print the same message
    for cmd in (["rank"], ["report", "-o", tmp_path / "r.html", "--matrix"]):
        res = _cli(*cmd, path)
        assert _one_error_line(res) == f"error: {path}: {matrix_msg}", cmd
        assert res.exit_code == 2


# ------------------------------------------------------------------ stores
@pytest.mark.parametrize("keep", [4096, 20000, 0.85])
def test_truncated_store(tmp_path, keep):
    good = _small_store(tmp_path / "good.duckdb")
    raw = good.read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else keep
    bad = tmp_path / "cut.duckdb"
    bad.write_bytes(raw[:n])
    want = re.compile(rf"error: store {re.escape(str(bad))} is truncated or damaged: it has {n} bytes, "
                      r"(of the \d+|fewer than) its index refers to; restore it from a copy, or move it away "
                      r"and pass another --store")
    for cmd in (["results"], ["results", "export", "-o", tmp_path / "ex"], ["report", "-o", tmp_path / "r.html"],
                ["calibration"], ["eval", "--tasks", "piqa", "--limit", "2"]):
        res = _cli(*cmd, "--store", bad)
        assert want.fullmatch(_one_error_line(res)), (cmd, res.output)
        assert res.exit_code == 1 or cmd[0] in ("report", "calibration")
    assert bad.read_bytes() == raw[:n]  # nothing written into it


def test_a_store_with_free_blocks_is_not_called_truncated(tmp_path):
    """Rewrites leave free blocks that DuckDB counts in total_blocks but need not write out: still healthy."""
    import duckdb

    path = tmp_path / "s.duckdb"
    for i in range(4):  # a shrinking artifact rewritten in place frees blocks
        with Store(path) as st:
            st.save_artifact("x", "big", {"v": list(range(200_000 - 40_000 * i))})
    con = duckdb.connect(str(path), read_only=True)
    size, total, free = con.execute("SELECT block_size, total_blocks, free_blocks FROM pragma_database_size()").fetchone()
    con.close()
    assert free > 0 and path.stat().st_size < size * total  # the situation the old check misread
    res = _cli("results", "--store", path, "--format", "json")
    assert res.exit_code == 0, res.output
    with Store(path) as st:
        assert len(st.artifacts("x")[0]["payload"]["v"]) == 80_000


def test_whole_store_still_opens(tmp_path):
    good = _small_store(tmp_path / "good.duckdb")
    res = _cli("results", "--store", good, "--format", "json")
    assert res.exit_code == 0 and json.loads(res.output)[0]["n_items"] == 3


# ------------------------------------------------------------------ outputs
def test_report_and_export_into_a_read_only_folder(tmp_path):
    store = _small_store(tmp_path / "s.duckdb")
    ro = _read_only_dir(tmp_path)
    res = _cli("report", "--store", store, "-o", ro / "r.html")
    assert _one_error_line(res) == (f"error: cannot write {ro / 'r.html'}: Permission denied; "
                                    "pass -o a path you can write to")
    res = _cli("results", "export", "--store", store, "-o", ro)
    assert _one_error_line(res).startswith(f"error: cannot write the export to {ro}: ")
    assert res.output.rstrip().endswith("pass -o a folder you can write to")
    res = _cli("matrix", "export", store, "-o", ro / "m.csv")  # a store is no matrix: the reading fails first
    assert res.exit_code != 0 and "Traceback" not in res.output


def test_export_onto_an_existing_file_needs_force(tmp_path):
    store = _small_store(tmp_path / "s.duckdb")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me")
    res = _cli("results", "export", "--store", store, "-o", a_file)
    assert _one_error_line(res) == (f"error: {a_file} is a file; -o names the folder to write runs.parquet, "
                                    "items.parquet, choices.parquet, generations.parquet, artifacts.parquet into")
    assert a_file.read_text() == "keep me"

    out = tmp_path / "out"
    assert _cli("results", "export", "--store", store, "-o", out).exit_code == 0
    before = (out / "runs.parquet").stat().st_mtime_ns
    res = _cli("results", "export", "--store", store, "-o", out)
    assert _one_error_line(res) == (f"error: {out} already holds runs.parquet, items.parquet, choices.parquet, "
                                    "generations.parquet, artifacts.parquet; pass --force to overwrite")
    assert res.exit_code == 2 and (out / "runs.parquet").stat().st_mtime_ns == before
    res = _cli("results", "export", "--store", store, "-o", out, "--force")
    assert res.exit_code == 0, res.output
    # csv files are other files: no --force needed
    assert _cli("results", "export", "--store", store, "-o", out, "--format", "csv").exit_code == 0

    matrix = tmp_path / "m.csv"
    matrix.write_text("model,i1,i2\nA,1,0\nB,0,1\n", encoding="utf-8")
    target = tmp_path / "wide.csv"
    target.write_text("keep me")
    res = _cli("matrix", "export", matrix, "-o", target)
    assert _one_error_line(res) == f"error: {target} exists; pass --force to overwrite it"
    assert target.read_text() == "keep me"
    assert _cli("matrix", "export", matrix, "-o", target, "--force").exit_code == 0
    assert target.read_text().splitlines()[0] == "model,i1,i2"


@pytest.mark.slow
def test_output_json_into_a_read_only_folder_says_the_rows_are_stored(tmp_path):
    ro = _read_only_dir(tmp_path)
    store = tmp_path / "s.duckdb"
    res = _cli("eval", "--tasks", "piqa", "--limit", "2", "--store", store, "--output-json", ro / "r.json")
    line = _one_error_line(res)
    assert res.exit_code == 1
    assert line == (f"error: cannot write --output-json {ro / 'r.json'}: Permission denied. The results are stored "
                    f"in {store}: run the same command with another --output-json to write the report "
                    "(nothing is recomputed)")
    with Store(store, read_only=True) as st:
        (run,) = st.runs().to_dict("records")
        assert run["n_items"] == 2 and run["status"] == "complete"
    res = _cli("eval", "--tasks", "piqa", "--limit", "2", "--store", store, "--output-json", tmp_path / "r.json")
    assert res.exit_code == 0
    assert json.loads((tmp_path / "r.json").read_text())["n_computed"] == 0


def test_bracketed_names_and_texts_print_literally_in_tables(tmp_path):
    """Beyond errors: model names, task texts and paths with brackets are not taken for rich markup."""
    src = tmp_path / "m [v2].csv"
    src.write_text("model,i1,i2\n[bold]A[/bold],1,0\nB[x],0,1\n", encoding="utf-8")
    res = _cli("matrix", "info", src)
    assert res.exit_code == 0 and "[bold]A[/bold]" in res.output and "B[x]" in res.output
    res = _cli("matrix", "export", src, "-o", tmp_path / "o [1].csv")
    assert res.exit_code == 0 and f"wrote {tmp_path / 'o [1].csv'}" in res.output
    task = _task(tmp_path, "br", b'{"qid": "[q1]", "question": "Pick [A] or [b]x[/b]?", "options": ["[A]", "[b]"], '
                                 b'"answer": 0}\n')
    res = _cli("tasks", "show", task, "-n", "1")
    assert res.exit_code == 0
    assert "Pick [A] or [b]x[/b]?" in res.output and "' [A]'" in res.output and "' [b]'" in res.output
    assert "'id': '[q1]'" in res.output
