"""`sharpbench elicit` from the command line: tables, the HTML report, the JSON result and input errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from sharpbench.elicit.result import ElicitResult
from sharpbench.errors import EXIT_INPUT


def _elicit(*args: str, timeout: int = 900):
    env = {**os.environ, "COLUMNS": "220", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sharpbench", "elicit", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.mark.slow
def test_elicit_writes_tables_report_and_json(tmp_path):
    store, report, out = tmp_path / "s.duckdb", tmp_path / "e.html", tmp_path / "e.json"
    res = _elicit("-m", "smollm2-135m", "-t", "arc_challenge", "--limit", "12", "--methods",
                  "plain,variants,system-prompts,probe", "--variants", "labels", "--n-boot", "100",
                  "--n-splits", "5", "--store", str(store), "--report", str(report), "--output-json", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "elicited / plain" in res.stdout and "system-prompts" in res.stdout and "probe" in res.stdout
    result = ElicitResult.load(out)
    cell = result.cell("smollm2-135m", "arc_challenge")
    assert cell.n_items == 12 and len(cell.arms[0].correct) == 12  # per-item answers kept in the JSON
    html = report.read_text()
    assert "<img" in html and "arc_challenge" in html
    import sharpbench as sb

    with sb.Store(store) as st:
        assert st.artifacts("elicit")  # the summary is kept in the store
        assert st.artifacts("elicit-probe")  # and the probe's per-item result, for reruns
        from sharpbench.report.artifacts import artifact_sections

        titles = [s.title for s in artifact_sections(st.artifacts())]
    assert "Elicitation studies" in titles and not any("probe" in t.lower() for t in titles)
    # the same study again from the store, as JSON (the result plus its per-method rows) and as CSV (those rows)
    same = ("-m", "smollm2-135m", "-t", "arc_challenge", "--limit", "12", "--methods",
            "plain,variants,system-prompts,probe", "--variants", "labels", "--n-boot", "100", "--n-splits", "5",
            "--store", str(store))
    doc = json.loads(_elicit(*same, "--format", "json").stdout)
    assert {"settings", "cells", "rows"} <= set(doc)
    assert {r["method"] for r in doc["rows"]} >= {"plain", "variants", "system-prompts", "probe"}
    rows = list(csv.DictReader(io.StringIO(_elicit(*same, "--format", "csv").stdout)))
    assert [r["method"] for r in rows] == [r["method"] for r in doc["rows"]]
    assert float(rows[0]["score"]) == doc["rows"][0]["score"]  # full precision
    assert {r["dtype"] for r in doc["rows"]} == {"float32"}
    # read back, not recomputed: each method's cost is the one the first call measured (kept in the store)
    plain = next(r for r in doc["rows"] if r["method"] == "plain")
    assert plain["seconds"] and plain["seconds"] > 0
    # the vote saved apart, combined with the first call's JSON: the numbers of one call with every method
    more, merged = tmp_path / "vote.json", tmp_path / "merged.json"
    base = same[:6] + same[8:]  # without the methods
    assert _elicit(*base, "--methods", "plain,variants,vote", "--output-json", str(more)).returncode == 0
    res = _elicit("--from-json", str(out), "--from-json", str(more), "--output-json", str(merged),
                  "--report", str(tmp_path / "merged.html"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "elicited / plain" in res.stdout and (tmp_path / "merged.html").exists()
    one = json.loads(_elicit(*base, "--methods", "plain,variants,system-prompts,vote,probe",
                             "--format", "json").stdout)["cells"][0]
    both = ElicitResult.load(merged).cells[0]
    assert [m.method for m in both.methods] == [m["method"] for m in one["methods"]]
    assert [m.score for m in both.methods] == [m["score"] for m in one["methods"]]
    assert (both.elicited, both.ratio) == (one["elicited"], one["ratio"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["-m", "smollm2-135m", "--methods", "plain,telepathy"], "unknown method 'telepathy'"),
        (["-m", "smollm2-135m", "-t", "piqa"], "elicit does not know task 'piqa'"),
        ([], "give a model"),
        (["-m", "smollm2-135m", "--limit", "3"], "greater than or equal to 10"),
        (["-m", "smollm2-135m", "--methods", "self-consistency:x"], "integer K"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    res = _elicit(*args, "--store", str(tmp_path / "s.duckdb"), timeout=120)
    assert res.returncode == EXIT_INPUT, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_from_json_needs_saved_results_and_no_model(tmp_path):
    res = _elicit("--from-json", str(tmp_path / "nope.json"), timeout=120)
    assert res.returncode == EXIT_INPUT and "no saved result at" in res.stderr
    (tmp_path / "bad.json").write_text('{"cells": [{"model": "m"}]}')
    res = _elicit("--from-json", str(tmp_path / "bad.json"), timeout=120)
    assert res.returncode == EXIT_INPUT and "is not a saved elicitation result" in res.stderr
    assert "Traceback" not in res.stderr
    res = _elicit("--from-json", str(tmp_path / "bad.json"), "-m", "smollm2-135m", timeout=120)
    assert res.returncode == EXIT_INPUT and "in another call" in res.stderr


def test_models_file_must_exist(tmp_path):
    res = _elicit("--models", str(tmp_path / "nope.txt"), timeout=120)
    assert res.returncode == EXIT_INPUT and "does not exist" in res.stderr
    (tmp_path / "m.txt").write_text("smollm2-135m\nsmollm2-135m\n")
    res = _elicit("--models", str(tmp_path / "m.txt"), timeout=120)
    assert res.returncode == EXIT_INPUT and "more than once" in res.stderr


def test_cross_model_study_prints_the_ratio_by_model_and_task():
    """Saved cells of two models on two tasks, three of the four present: the pivot shows each cell's ratio
    with its interval, '-' where a model was not run, and marks the ratios whose interval excludes 1."""
    from pathlib import Path

    cells = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    files = [cells / "elicit_cells" / f for f in ("smollm2-135m__arc_challenge.json", "smollm2-135m__mmlu.json",
                                                  "qwen2.5-coder-0.5b__arc_challenge.json")]
    files.append(cells / "elicit_study_bf16_q15_arc.json")  # Qwen2.5-Coder-1.5B, ARC only
    res = _elicit(*[a for f in files for a in ("--from-json", str(f))], timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "elicited / plain by model and task" in out
    pivot = out.split("elicited / plain by model and task")[1].split("└")[0]  # that table alone
    saved = {(c.model, c.task): c for f in files for c in ElicitResult.load(f).cells}
    lines = {ln.split("│")[1].strip(): ln for ln in pivot.splitlines() if ln.count("│") == 4}
    assert set(lines) == {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}
    for (m, t), c in saved.items():
        text = f"{c.ratio:.2f} [{c.ratio_low:.2f}, {c.ratio_high:.2f}]"
        assert text in lines[m], (m, t, lines[m])
    assert "1.48 [1.27, 1.81] *" in lines["qwen2.5-coder-1.5b"]  # the one cell whose interval excludes 1
    assert "- " in lines["qwen2.5-coder-1.5b"].split("*")[1]  # its MMLU was not given
    assert " *" not in lines["smollm2-135m"]


def test_method_notes_print_in_full_as_footnotes_under_the_table():
    """Each method's note is a numbered line under its cell's table, whole even on an 80-column terminal,
    and the method carries the number; the table itself has no note column to squeeze the scores."""
    from pathlib import Path

    f = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "elicit_cells" / \
        "qwen2.5-coder-0.5b__agieval_en.json"
    cell = ElicitResult.load(f).cells[0]
    notes = list(dict.fromkeys(r.note for r in cell.methods if r.note))
    assert len(notes) >= 3
    env = {**os.environ, "COLUMNS": "80"}
    res = subprocess.run([sys.executable, "-m", "sharpbench", "elicit", "--from-json", str(f)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    for i, text in enumerate(notes, 1):
        assert f"  [{i}] {text}" in lines, text
    header = next(ln for ln in lines if "method" in ln and "score" in ln)
    assert "note" not in header
    probe = next(r for r in cell.methods if r.method == "probe")
    assert any(f"probe [{notes.index(probe.note) + 1}]" in ln for ln in lines)
