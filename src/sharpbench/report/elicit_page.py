"""The HTML report of an elicitation study (``sharpbench elicit --report``): tables, comparisons, figures.

Built on the report package's machinery: :class:`~sharpbench.report.sections.Section`,
:func:`~sharpbench.report.sections.table_html` (escaped tables),
:func:`~sharpbench.report.figures.figure_html` (embedded, labelled PNGs) and
:func:`~sharpbench.report.build.render_report` (the one page template).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from sharpbench.elicit.plots import (
    cell_method,
    cost_vs_gain,
    method_columns,
    method_heatmap,
    prompt_variance,
    ratio_vs_size,
)
from sharpbench.elicit.result import CellResult, Comparison, ElicitResult, MethodScore
from sharpbench.report.figures import ReportError, figure_html
from sharpbench.report.sections import Section, table_html

__all__ = [
    "HELD_OUT_NOTE",
    "arm_table",
    "build_elicit_report",
    "comparison_table",
    "elicit_sections",
    "method_table",
    "summary_table",
]

HELD_OUT_NOTE = (
    "<b>Held out</b> means chosen on one half of the items and scored on the other. A method with several "
    "prompts (variants, system messages) picks its best prompt on one half and is scored on the other, both "
    "ways round, over repeated random splits; the probe is trained and scored the same way; <i>elicited</i> is "
    "the best of every prompt arm, chosen held out too. So no score here was picked on the items it is scored "
    "on. Scores are fractions of items correct; <i>gain</i> = score − plain; <i>ratio</i> = elicited / plain "
    "(undefined when plain is 0); intervals: 95% bootstrap over items, paired within a model and task."
)

_DASH = "–"
_NBSP = "\u00a0"  # an interval never wraps inside a table cell


# --------------------------------------------------------------------------------------------- formatting


def _num(v: float | None, digits: int = 3, sign: bool = False) -> str:
    if v is None:
        return _DASH
    r = round(float(v), digits) + 0.0  # no "-0.000"
    return f"{r:+.{digits}f}" if sign and r != 0 else f"{r:.{digits}f}"


def _iv(v: float | None, lo: float | None, hi: float | None, digits: int = 3, sign: bool = False) -> str:
    """``0.512 [0.471, 0.553]`` (non-breaking spaces); the value alone when the interval is unknown; a dash for ``None``."""
    if v is None:
        return _DASH
    if lo is None or hi is None:
        return _num(v, digits, sign)
    return f"{_num(v, digits, sign)}{_NBSP}[{_num(lo, digits, sign)},{_NBSP}{_num(hi, digits, sign)}]"


def _int(v: int | None) -> str:
    return _DASH if not v else f"{int(v):,}"


def _seconds(v: float | None) -> str:
    return _DASH if v is None else f"{v:,.1f}"


# --------------------------------------------------------------------------------------------- tables


def summary_table(result: ElicitResult) -> pd.DataFrame:
    """One row per model x task: items, plain, elicited, ratio (with intervals), best method, prompt spread."""
    rows = []
    for c in result.cells:
        rows.append({
            "model": c.model, "task": c.task, "items": c.n_items,
            "plain [95% CI]": _iv(c.plain, c.plain_low, c.plain_high),
            "elicited, held out [95% CI]": _iv(c.elicited, c.elicited_low, c.elicited_high),
            "ratio elicited / plain [95% CI]": (_iv(c.ratio, c.ratio_low, c.ratio_high, 2) if c.ratio is not None
                                                else "undefined (plain = 0)"),
            "best method": c.best_method or _DASH,
            "prompt std / range": f"{_num(c.prompt_std)} / {_num(c.prompt_range)}",
        })
    return pd.DataFrame(rows)


def _method_row(cell: CellResult, m: MethodScore) -> dict[str, str]:
    note = m.note or ""
    if m.method == "elicited" and cell.method("elicited") is None:
        note = note or f"best of every prompt arm, held out (best: {cell.best_method})"
    return {
        "method": m.method,
        "score [95% CI]": "skipped" if m.skipped else _iv(m.score, m.low, m.high),
        "gain over plain [95% CI]": _DASH if m.skipped else _iv(m.gain, m.gain_low, m.gain_high, sign=True),
        "arms": str(m.n_arms) if m.n_arms else _DASH,
        "best arm": m.best_arm or _DASH,
        "tokens": _int(m.tokens),
        "tokens / item": _int(round(m.tokens / cell.n_items)) if m.tokens and cell.n_items else _DASH,
        "seconds": _seconds(m.seconds),
        "note": note,
    }


def method_table(result: ElicitResult, cell: CellResult) -> pd.DataFrame:
    """One row per method of a cell, in :data:`~sharpbench.elicit.plots.METHOD_ORDER`; cost next to gain."""
    rows = []
    for name in method_columns(result):
        m = cell_method(cell, name)
        if m is not None:
            rows.append(_method_row(cell, m))
    return pd.DataFrame(rows)


def arm_table(cell: CellResult) -> pd.DataFrame:
    """Every arm of a cell: its accuracy on all items (not held out), tokens and time."""
    return pd.DataFrame([{
        "method": a.method, "arm": a.arm, "accuracy (all items)": _num(a.accuracy), "items": a.n_items,
        "tokens": _int(a.tokens), "seconds": _seconds(a.seconds),
    } for a in cell.arms])


def _verdict(x: Comparison) -> str:
    if not x.separated:
        return "no: the interval includes 0"
    return f"yes: {x.a} {'higher' if x.low > 0 else 'lower'}"


def comparison_table(result: ElicitResult) -> pd.DataFrame:
    """Every paired comparison (e.g. vote vs best single prompt, probe vs elicited) of every cell."""
    return pd.DataFrame([{
        "model": c.model, "task": c.task, "comparison": f"{x.a} − {x.b}",
        "difference [95% CI]": _iv(x.diff, x.low, x.high, sign=True), "interval excludes 0": _verdict(x),
    } for c in result.cells for x in c.comparisons])


# --------------------------------------------------------------------------------------------- sections


def elicit_sections(result: ElicitResult) -> list[Section]:
    """The report's sections: summary, figures, comparisons, then one section per task."""
    if not result.cells:
        raise ReportError("nothing to report: the elicitation result has no model x task cells; "
                          "run `sharpbench elicit` first")
    out = []
    summary = Section("Summary", HELD_OUT_NOTE)
    summary.blocks.append(table_html(summary_table(result), max_rows=10_000, index=False))
    if result.settings:
        settings = pd.DataFrame([{"setting": k, "value": v if isinstance(v, str) else json.dumps(v, default=str)}
                                 for k, v in result.settings.items()])
        summary.blocks.append("<h3>Settings</h3>" + table_html(settings, max_rows=200, index=False))
    out.append(summary)

    heat = Section("Methods per model", "Held-out score and gain over the plain prompt of every method, per "
                   "model and task. Grey: the method was skipped (the task tables say why); white: not run.")
    heat.blocks.append(figure_html(method_heatmap(result, "score"), "Held-out score per method."))
    heat.blocks.append(figure_html(method_heatmap(result, "gain"), "Gain over plain per method."))
    out.append(heat)

    size = Section("Ratio and model size", "Held-out elicited score divided by the plain score, against the "
                   "number of parameters. Filled markers: instruct models (chat template); hollow: base models. "
                   "A handful of models is a handful of points: read a trend with care.")
    size.blocks.append(figure_html(ratio_vs_size(result), "Elicited / plain with 95% intervals, per task."))
    out.append(size)

    var = Section("Prompt variance", "How much accuracy moves with the way of asking: standard deviation and "
                  "range of accuracy across the prompt arms (variants, system prompts, direct, chain of thought).")
    var.blocks.append(figure_html(prompt_variance(result), "Std and range across prompt arms, per model and task."))
    out.append(var)

    cost = Section("Cost and gain", "What each method costs (tokens the model processed per item) against what "
                   "it gains over the plain prompt. The task tables below list tokens and seconds next to each "
                   "gain.")
    cost.blocks.append(figure_html(cost_vs_gain(result), "Tokens per item (log scale) against gain, per task."))
    out.append(cost)

    comp = Section("Comparisons", "Paired differences a − b with 95% intervals: does the majority vote over "
                   "prompt variants beat the best single prompt, does the probe read out more than any prompt "
                   "elicits? Only an interval that excludes 0 separates the two.")
    tab = comparison_table(result)
    comp.blocks.append(table_html(tab, max_rows=10_000, index=False) if len(tab)
                       else '<p class="note">No comparisons in this result.</p>')
    out.append(comp)

    for task in result.tasks:
        sec = Section(f"Task: {task}", "Per model: every method's held-out score and gain, its arms, and what it "
                      "cost (tokens processed, seconds of wall time when computed in this run). <i>Best arm</i> is "
                      "the arm chosen on all items, for information; the held-out score does not use it.")
        for c in (c for c in result.cells if c.task == task):
            sec.blocks.append(f"<h3>{html.escape(c.model)} <span class=\"note\">({c.n_items} items)</span></h3>")
            sec.blocks.append(table_html(method_table(result, c), max_rows=10_000, index=False))
            if c.arms:
                sec.blocks.append(f"<details><summary>Every arm ({len(c.arms)}), accuracy on all items</summary>"
                                  + table_html(arm_table(c), max_rows=10_000, index=False) + "</details>")
        out.append(sec)
    return out


def build_elicit_report(result: ElicitResult, path: str | Path, *, title: str | None = None) -> Path:
    """Write the study's report to ``path``: one self-contained HTML file (figures embedded).

    Parameters
    ----------
    result
        The study (see :class:`~sharpbench.elicit.result.ElicitResult`).
    path
        The HTML file to write; its folder must exist.
    title
        The page title (default "sharpbench elicitation study").

    Returns
    -------
    Path
        ``path``.
    """
    from sharpbench.report.build import render_report

    out = Path(path)
    if not out.parent.exists():
        raise ReportError(f"output folder {out.parent} does not exist")
    sections = elicit_sections(result)
    subtitle = (f"elicitation study: {len(result.models)} model{'s' * (len(result.models) != 1)} x "
                f"{len(result.tasks)} task{'s' * (len(result.tasks) != 1)}")
    text = render_report(sections, title=title or "sharpbench elicitation study", subtitle=subtitle)
    out.write_text(text, encoding="utf-8")
    return out
