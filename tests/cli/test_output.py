"""Issue #15: one output emitter. The same result in table, JSON and CSV, the JSON shape rule, and the
real commands printing through it (typer's CliRunner on real files)."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.cli.output import Output, cell, check_format, dumps, to_csv
from sharpbench.errors import InputError

runner = CliRunner()


def _printed(capsys, fmt, build) -> str:
    with Output(fmt) as out:
        build(out)
    return capsys.readouterr().out


FRAME = pd.DataFrame({"acc": [0.123456789, np.nan, 1234.5678], "name": ["x", "y", None], "n": [1, 2, 3]},
                     index=pd.Index(["m1", "m2", "m3"], name="model"))


def test_one_table_is_a_json_array_with_full_precision_and_null(capsys):
    rows = json.loads(_printed(capsys, "json", lambda o: o.rows(FRAME, title="T")))
    assert rows == [{"model": "m1", "acc": 0.123456789, "name": "x", "n": 1},
                    {"model": "m2", "acc": None, "name": "y", "n": 2},
                    {"model": "m3", "acc": 1234.5678, "name": None, "n": 3}]


def test_fields_and_several_tables_are_one_object(capsys):
    def build(o):
        o.fields({"unit": "percent", "score": np.float64(np.inf)})
        o.rows(FRAME.head(1))
        o.rows([{"estimator": "irt", "mae": np.float32(0.5)}], name="cv")

    doc = json.loads(_printed(capsys, "json", build))
    assert doc == {"unit": "percent", "score": None, "rows": [{"model": "m1", "acc": 0.123456789, "name": "x", "n": 1}],
                   "cv": [{"estimator": "irt", "mae": 0.5}]}


def test_an_unnamed_integer_index_is_not_a_column(capsys):
    frame = pd.DataFrame({"a": [3, 1, 2], "b": ["x", "y", "z"]}).sort_values("a").iloc[:2]  # index [1, 2]
    assert json.loads(_printed(capsys, "json", lambda o: o.rows(frame))) == [{"a": 1, "b": "y"}, {"a": 2, "b": "z"}]
    labelled = pd.DataFrame({"a": [1]}, index=["m1"])  # labels are data even without a name
    assert json.loads(_printed(capsys, "json", lambda o: o.rows(labelled))) == [{"index": "m1", "a": 1}]


def test_a_record_is_an_object_and_one_csv_row(capsys):
    record = {"bank": "b", "items": np.int64(12), "ability_mean": 0.1234567, "ok": True}
    assert json.loads(_printed(capsys, "json", lambda o: o.record(record))) == {
        "bank": "b", "items": 12, "ability_mean": 0.1234567, "ok": True}
    rows = list(csv.DictReader(io.StringIO(_printed(capsys, "csv", lambda o: o.record(record)))))
    assert rows == [{"bank": "b", "items": "12", "ability_mean": "0.1234567", "ok": "True"}]
    table = _printed(capsys, "table", lambda o: o.record(record, title="Bank"))
    assert "Bank" in table and "0.1235" in table and "yes" in table


def test_csv_is_the_main_table_at_full_precision(capsys):
    def build(o):
        o.rows([{"other": 1}], name="first")
        o.rows(FRAME)
        o.fields({"not": "in csv"})

    text = _printed(capsys, "csv", build)
    assert text.splitlines() == ["model,acc,name,n", "m1,0.123456789,x,1", "m2,,y,2", "m3,1234.5678,,3"]
    assert to_csv([{"a": [1, 2], "b": {"k": "v"}}]).splitlines()[1] == '"[1, 2]","{""k"": ""v""}"'


def test_table_numbers_missing_values_and_table_only_parts(capsys):
    def build(o):
        o.rows(FRAME, title="Accuracy")
        o.table([{"only": "in the table"}], title="Extra")
        o.fields({"chosen": "auto"}, show=True)
        o.note("a note")

    text = _printed(capsys, "table", build)
    for shown in ("Accuracy", "0.1235", "1234.6", "-", "Extra", "in the table", "chosen: auto", "a note"):
        assert shown in text, shown
    assert "0.123456789" not in text
    expected = json.loads(FRAME.reset_index().to_json(orient="records"))
    assert json.loads(_printed(capsys, "json", build)) == {"chosen": "auto", "rows": expected}
    assert [cell(v) for v in (None, math.nan, True, 3, 0.0, 2e-6, 0.5, -12345.678)] == [
        "-", "-", "yes", "3", "0", "2.00e-06", "0.5", "-12345.7"]


def test_nothing_is_printed_when_the_command_fails(capsys):
    with pytest.raises(RuntimeError), Output("json") as out:
        out.rows(FRAME)
        raise RuntimeError("boom")
    assert capsys.readouterr().out == ""


def test_a_name_used_twice_is_refused():
    out = Output("json")
    out.rows([{"a": 1}], name="cv")
    with pytest.raises(ValueError, match="added twice"):
        out.rows([{"a": 2}], name="cv")
    out.fields({"cv": 1})
    with pytest.raises(ValueError, match="share the name"):
        out.document()


def test_check_format():
    assert check_format("csv") == "csv" and check_format("markdown", ("markdown",)) == "markdown"
    with pytest.raises(InputError, match="unknown --format 'xlsx'; choose one of table, json, csv"):
        check_format("xlsx")
    assert json.loads(dumps({"t": pd.Timestamp("2024-01-02"), "na": pd.NA, "arr": np.arange(2)})) == {
        "t": "2024-01-02T00:00:00", "na": None, "arr": [0, 1]}


@pytest.fixture
def matrix(tmp_path):
    rng = np.random.default_rng(0)
    theta, b = rng.normal(size=12), rng.normal(size=20)
    values = (rng.random((12, 20)) < 1 / (1 + np.exp(-(theta[:, None] - b)))).astype(int)
    frame = pd.DataFrame(values, index=[f"m{i:02d}" for i in range(12)], columns=[f"i{j}" for j in range(20)])
    frame.index.name = "model"
    path = tmp_path / "m.csv"
    frame.to_csv(path)
    return path


def test_commands_share_the_shapes(matrix):
    """A table-only result is an array, a result with fields an object; CSV is its main table."""
    info = json.loads(runner.invoke(app, ["matrix", "info", str(matrix), "-f", "json"]).stdout)
    assert info["n_models"] == 12 and len(info["accuracy"]) == 12
    acc_csv = pd.read_csv(io.StringIO(runner.invoke(app, ["matrix", "info", str(matrix), "-f", "csv"]).stdout))
    assert list(acc_csv["model"]) == [r["model"] for r in info["accuracy"]]
    assert acc_csv["accuracy"].tolist() == [r["accuracy"] for r in info["accuracy"]]  # full precision
    fit = json.loads(runner.invoke(app, ["irt", "fit", str(matrix), "--model", "1pl", "-f", "json"]).stdout)
    assert {"items", "abilities", "loglik", "model"} <= set(fit) and "history" not in fit
    ranks = json.loads(runner.invoke(app, ["rank", str(matrix), "--method", "mean", "--n-boot", "0",
                                           "-f", "json"]).stdout)
    assert isinstance(ranks, list) and {"model", "rank"} <= set(ranks[0]) and "index" not in ranks[0]
    models = json.loads(runner.invoke(app, ["models", "list", "-f", "json"]).stdout)
    assert isinstance(models, list) and {"name", "installed", "default"} <= set(models[0])
    table = runner.invoke(app, ["irt", "fit", str(matrix), "--model", "1pl", "--limit", "3"]).stdout
    assert "Items" in table and "17 more rows" in table and "Abilities" in table


def test_every_result_command_refuses_a_bad_format_with_one_line(matrix):
    for cmd in (["rank", str(matrix)], ["models", "list"], ["distill", "evaluate", str(matrix)],
                ["adaptive", "simulate", str(matrix), "--bank", "b"], ["correlate", "--rfc"]):
        r = runner.invoke(app, [*cmd, "--format", "xlsx"])
        assert r.exit_code == 2 and "error: unknown --format 'xlsx'" in r.output and "╭" not in r.output, cmd
