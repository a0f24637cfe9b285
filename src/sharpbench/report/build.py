"""Build the self-contained HTML report from a store and/or a response matrix."""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path

import numpy as np

from sharpbench.matrix import ResponseMatrix
from sharpbench.report.figures import ReportError
from sharpbench.report.sections import Section

__all__ = ["build_report", "render_report", "store_report_sections"]

EMPTY_STORE_HINT = (
    "The store is empty. Run an evaluation first, e.g. "
    "<code>sharpbench eval --model smollm2-135m --tasks arc_easy --limit 100</code>, then analyses such as "
    "<code>sharpbench irt fit</code> or <code>sharpbench calibration</code>, and build the report again; "
    "or build it from a response matrix with <code>sharpbench report --matrix m.csv -o report.html</code>."
)


def store_report_sections(store, *, min_items: int | None = None) -> list[Section]:
    """Sections for everything the store has data for (empty list for an empty store).

    ``min_items``: result/calibration rows (model x task group) pooling fewer items are listed
    but not plotted (default :data:`~sharpbench.report.store_sections.DEFAULT_MIN_ITEMS`).
    """
    from sharpbench.report.artifacts import artifact_sections
    from sharpbench.report.store_sections import (
        DEFAULT_MIN_ITEMS,
        calibration_section,
        results_section,
        subject_section,
    )

    if min_items is None:
        min_items = DEFAULT_MIN_ITEMS

    runs = store.runs()
    arts = store.artifacts()
    if runs.empty and not arts:
        return []
    out: list[Section] = []
    if not runs.empty:
        out.append(results_section(runs, min_items=min_items))
        items = store.items_frame()
        sec = subject_section(runs, items, min_items=min_items)
        if sec is not None:
            out.append(sec)
        cal = calibration_section(runs, store.choices_frame(), items, min_items=min_items)
        if cal is not None:
            out.append(cal)
        out.extend(_store_matrix_sections(store, runs, min_items))
    out.extend(artifact_sections(arts, min_items=min_items))
    return out


def _store_matrix_sections(store, runs, min_items: int = 10) -> list[Section]:
    """Skill slices and rank aggregation over the store's response matrix (3+ models, 2+ skill values).

    Prompt-sensitivity variant runs are left out: they are neither tasks nor models of their own.
    Skill values (e.g. subjects) with fewer than ``min_items`` items are left out too (a one-item MMLU
    subject is no benchmark to rank on), unless fewer than two values would remain.
    """
    from sharpbench.insight.skills import metadata_skill_columns
    from sharpbench.insight.stats import InsightError
    from sharpbench.matrix import MatrixError
    from sharpbench.report.sections import rank_section, skill_sections
    from sharpbench.report.store_sections import is_variant_run

    keep = runs.loc[~is_variant_run(runs), "run_id"].tolist()
    if not keep:
        return []
    try:
        matrix = store.response_matrix(runs=keep)
    except (RuntimeError, ValueError):
        return []
    if matrix.n_models < 3:
        return []
    cols = [c for c in metadata_skill_columns(matrix.item_meta) if matrix.item_meta[c].nunique() >= 2]
    if not cols:
        return []
    col = cols[0]
    sizes = matrix.item_meta[col].value_counts()
    big = set(sizes[sizes >= min_items].index)
    dropped = len(sizes) - len(big) if len(big) >= 2 else 0  # fewer than 2 left: keep them all, as before
    if dropped:
        matrix = matrix.select(items=np.flatnonzero(matrix.item_meta[col].isin(big).to_numpy()))
    try:
        bench = matrix.item_meta[col].dropna().astype(str)
        out = skill_sections(matrix, col) + [rank_section(matrix, bench, col)]
    except (InsightError, MatrixError):
        return []
    if dropped:
        note = (f'<p class="note">{dropped} {html.escape(col)} values with fewer than {min_items} items '
                f"({int(sizes[sizes < min_items].sum())} items) are left out here.</p>")
        for sec in out:
            sec.blocks.insert(0, note)
    return out


def render_report(sections: list[Section], *, title: str, subtitle: str) -> str:
    """Render the jinja2 template to one HTML string (no external resources)."""
    import jinja2

    from sharpbench import __version__
    from sharpbench.report.template import REPORT_TEMPLATE

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    tpl = env.from_string(REPORT_TEMPLATE)
    return tpl.render(
        title=title, subtitle=subtitle, sections=sections, version=__version__,
        generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), empty_hint=EMPTY_STORE_HINT,
    )


def build_report(
    output: str | Path,
    *,
    store_path: str | Path | None = None,
    matrix: ResponseMatrix | None = None,
    matrix_source: str = "matrix",
    title: str = "sharpbench report",
    n_boot: int = 30,
    min_items: int | None = None,
) -> Path:
    """Write the report to ``output``; data from a store, a matrix, or both.

    An empty (or missing-data) store yields a report that says what to run first.
    """
    if store_path is None and matrix is None:
        raise ReportError("nothing to report: pass --store sharpbench.duckdb or --matrix m.csv")
    sections: list[Section] = []
    parts = []
    if store_path is not None:
        from sharpbench.store import Store

        if not Path(store_path).exists():
            raise ReportError(f"no store at {store_path}: run `sharpbench eval` first, or pass --matrix m.csv")
        # one turn: every section sees the same state of a store that an eval may be writing
        with Store(store_path, read_only=True, shared=True) as store, store.session():
            sections.extend(store_report_sections(store, min_items=min_items))
        parts.append(f"store {Path(store_path).name}")
    if matrix is not None:
        from sharpbench.report.sections import matrix_sections

        sections.extend(matrix_sections(matrix, source=matrix_source, n_boot=n_boot))
        parts.append(f"matrix {matrix_source}")
    html_text = render_report(sections, title=title, subtitle=", ".join(parts))
    out = Path(output)
    if out.parent and not out.parent.exists():
        raise ReportError(f"output folder {out.parent} does not exist")
    out.write_text(html_text, encoding="utf-8")
    return out
