"""`sharpbench eval --batch-size`: a positive integer or `auto`; anything else is a usage error (exit 2)."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.errors import EXIT_INPUT
from sharpbench.store import Store

runner = CliRunner()


@pytest.mark.parametrize("value", ["foo", "0", "-3", "2.5", "auto:4"])
def test_a_bad_batch_size_exits_2_before_anything_runs(tmp_path, value):
    store = tmp_path / "s.duckdb"
    res = runner.invoke(app, ["eval", "--tasks", "piqa", "--limit", "2", "--batch-size", value, "--store", str(store)],
                        env={"COLUMNS": "300"})
    assert res.exit_code == EXIT_INPUT, res.output
    text = " ".join(res.output.replace("│", " ").split())
    assert "--batch-size" in text and ("positive integer or 'auto'" in text or "auto:N" in text), text
    assert not store.exists()


def test_batch_size_auto_runs_a_real_model(tmp_path, smollm2_dir, caplog):
    """On the CPU `auto` is the default batch size (16), said once in the log; the scores are the default's."""
    store = tmp_path / "s.duckdb"
    args = ["eval", "--model", "smollm2-135m", "--tasks", "piqa", "--limit", "4", "--store", str(store)]
    with caplog.at_level(logging.WARNING, logger="sharpbench"):
        res = runner.invoke(app, [*args, "--batch-size", "auto"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "piqa" in res.output and "acc" in res.output
    lines = [r.getMessage() for r in caplog.records if "batch size auto" in r.getMessage()]
    assert lines == ["batch size auto: 16 for multiple_choice (cpu: the default; free memory is probed on CUDA only)"]
    with Store(store) as st:
        runs = st.runs()
        assert len(runs) == 1
        assert len(st.item_results(runs["run_id"].iloc[0], list(range(4)))) == 4
    res = runner.invoke(app, [*args, "--batch-size", "16"], catch_exceptions=False)  # an integer still works
    assert res.exit_code == 0, res.output
