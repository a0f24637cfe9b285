"""``sharpbench irt fit`` end to end, on LSAT7 and on bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.irt import IRTFit

runner = CliRunner()


def test_fit_json_matches_mirt(lsat7, tmp_path):
    df = pd.DataFrame(lsat7.astype(int), columns=[f"Item{j + 1}" for j in range(5)])
    df.insert(0, "id", [f"p{i}" for i in range(len(df))])
    path = tmp_path / "lsat7.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "fit.json"
    res = runner.invoke(app, ["irt", "fit", "--model", "2pl", str(path), "--format", "json", "--prior", "none",
                              "--tol", "1e-7", "--out", str(out), "--quadrature", "mirt"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert [it["item"] for it in obj["items"]] == list(df.columns[1:])
    assert set(obj["items"][0]) >= {"item", "a", "b", "d", "g", "u"}
    np.testing.assert_allclose([it["a"] for it in obj["items"]], [0.988, 1.081, 1.706, 0.765, 0.736], atol=0.005)
    assert abs(obj["loglik"] + 2658.805) < 0.01
    assert "slope-intercept" in obj["parameterisation"]
    assert IRTFit.load(out).loglik == obj["loglik"]


def test_items_as_rows_and_table(lsat7, tmp_path):
    df = pd.DataFrame(lsat7[:300].T.astype(int), index=[f"Item{j}" for j in range(5)])
    path = tmp_path / "t.csv"
    df.to_csv(path, index_label="item")
    res = runner.invoke(app, ["irt", "fit", str(path), "--items-as-rows", "--model", "1pl"])
    assert res.exit_code == 0, res.output
    assert "1PL on 300 models x 5 items" in res.output.replace("\n", " ")


def test_non_binary_input_is_a_clear_error(tmp_path):
    path = tmp_path / "scores.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "i1": [0.2, 0.9, 0.5], "i2": [1, 0, 1]}).to_csv(path, index=False)
    res = runner.invoke(app, ["irt", "fit", str(path)])
    assert res.exit_code == 2  # bad input: EXIT_INPUT in every command (issue #15)
    assert "--binarize" in res.output
    res = runner.invoke(app, ["irt", "fit", str(path), "--binarize", "0.5", "--format", "csv"])
    assert res.exit_code == 0, res.output
