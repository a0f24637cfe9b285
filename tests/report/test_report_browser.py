"""The report in a real headless Chromium: renders, no console errors, every plot labelled.

Needs Debian's ``chromium`` and ``chromium-driver`` and pip's ``selenium``.
"""

from __future__ import annotations

import pytest
from report_helpers import NO_BROWSER, make_store, small_matrix

from sharpbench.report.build import build_report

pytestmark = [pytest.mark.slow, NO_BROWSER]


def _load(browser, path):
    browser.get(path.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _check_page(browser, path, shot):
    errors = _load(browser, path)
    assert errors == [], errors
    figs = browser.execute_script("""
        return Array.from(document.querySelectorAll('figure.plot')).map(f => {
          const img = f.querySelector('img');
          return {title: f.dataset.title, x: f.dataset.xlabel, y: f.dataset.ylabel, alt: img.alt,
                  ok: img.complete && img.naturalWidth > 0, w: img.getBoundingClientRect().width};
        });""")
    for f in figs:
        assert f["ok"] and f["w"] > 100, f
        assert f["title"].strip() and f["x"].strip() and f["y"].strip() and f["title"] in f["alt"], f
    browser.save_screenshot(str(shot))
    from PIL import Image

    lo, hi = Image.open(shot).convert("L").getextrema()
    assert hi - lo > 100  # not a blank page
    return figs


def test_console_errors_are_caught(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom')</script></body></html>")
    assert any("boom" in e["message"] for e in _load(browser, page))


def test_store_report_renders_cleanly(browser, tmp_path):
    store = make_store(tmp_path / "s.duckdb")
    page = build_report(tmp_path / "store.html", store_path=store)
    figs = _check_page(browser, page, tmp_path / "store.png")
    assert len(figs) >= 10


def test_matrix_and_empty_reports_render_cleanly(browser, tmp_path):
    page = build_report(tmp_path / "m.html", matrix=small_matrix(200), matrix_source="mmlu_pro", n_boot=3)
    assert len(_check_page(browser, page, tmp_path / "m.png")) >= 4
    from sharpbench.store import Store

    Store(tmp_path / "e.duckdb").close()
    page = build_report(tmp_path / "e.html", store_path=tmp_path / "e.duckdb")
    assert _check_page(browser, page, tmp_path / "e.png") == []
    assert "sharpbench eval" in browser.find_element("tag name", "main").text


def test_mixed_store_report_renders_cleanly(browser, tmp_path):
    """Issue #18: several backends/dtypes, 57 one-item runs, sensitivity variants, 65 calibration artifacts."""
    from report_helpers import make_mixed_store

    store = make_mixed_store(tmp_path / "mixed.duckdb")
    page = build_report(tmp_path / "mixed.html", store_path=store, n_boot=3)
    figs = _check_page(browser, page, tmp_path / "mixed.png")
    titles = [f["title"] for f in figs]
    assert "acc per model and task group (95% Wilson CI)" in titles
    assert not any("sensitivity:" in t for t in titles)
    # the results plot is one short figure (6 rows), not 65; the folded table of every run stays closed
    res = browser.find_element("id", "evaluation-results")
    img = res.find_element("css selector", "figure.plot img")
    assert img.size["height"] < 500, img.size
    details = res.find_element("tag name", "details")
    assert details.get_attribute("open") is None
    assert "mmlu_subject_00" not in res.text  # folded away
    cal = browser.find_element("id", "calibration--saved")
    assert len(cal.find_elements("tag name", "table")) == 1
    browser.execute_script("arguments[0].scrollIntoView()", res)
    browser.save_screenshot(str(tmp_path / "mixed-results.png"))
    import shutil as _sh

    keep = __import__("os").environ.get("SHARPBENCH_SCREENSHOTS")
    if keep:  # SHARPBENCH_SCREENSHOTS=dir keeps the screenshots for a person to look at
        for name in ("mixed.png", "mixed-results.png"):
            _sh.copy(tmp_path / name, keep)
