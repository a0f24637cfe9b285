"""``sharpbench matrix import/info/export`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.matrix.io import read_matrix

runner = CliRunner()


def _csv(tmp_path):
    df = pd.DataFrame({"item": ["q1", "q2", "q3"], "m1": [1, 0, 1], "m2": [1, np.nan, 0]})
    path = tmp_path / "items_rows.csv"
    df.to_csv(path, index=False)
    return path


def test_import_info_export(tmp_path):
    src = _csv(tmp_path)
    out = tmp_path / "norm.parquet"
    res = runner.invoke(app, ["matrix", "import", str(src), "--items-as-rows", "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = read_matrix(out)
    assert m.models == ("m1", "m2") and m.items == ("q1", "q2", "q3")

    res = runner.invoke(app, ["matrix", "info", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["n_models"] == 2 and info["n_missing"] == 1
    assert info["constant_items"]["all_correct"] == 1  # q1
    acc = {r["model"]: r["accuracy"] for r in info["accuracy"]}
    assert acc == {"m1": 2 / 3, "m2": 0.5}

    res = runner.invoke(app, ["matrix", "info", str(out)])
    assert res.exit_code == 0 and "2 models x 3 items" in res.output

    long = tmp_path / "long.csv"
    res = runner.invoke(app, ["matrix", "export", str(out), "--to", "long", "--out", str(long)])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(long)) == 5


def test_clear_error_on_bad_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,a\nm1,maybe\n")
    res = runner.invoke(app, ["matrix", "info", str(bad)])
    assert res.exit_code == 2  # bad input: EXIT_INPUT in every command (issue #15)
    assert "non-numeric" in res.output
