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
    cost_vs_gain,
    method_heatmap,
    prompt_variance,
    ratio_vs_size,
)
from sharpbench.elicit.result import ElicitResult
from sharpbench.report.elicit_tables import (  # re-exported: the page's public tables
    arm_table,
    comparison_table,
    method_table,
    summary_table,
)
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
                   "elicits, and more than the answer prior (the answer most often right in the training half)? "
                   "Only an interval that excludes 0 separates the two.")
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
