"""`sharpbench irt fit --store` saves the fit, and the HTML report draws its item map from it."""

from __future__ import annotations

import re

import pandas as pd
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.irt.simulate import simulate
from sharpbench.report.build import build_report
from sharpbench.store import Store


def test_irt_fit_artifact_reaches_the_report(tmp_path):
    y, _ = simulate(120, 15, seed=3)
    csv = tmp_path / "sim.csv"
    pd.DataFrame(y, index=[f"m{i}" for i in range(120)], columns=[f"q{j}" for j in range(15)]).to_csv(csv)
    store = tmp_path / "s.duckdb"
    res = CliRunner().invoke(app, ["irt", "fit", str(csv), "--store", str(store)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    with Store(store) as st:
        (art,) = st.artifacts("irt")
    items = art["payload"]["items"]
    assert len(items) == 15 and {"a", "b", "d"} <= set(items[0])
    html = build_report(tmp_path / "r.html", store_path=store).read_text()
    assert "difficulty vs discrimination" in html
    assert re.search(r"ICCs of the most discriminating items", html)
