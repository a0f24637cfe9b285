"""Issue #18: the llamacpp thread trap and newcomer paper cuts, each through the real component
(real CLI, real DuckDB store, real README commands on the shared data, a real llama.cpp model)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.engine.results import ChoiceResult, ItemResult
from sharpbench.store import RunSpec, Store

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
runner = CliRunner()


def _cli(*args, env: dict | None = None):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


def _readme_command(prefix: str) -> list[str]:
    """The README's `sharpbench ...` line starting with ``prefix`` (continuations joined, comment cut)."""
    lines = README.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            text = line
            while text.rstrip().endswith("\\"):
                i += 1
                text = text.rstrip()[:-1] + " " + lines[i].strip()
            return shlex.split(text.split("  #")[0])[1:]
    raise AssertionError(f"README has no line starting with {prefix!r}")


# ------------------------------------------------------------------ llamacpp threads
@pytest.mark.slow
def test_llamacpp_threads_follow_omp_num_threads_like_hf(monkeypatch):
    pytest.importorskip("llama_cpp")
    import torch

    from sharpbench.models import default_threads, load_model

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    lm = load_model("smollm2-135m", backend="llamacpp")
    assert lm.llm.n_threads == 1 and lm.llm.n_threads_batch == 1
    del lm
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == torch.get_num_threads()  # the hf backend's count without the variable
    lm = load_model("smollm2-135m", backend="llamacpp", n_threads=2)  # -M n_threads=N still wins
    assert lm.llm.n_threads == 2
    assert "`$OMP_NUM_THREADS` when set, else torch's default (`-M n_threads=N` overrides)" in README


# ------------------------------------------------------------------ non-TTY progress
@pytest.mark.slow
def test_non_tty_progress_lines_have_rate_and_eta(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sharpbench", "eval", "--tasks", "piqa", "--limit", "4", "--batch-size", "2",
         "--store", str(tmp_path / "s.duckdb")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("[sharpbench] piqa:")]
    pat = re.compile(r"\[sharpbench\] piqa: (\d)/4 items stored \((\d+\.\d) items/s, ETA (\d+s|\d+m\d\ds)\)")
    got = [pat.fullmatch(ln) for ln in lines]
    assert len(lines) == 2 and all(got), lines
    assert [int(m.group(1)) for m in got] == [2, 4] and got[-1].group(3) == "0s"
    assert float(got[0].group(2)) > 0


@pytest.mark.slow
def test_non_tty_fanout_progress_lines_have_rate_and_eta(tmp_path):
    models = tmp_path / "models.txt"
    models.write_text("smollm2-135m\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sharpbench", "eval", "--models", str(models), "--tasks", "piqa", "--limit", "4",
         "--shard-size", "2", "--store", str(tmp_path / "s.duckdb")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("[sharpbench] smollm2-135m/piqa")]
    pat = re.compile(r"\[sharpbench\] smollm2-135m/piqa\S*: 2 items stored \(([24])/4, (\d+\.\d) items/s, "
                     r"ETA (\d+s|\d+m\d\ds)\)")
    got = [pat.fullmatch(ln) for ln in lines]
    assert len(lines) == 2 and all(got), lines
    assert [m.group(1) for m in got] == ["2", "4"] and got[-1].group(3) == "0s"


# ------------------------------------------------------------------ README examples run as written
def test_readme_rank_and_skills_examples_run_as_written(monkeypatch):
    monkeypatch.chdir(REPO)  # the README's paths are relative to the repository root
    rank = _readme_command("sharpbench rank ")
    assert "--by" in rank and "--method" in rank
    res = _cli(*rank, "--n-boot", "5")
    assert res.exit_code == 0, res.output
    assert "Ranks by method (benchmarks = category)" in res.output
    skills = _readme_command("sharpbench skills ")
    assert "--items" in skills and skills[skills.index("--from") + 1] == "metadata"
    res = _cli(*skills, "--splits", "2", "--format", "json")
    assert res.exit_code == 0, res.output


def test_quickstart_says_how_long_the_full_split_takes_and_shows_limit():
    quick = README.split("## What a user does")[0]
    assert "The full split takes about 4-5 minutes" in quick
    assert "`bash scripts/quickstart.sh --limit 100` scores the first 100 items" in quick


# ------------------------------------------------------------------ export option names
def test_matrix_export_takes_format_like_results_export(tmp_path):
    src = tmp_path / "m.csv"
    src.write_text("model,i1,i2,i3\nA,1,0,1\nB,0,1,1\n", encoding="utf-8")
    outs = {}
    for opt in ("--format", "-f", "--to"):
        out = tmp_path / f"long{opt.strip('-')}.csv"
        res = _cli("matrix", "export", src, "-o", out, opt, "long")
        assert res.exit_code == 0, res.output
        outs[opt] = out.read_text()
    assert outs["--format"] == outs["-f"] == outs["--to"]
    assert list(pd.read_csv(tmp_path / "longformat.csv").columns) == ["model", "item", "score"]
    res = _cli("matrix", "export", src, "--output", tmp_path / "w.parquet", "--format", "parquet")
    assert res.exit_code == 0, res.output
    res = _cli("matrix", "export", src, "-o", tmp_path / "x.csv", "--format", "xlsx")
    assert res.exit_code == 2 and "error: unknown --format 'xlsx'; use csv, parquet, long" in res.output
    assert "--format" in _cli("results", "export", "--help").output


# ------------------------------------------------------------------ matrix info intervals
def test_matrix_info_intervals_stay_in_unit_interval(tmp_path):
    src = tmp_path / "m.csv"
    rows = {"nine_of_ten": [1] * 9 + [0], "all": [1] * 10, "none": [0] * 10, "one": [1] + [0] * 9}
    pd.DataFrame(rows, index=[f"i{k}" for k in range(10)]).T.to_csv(src)
    res = _cli("matrix", "info", src, "--format", "json")
    assert res.exit_code == 0, res.output
    acc = {r["model"]: r for r in json.loads(res.output)["accuracy"]}
    for r in acc.values():
        assert 0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1
    # Wilson 95% for 9/10: [0.5958, 0.9821]; the normal approximation gave [0.704, 1.096]
    assert acc["nine_of_ten"]["ci_low"] == pytest.approx(0.5958, abs=1e-4)
    assert acc["nine_of_ten"]["ci_high"] == pytest.approx(0.9821, abs=1e-4)
    assert acc["all"]["ci_high"] == 1 and acc["all"]["ci_low"] < 1  # not a zero-width interval
    res = _cli("matrix", "info", src)
    assert "95% CI, Wilson" in res.output and "1.0956" not in res.output


# ------------------------------------------------------------------ results model names
LONG = "HuggingFaceTB/SmolLM2-1.7B-Instruct-abliterated-v2"


def test_results_table_shows_whole_model_names(tmp_path):
    store = tmp_path / "s.duckdb"
    with Store(store) as st:
        for name in (LONG, "qwen2.5-coder-0.5b"):
            spec = RunSpec(name, f"fp-{name}", "hf", "float32", "arc_challenge", 0, "tmpl", n_total=1172)
            st.write_items(spec, [ItemResult(i, 0, (ChoiceResult(-1.0, True, 2), ChoiceResult(-2.0, False, 3)),
                                             {"acc": 1.0, "acc_norm": 1.0}) for i in range(3)], {})
            st.finish_run(spec.run_id, status="complete", metrics={"acc": (1.0, 0.0)}, limit=3)
    wide = _cli("results", "--store", store, env={"COLUMNS": "200"})
    assert wide.exit_code == 0 and LONG in wide.output and "arc_challenge" in wide.output
    for width in ("80", "100"):
        res = _cli("results", "--store", store, env={"COLUMNS": width})
        assert res.exit_code == 0
        body = [ln for ln in res.output.splitlines() if ln.startswith("│")]
        first = "".join(ln.split("│")[1].strip() for ln in body)  # the model column, folded lines joined
        second = "".join(ln.split("│")[2].strip() for ln in body)
        assert "…" not in first and "…" not in second
        assert first == LONG + "qwen2.5-coder-0.5b" or first == "qwen2.5-coder-0.5b" + LONG, first
        assert second == "arc_challenge" * 2
