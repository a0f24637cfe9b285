"""Issue #15: `sharpbench.toml` (pydantic-validated) sets option defaults for every command; the command
line wins; a bad file is refused with one line and the input exit code."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.cli.settings import Settings, SettingsError, load_settings
from sharpbench.errors import EXIT_INPUT
from sharpbench.store import RunSpec, Store
from sharpbench.results import ChoiceResult, ItemResult

runner = CliRunner()


def _store(path):
    with Store(path) as st:
        spec = RunSpec("m1", "fp-m1", "hf", "float32", "piqa", 0, "tmpl", task_version="1.0", n_total=1838)
        st.write_items(spec, [ItemResult(0, 0, (ChoiceResult(-1.0, True, 2), ChoiceResult(-2.0, False, 3)),
                                         {"acc": 1.0, "acc_norm": 1.0})])
        st.finish_run(spec.run_id, status="complete", metrics={"acc": (1.0, 0.0)})
    return path


def test_store_default_comes_from_the_settings_file_and_the_command_line_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHARPBENCH_CONFIG", raising=False)
    _store(tmp_path / "mine.duckdb")
    res = runner.invoke(app, ["results", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 1 and "no store at sharpbench.duckdb" in res.output  # no file: built-in default
    (tmp_path / "sharpbench.toml").write_text('store = "mine.duckdb"\nbatch_size = 4\n', encoding="utf-8")
    res = runner.invoke(app, ["results", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0 and '"m1"' in res.output, res.output
    res = runner.invoke(app, ["results", "--store", "other.duckdb"], catch_exceptions=False)
    assert res.exit_code == 1 and "no store at other.duckdb" in res.output
    help_text = " ".join(runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "300"}).output.split())
    assert "[default: 4]" in help_text and "[default: mine.duckdb]" in help_text


def test_an_option_that_is_off_unless_given_stays_off(tmp_path):
    """`distill hard --store` is None by default (do not save): a settings file must not switch it on."""
    from sharpbench.cli.settings import default_map
    from typer.main import get_command

    dm = default_map(get_command(app), Settings(store="x.duckdb").option_defaults())
    assert dm["eval"]["store"] == "x.duckdb" and dm["results"]["store"] == "x.duckdb"
    assert "store" not in dm.get("distill", {}).get("hard", {})


def test_batch_size_auto_reaches_the_commands_that_take_it():
    """`batch_size = "auto"` is eval's default; commands whose --batch-size is a number keep their own."""
    from sharpbench.cli.settings import default_map
    from typer.main import get_command

    dm = default_map(get_command(app), Settings(batch_size="auto").option_defaults())
    assert dm["eval"]["batch_size"] == "auto"
    assert "batch_size" not in dm.get("elicit", {}) and "batch_size" not in dm.get("sensitivity", {})
    dm = default_map(get_command(app), Settings(batch_size=8).option_defaults())
    assert dm["eval"]["batch_size"] == 8 and dm["elicit"]["batch_size"] == 8


@pytest.mark.parametrize(
    ("text", "message"),
    [('stor = "x"\n', "unknown setting 'stor'; valid settings: store, batch_size"),
     ('batch_size = 0\n', "setting 'batch_size': Input should be greater than 0"),
     ('batch_size = "most"\n', "setting 'batch_size'"),
     ('store = \n', "cannot read the settings")],
)
def test_a_bad_settings_file_is_one_error_line_with_the_input_exit_code(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHARPBENCH_CONFIG", raising=False)
    (tmp_path / "sharpbench.toml").write_text(text, encoding="utf-8")
    res = runner.invoke(app, ["results"], catch_exceptions=False)
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error: ")]
    assert res.exit_code == EXIT_INPUT and len(lines) == 1 and "Traceback" not in res.output
    assert lines[0].startswith("error: sharpbench.toml: ") and message in lines[0], lines


def test_settings_file_named_by_the_environment_and_threads(tmp_path, monkeypatch):
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('threads = 3\ndtype = "bfloat16"\n', encoding="utf-8")
    monkeypatch.setenv("SHARPBENCH_CONFIG", str(cfg))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    s = load_settings()
    assert s.threads == 3 and s.option_defaults() == {"dtype": "bfloat16"}
    res = runner.invoke(app, ["tasks", "list", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0 and os.environ.get("OMP_NUM_THREADS") == "3"
    monkeypatch.setenv("SHARPBENCH_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings()
