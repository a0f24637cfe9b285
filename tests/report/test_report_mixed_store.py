"""The report on a real-shaped, mixed store (issue #18): several backends and dtypes, 57 one-item MMLU
runs, prompt-sensitivity variants, per-run calibration artifacts and an adaptive result."""

from __future__ import annotations

import re

import numpy as np
import pytest
from report_helpers import html_sections, make_mixed_store
from typer.testing import CliRunner

from sharpbench.report import plots
from sharpbench.report.build import build_report


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return make_mixed_store(tmp_path_factory.mktemp("mixed") / "mixed.duckdb")


@pytest.fixture()
def plotted(monkeypatch):
    """Every interval plot's rows (labels, values, interval ends) as the report draws them."""
    calls = []
    real = plots.interval_plot

    def spy(labels, values, low, high, **kw):
        calls.append({"labels": list(labels), "values": np.asarray(values, float), "low": np.asarray(low, float),
                      "high": np.asarray(high, float), **kw})
        return real(labels, values, low, high, **kw)

    monkeypatch.setattr(plots, "interval_plot", spy)
    return calls


def _results_plot(calls):
    return next(c for c in calls if c["title"].startswith("acc per model and task group"))


def test_mixed_store_results_are_labelled_grouped_and_bounded(mixed, tmp_path, plotted):
    text = build_report(tmp_path / "r.html", store_path=mixed).read_text()
    sec = html_sections(text)
    res = sec["Evaluation results"]
    # backend/dtype in the label: hf float32, hf bfloat16 and llamacpp are three rows, not one name
    for setup in ("smollm2-135m[hf,float32,0-shot]", "smollm2-135m[hf,bfloat16,0-shot]",
                  "smollm2-135m[llamacpp,q8_0,0-shot]"):
        assert setup in res, setup
    plot = _results_plot(plotted)
    assert len(set(plot["labels"])) == len(plot["labels"])
    # the 57 one-item MMLU runs are one pooled row (57 tasks, 57 items), not 57 plot rows
    head = res.split("<details>")[0]
    assert not re.search(r"mmlu_subject_\d\d", head)
    row = re.search(r"<td>smollm2-135m\[hf,float32,0-shot\]</td>\s*<td>mmlu</td>\s*<td>(\d+)</td>\s*<td>(\d+)</td>",
                    head)
    assert row and row.groups() == ("57", "57")
    assert [lab for lab in plot["labels"] if "mmlu" in lab] == ["smollm2-135m[hf,float32,0-shot] / mmlu"]
    assert len(plot["labels"]) == 6  # 5 arc_easy rows + the pooled mmlu row
    assert "<details>" in res and "mmlu_subject_00" in res.split("<details>")[1]  # every run, folded
    # sensitivity variants are not tasks here
    assert not any("sensitivity" in lab for lab in plot["labels"])
    assert "sensitivity:" not in head.split("</p>", 1)[1]
    assert "3 prompt-sensitivity variant runs" in res
    # Wilson intervals: never below 0 or above 1 (± 1.96 stderr gave 1.0 + 0 for the near-perfect model
    # and would have gone below 0 for the one-item runs); the axis is the fraction range
    assert (plot["low"] >= 0).all() and (plot["high"] <= 1).all()
    assert (plot["low"] <= plot["values"] + 1e-12).all() and (plot["values"] <= plot["high"] + 1e-12).all()
    assert plot["xlim"] == (0, 1)
    assert "95% Wilson" in res


def test_min_items_hides_small_rows_from_the_plot(mixed, tmp_path, plotted):
    text = build_report(tmp_path / "r.html", store_path=mixed, min_items=40).read_text()
    res = html_sections(text)["Evaluation results"]
    assert "5 rows with fewer than 40 items are not plotted" in res  # the 30-item arc_easy rows
    assert _results_plot(plotted)["labels"] == ["smollm2-135m[hf,float32,0-shot] / mmlu"]
    assert res.split("<details>")[0].count("<td>arc_easy</td>") == 5  # still in the table
    plotted.clear()
    res = CliRunner().invoke(__import__("sharpbench.cli.app", fromlist=["app"]).app,
                             ["report", "--store", str(mixed), "-o", str(tmp_path / "c.html"), "--min-items", "1000"])
    assert res.exit_code == 0, res.output
    page = html_sections((tmp_path / "c.html").read_text())["Evaluation results"]
    assert "6 rows with fewer than 1000 items are not plotted" in page
    assert not any(c["title"].startswith("acc per model and task group") for c in plotted)


def test_sensitivity_variants_are_not_models_or_tasks_in_matrix_sections(mixed, tmp_path):
    text = build_report(tmp_path / "r.html", store_path=mixed, n_boot=3).read_text()
    sec = html_sections(text)
    assert "Rank aggregation" in sec and "Skills by subject" in sec
    for title in ("Rank aggregation", "Skills by subject", "Per-subject results", "Calibration"):
        assert "sensitivity" not in sec[title] and "5-shot" not in sec[title], title
    assert "five-shot" in sec["Prompt sensitivity"]


def test_calibration_is_one_table_and_adaptive_intervals_are_readable(mixed, tmp_path):
    text = build_report(tmp_path / "r.html", store_path=mixed, n_boot=3).read_text()
    sec = html_sections(text)
    saved = sec["Calibration (saved)"]
    assert "65 saved calibration result(s)" in saved  # one per run
    # one table with every run, the largest first (30, 30, ..., then the 12-item variants, then one-item runs)
    assert saved.count("<table") == 1 and saved.count("<tr>") == 65 and "more calibration results" not in saved
    assert "57 of 65 have fewer than 10 items" in saved
    sizes = [int(x) for x in re.findall(r"</td>\s*<td>(\d+)</td>", saved)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 30 and sizes[-1] == 1
    assert "ECE binning: 15 uniform bins" in saved and "<th>binning</th>" not in saved
    live = sec["Calibration"]
    assert live.count("<table") == 1 and "pooled per model and task group" in live
    assert "smollm2-135m[hf,float32,0-shot] / mmlu" in live
    adaptive = sec["Adaptive testing"]
    assert "accuracy_ci (95% interval)" in adaptive and "0.412 – 0.552" in adaptive and "-0.170 – 0.994" in adaptive
    assert "0.5612345" not in adaptive and "[0.41" not in adaptive and "0.561" in adaptive


def test_one_item_subjects_do_not_flood_the_subject_heatmap(mixed, tmp_path):
    text = build_report(tmp_path / "r.html", store_path=mixed, n_boot=3).read_text()
    sub = html_sections(text)["Per-subject results"]
    assert "60 subject values; the heatmap shows 3 with at least 10 items" in sub
    head, folded = sub.split("<details>")
    assert "subject_00" not in head and "subject_00" in folded


def test_one_item_subjects_are_not_skills_or_benchmarks(mixed, tmp_path):
    text = build_report(tmp_path / "r.html", store_path=mixed, n_boot=3).read_text()
    sec = html_sections(text)
    for title in ("Skills by subject", "Rank aggregation"):
        assert "57 subject values with fewer than 10 items (57 items) are left out here" in sec[title], title
        assert "subject_0" not in sec[title], title
    assert "overflow-x: auto" in text  # a wide table scrolls inside its section, not the page


def test_subject_rows_all_below_the_threshold_are_listed_plainly(mixed, tmp_path):
    text = build_report(tmp_path / "r.html", store_path=mixed, n_boot=3, min_items=1000).read_text()
    sub = html_sections(text)["Per-subject results"]
    assert "No model × subject row has 1000 or more items" in sub
    assert "<details>" not in sub and "<td>subject_00</td>" in sub and "<td>algebra</td>" in sub


def test_store_with_only_sensitivity_runs(tmp_path):
    from report_helpers import _write_run

    from sharpbench.store import Store

    rng = np.random.default_rng(0)
    with Store(tmp_path / "s.duckdb") as store:
        for v in ("default", "no-space"):
            _write_run(store, rng, model="m", backend="hf", dtype="float32", task=f"sensitivity:mmlu:{v}", n=12,
                       skill=1.0, group="sensitivity:mmlu")
    sec = html_sections(build_report(tmp_path / "r.html", store_path=tmp_path / "s.duckdb").read_text())
    assert "Only prompt-sensitivity variant runs so far" in sec["Evaluation results"]
    assert set(sec) == {"Evaluation results"}
