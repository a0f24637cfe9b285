"""The elicitation study's HTML page: tables, comparisons, skipped notes, escaping, figures, a real browser.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` and pip's ``selenium`` (like
test_report_browser.py).
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path

import pytest
from report_helpers import NO_BROWSER, figure_attrs, html_sections

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "elicit"))  # the shared sample results
from elicit_samples import ODD_MODEL, SKIP_PROBE, SKIP_VARIANTS, TASKS, sample_result

from sharpbench.elicit.result import ElicitResult
from sharpbench.report.elicit_page import build_elicit_report, method_table
from sharpbench.report.figures import ReportError

METHODS = ["plain", "variants", "system-prompts", "direct", "cot", "self-consistency:8", "vote", "probe", "elicited"]


@pytest.fixture(scope="module")
def result() -> ElicitResult:
    return sample_result()


@pytest.fixture(scope="module")
def page(result, tmp_path_factory) -> str:
    out = build_elicit_report(result, tmp_path_factory.mktemp("el") / "elicit.html")
    return out.read_text(encoding="utf-8")


def _tables(block: str) -> list[list[list[str]]]:
    """Every <table> in ``block`` as rows of cell texts (header row first), unescaped."""
    out = []
    for t in re.findall(r"<table.*?</table>", block, flags=re.DOTALL):
        rows = re.findall(r"<tr.*?</tr>", t, flags=re.DOTALL)
        out.append([[html.unescape(re.sub(r"<.*?>", "", c).strip()).replace("\xa0", " ")
                     for c in re.findall(r"<t[hd].*?</t[hd]>", r, flags=re.DOTALL)] for r in rows])
    return out


def test_page_has_every_model_task_and_method(page, result):
    secs = html_sections(page)
    assert list(secs)[:6] == ["Summary", "Methods per model", "Ratio and model size", "Prompt variance",
                              "Cost and gain", "Comparisons"]
    assert [s for s in secs if s.startswith("Task: ")] == [f"Task: {t}" for t, *_ in TASKS]
    for task, *_ in TASKS:
        block = secs[f"Task: {task}"]
        for model in result.models:
            assert f"<h3>{html.escape(model)} " in block
        for table in _tables(block)[::2]:  # method table, then the folded arm table
            assert [r[0] for r in table[1:]] == METHODS
    summary = _tables(secs["Summary"])[0]
    assert summary[0] == ["model", "dtype", "task", "items", "plain [95% CI]", "elicited, held out [95% CI]",
                          "ratio elicited / plain [95% CI]", "best method", "prompt std / range",
                          "compute seconds"]
    assert {(r[0], r[2]) for r in summary[1:]} == {(c.model, c.task) for c in result.cells}
    assert len(summary) == 1 + len(result.cells)


def test_summary_rows_show_values_with_intervals(page, result):
    rows = {(r[0], r[2]): r[:1] + r[2:] for r in _tables(html_sections(page)["Summary"])[0][1:]}
    c = result.cell("qwen2.5-coder-1.5b-instruct", "gsm8k_cot")
    row = rows[(c.model, c.task)]
    assert row[2] == "100"
    assert row[3] == f"{c.plain:.3f} [{c.plain_low:.3f}, {c.plain_high:.3f}]"
    assert row[4] == f"{c.elicited:.3f} [{c.elicited_low:.3f}, {c.elicited_high:.3f}]"
    assert row[5] == f"{c.ratio:.2f} [{c.ratio_low:.2f}, {c.ratio_high:.2f}]"
    assert row[6] == "self-consistency:8"
    assert row[7] == f"{c.prompt_std:.3f} / {c.prompt_range:.3f}"
    assert c.seconds is not None and row[8] == f"{c.seconds:,.1f}"
    assert rows[("gemma-3-270m", "gsm8k_cot")][5] == "undefined (plain = 0)"


def test_held_out_is_explained_at_the_top(page):
    main = page.split("<main>", 1)[1]
    first = re.search(r"<section.*?</section>", main, flags=re.DOTALL).group(0)
    assert "chosen on one half of the items and scored on the other" in first
    assert first.index("Held out") < first.index("<table")


def test_method_tables_show_cost_next_to_gain_and_skipped_notes(page, result):
    cell = result.cell(ODD_MODEL, "gsm8k_cot")
    tab = method_table(result, cell)
    cols = list(tab.columns)
    assert cols == ["method", "score [95% CI]", "gain over plain [95% CI]", "arms", "best arm", "tokens",
                    "tokens / item", "seconds", "note"]
    rows = tab.set_index("method").replace("\xa0", " ", regex=True)
    assert rows.loc["probe", "score [95% CI]"] == "skipped" and rows.loc["probe", "note"] == SKIP_PROBE
    assert rows.loc["variants", "note"] == SKIP_VARIANTS and rows.loc["vote", "gain over plain [95% CI]"] == "–"
    sc = cell.method("self-consistency:8")
    assert rows.loc["self-consistency:8", "tokens"] == f"{sc.tokens:,}"
    assert rows.loc["self-consistency:8", "tokens / item"] == f"{round(sc.tokens / cell.n_items):,}"
    assert rows.loc["self-consistency:8", "gain over plain [95% CI]"].startswith(f"{sc.gain:+.3f} [")
    assert rows.loc["elicited", "score [95% CI]"].startswith(f"{cell.elicited:.3f}")
    assert "best of every prompt arm" in rows.loc["elicited", "note"]
    assert rows.loc["plain", "gain over plain [95% CI]"].startswith("0.000")
    # on the page: every skipped note, in the right task's section
    secs = html_sections(page)
    assert secs["Task: mmlu"].count(SKIP_PROBE) == 1 and SKIP_VARIANTS not in secs["Task: mmlu"]
    assert secs["Task: gsm8k_cot"].count(SKIP_VARIANTS) == 2 * 4 and SKIP_PROBE in secs["Task: gsm8k_cot"]
    assert "as a text preamble" in secs["Task: mmlu"] and "chat template" in secs["Task: mmlu"]


def test_comparisons_say_whether_the_interval_excludes_zero(page, result):
    table = _tables(html_sections(page)["Comparisons"])[0]
    assert table[0] == ["model", "task", "comparison", "difference [95% CI]", "interval excludes 0"]
    n = sum(len(c.comparisons) for c in result.cells)
    assert len(table) == 1 + n
    vote = [r for r in table[1:] if r[2] == "vote − best single prompt"]
    assert len(vote) == 8 and all(r[3] == "+0.004 [-0.021, +0.030]" for r in vote)
    assert all(r[4] == "no: the interval includes 0" for r in vote)
    probe = {(r[0], r[1]): r for r in table[1:] if r[2] == "probe − elicited"}
    for c in result.cells:
        x = next((x for x in c.comparisons if x.a == "probe"), None)
        if x is None:
            assert (c.model, c.task) not in probe
            continue
        want = "no: the interval includes 0" if not x.separated else (
            "yes: probe higher" if x.low > 0 else "yes: probe lower")
        assert probe[(c.model, c.task)][4] == want
    assert any(r[4].startswith("yes: probe higher") for r in probe.values())


def test_names_with_markup_characters_are_escaped(result, tmp_path):
    odd_task = ("agieval <en> & more", 80, 0.3, False, 300)
    r = sample_result(tasks=[odd_task])
    text = build_elicit_report(r, tmp_path / "e.html", title="Study <b>one</b> & two").read_text()
    assert "<fine-tune>" not in text and "<en>" not in text and "<b>one" not in text
    assert "my &lt;fine-tune&gt; &amp; co" in text
    assert "<h2>Task: agieval &lt;en&gt; &amp; more</h2>" in text
    assert "<title>Study &lt;b&gt;one&lt;/b&gt; &amp; two</title>" in text
    # figure titles and alt texts carry the name too: escaped in the page, read back as written
    assert "agieval <en> & more: held-out score per method" in [f["data-title"] for f in figure_attrs(text)]
    assert 'alt="agieval &lt;en&gt; &amp; more: held-out score' in text


def test_figures_are_embedded_and_labelled(page):
    figs = figure_attrs(page)
    assert len(figs) == 5
    assert all(f["data-title"] and f["data-xlabel"] and f["data-ylabel"] for f in figs)
    titles = " | ".join(f["data-title"] for f in figs)
    for want in ("held-out score per method", "gain over plain per method", "Elicited / plain score against model",
                 "std across prompt arms", "cost and gain per method"):
        assert want in titles
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "report references a network resource"
    assert "<script src" not in page


def test_settings_are_listed(page):
    rows = {r[0]: r[1] for r in _tables(html_sections(page)["Summary"])[1][1:]}
    assert rows["limit"] == "200" and rows["methods"].startswith("plain,variants")


def test_empty_result_and_missing_folder_fail_clearly(result, tmp_path):
    with pytest.raises(ReportError, match="run `sharpbench elicit` first"):
        build_elicit_report(ElicitResult(), tmp_path / "e.html")
    with pytest.raises(ReportError, match="does not exist"):
        build_elicit_report(result, tmp_path / "missing" / "e.html")
    assert not (tmp_path / "e.html").exists()


# --------------------------------------------------------------------------------------------- browser


@pytest.mark.slow
@NO_BROWSER
def test_elicit_report_renders_cleanly_in_chromium(browser, result, tmp_path):
    page = build_elicit_report(result, tmp_path / "elicit.html")
    browser.get(page.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    figs = browser.execute_script("""
        return Array.from(document.querySelectorAll('figure.plot')).map(f => {
          const img = f.querySelector('img');
          return {title: f.dataset.title, x: f.dataset.xlabel, y: f.dataset.ylabel, alt: img.alt,
                  ok: img.complete && img.naturalWidth > 0, w: img.getBoundingClientRect().width};
        });""")
    assert len(figs) == 5
    for f in figs:
        assert f["ok"] and f["w"] > 100, f
        assert f["alt"].strip() and f["title"] in f["alt"], f
        assert f["title"].strip() and f["x"].strip() and f["y"].strip(), f
    assert browser.execute_script("return Array.from(document.images).every(i => i.alt.trim().length > 0)")
    n_tables = browser.execute_script("return document.querySelectorAll('table.tbl').length")
    # summary + settings + comparisons + a method table per cell (+ its folded arm table)
    assert n_tables == 3 + 2 * len(result.cells)
    summary = browser.find_element("id", "summary")
    assert "chosen on one half of the items and scored on the other" in summary.text
    assert ODD_MODEL in summary.text  # escaped in the source, shown as written
    gsm = browser.find_element("id", "task--gsm8k-cot")
    assert SKIP_VARIANTS in gsm.text and SKIP_PROBE in gsm.text
    details = gsm.find_element("tag name", "details")
    assert details.get_attribute("open") is None  # arms folded away
    shot = tmp_path / "elicit.png"
    browser.save_screenshot(str(shot))
    from PIL import Image

    lo, hi = Image.open(shot).convert("L").getextrema()
    assert hi - lo > 100  # not a blank page
    import os

    keep = os.environ.get("SHARPBENCH_SCREENSHOTS")
    if keep:  # SHARPBENCH_SCREENSHOTS=dir keeps the screenshot for a person to look at
        shutil.copy(shot, keep)
