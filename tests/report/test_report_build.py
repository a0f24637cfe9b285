from __future__ import annotations

import re

import pytest
from report_helpers import figure_attrs, make_store, small_matrix
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.matrix import ResponseMatrix
from sharpbench.report.build import build_report
from sharpbench.report.figures import ReportError, figure_html, new_figure


def _self_contained(text: str) -> None:
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "report references a network resource"
    assert "<script src" not in text


def test_unlabelled_plot_is_refused():
    fig, ax = new_figure()
    ax.plot([0, 1], [0, 1])
    ax.set_title("t")
    with pytest.raises(ReportError, match="axis label"):
        figure_html(fig)
    fig, ax = new_figure()
    ax.plot([0, 1], [0, 1])
    ax.set(title="T", xlabel="x (s)", ylabel="y (m)")
    out = figure_html(fig, "cap")
    assert 'data-title="T"' in out and 'data-xlabel="x (s)"' in out and "base64," in out


def test_empty_store_says_what_to_run(tmp_path):
    from sharpbench.store import Store

    Store(tmp_path / "e.duckdb").close()
    out = build_report(tmp_path / "r.html", store_path=tmp_path / "e.duckdb")
    text = out.read_text()
    assert "Nothing to report yet" in text and "sharpbench eval" in text
    with pytest.raises(ReportError, match="sharpbench eval"):
        build_report(tmp_path / "r.html", store_path=tmp_path / "missing.duckdb")


def test_store_report_has_every_section(tmp_path):
    store = make_store(tmp_path / "s.duckdb")
    text = build_report(tmp_path / "r.html", store_path=store).read_text()
    for title in ("Evaluation results", "Per-subject results", "Calibration", "IRT item maps",
                  "Hard-subset distillation", "Adaptive testing", "Model diffs", "Correlations",
                  "Prompt sensitivity", "Mystery", "Skills by subject", "Rank aggregation"):
        assert f"<h2>{title}</h2>" in text, title
    figs = figure_attrs(text)
    assert len(figs) >= 10
    assert all(f["data-title"] and f["data-xlabel"] and f["data-ylabel"] for f in figs)
    assert "ECE: top-label, 15 uniform bins" in text
    _self_contained(text)


def test_matrix_report_and_cli(tmp_path):
    m = small_matrix(300)
    m.to_frame().to_csv(tmp_path / "m.csv")
    m.item_meta.reset_index().rename(columns={"item": "question_id"}).to_json(
        tmp_path / "items.jsonl", orient="records", lines=True)
    res = CliRunner().invoke(app, ["report", "--matrix", str(tmp_path / "m.csv"), "--items",
                                   str(tmp_path / "items.jsonl"), "-o", str(tmp_path / "r.html"), "--n-boot", "5"])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "r.html").read_text()
    for title in ("Results with confidence intervals", "Skills by category", "Rank aggregation"):
        assert f"<h2>{title}</h2>" in text
    assert "Routing by category" in text and "Kendall tau-b" in text
    assert all(f["data-title"] and f["data-xlabel"] and f["data-ylabel"] for f in figure_attrs(text))
    _self_contained(text)
    # a matrix with no metadata still reports, and says how to get skills
    bare = ResponseMatrix(m.values[:, :50], m.models, m.items[:50])
    text = build_report(tmp_path / "b.html", matrix=bare).read_text()
    assert "no item metadata" in text


def test_report_cli_without_inputs_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["report", "-o", "r.html"])
    assert res.exit_code == 2 and "nothing to report" in res.output


def test_sensitivity_summary_never_prints_none():
    """A sensitivity payload without some summary figures: the column goes, a gap is blank, no 'None'."""
    from sharpbench.report.artifacts import artifact_sections

    payload = {"models": [{"model": "a", "accuracy": {"v1": 0.5, "v2": 0.6}, "plain": 0.5, "n_items": 20},
                          {"model": "b", "accuracy": {"v1": 0.4, "v2": 0.7}, "n_items": 20}]}
    html = "".join(str(s.html) if hasattr(s, "html") else str(s)
                   for s in artifact_sections([{"kind": "sensitivity", "name": "s", "payload": payload,
                                                "created_at": None}]))
    assert "None" not in html and "majority_vote" not in html and "plain" in html
