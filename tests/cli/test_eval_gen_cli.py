"""`sharpbench eval` on generative tasks from the command line: notes, warnings and input errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.errors import EXIT_INPUT

runner = CliRunner()


def _task_file(tmp_path, regex: str = "(-?[0-9]+)", max_gen: int = 8):
    rows = [{"question": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in ((2, 2), (3, 5), (10, 7))]
    (tmp_path / "arith.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    p = tmp_path / "arith.toml"
    p.write_text(
        'path = "arith.jsonl"\noutput_type = "generate_until"\ndoc_to_text = "Q: {question}\\nA:"\n'
        f'target = "answer"\nuntil = ["NEVER-APPEARS"]\nmax_gen_toks = {max_gen}\n'
        f'[[filter_list]]\nname = "pick"\nfilter = [{{function = "regex", regex_pattern = "{regex}"}}, '
        '{function = "take_first"}]\n', encoding="utf-8")
    return p


def _eval(*args: str, timeout: int = 600):
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sharpbench", "eval", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.mark.slow
def test_unextracted_answers_and_length_stops_are_reported(tmp_path):
    task = _task_file(tmp_path, regex="ZZZ([0-9]+)")  # a filter that never matches
    res = _eval("--model", "smollm2-135m", "--tasks", str(task), "--store", str(tmp_path / "s.duckdb"),
                "--repeats", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    err = " ".join(res.stderr.split())
    # 3 items x 2 samples (greedy: generated once per item and stored as both samples)
    assert "6 of 6 generations reached max_gen_toks without a stop sequence" in err
    assert "filter pick found no answer in 6 of 6 generations (e.g. items 0, 1, 2" in err
    assert err.count("repeats > 1 with greedy decoding") == 1
    assert "exact_match" in res.stdout and "pick" in res.stdout


@pytest.mark.slow
def test_chat_template_on_a_model_without_one_is_a_clear_error(tmp_path):
    res = _eval("--model", "gemma3-270m", "--tasks", str(_task_file(tmp_path)), "--apply-chat-template",
                "--store", str(tmp_path / "s.duckdb"))
    assert res.returncode == EXIT_INPUT, res.stderr[-2000:]
    assert "gemma3-270m has no chat template" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("args, message", [
    (["--tasks", "gsm8k_cot", "--gen-kwargs", "max_tokens=5"], "unknown key(s) max_tokens"),
    (["--tasks", "gsm8k_cot", "--gen-kwargs", "max_gen_toks=0"], "max_gen_toks must be >= 1"),
    (["--tasks", "piqa", "--repeats", "4"], "apply to generative tasks"),
    (["--tasks", "gsm8k_cot", "--fewshot-as-multiturn"], "needs --apply-chat-template"),
])
def test_bad_generation_options_exit_with_input_errors(tmp_path, args, message):
    res = runner.invoke(app, ["eval", "--model", "smollm2-135m", "--store", str(tmp_path / "s.duckdb"), *args])
    assert res.exit_code == EXIT_INPUT, res.output
    assert message in " ".join(res.output.split())
