"""Build the self-contained HTML report from a store and/or a response matrix."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

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


def store_report_sections(store) -> list[Section]:
    """Sections for everything the store has data for (empty list for an empty store)."""
    from sharpbench.report.artifacts import artifact_sections
    from sharpbench.report.store_sections import (
        calibration_section,
        results_section,
        subject_section,
    )

    runs = store.runs()
    arts = store.artifacts()
    if runs.empty and not arts:
        return []
    out: list[Section] = []
    if not runs.empty:
        out.append(results_section(runs))
        items = store.items_frame()
        sec = subject_section(runs, items)
        if sec is not None:
            out.append(sec)
        cal = calibration_section(runs, store.choices_frame(), items)
        if cal is not None:
            out.append(cal)
        out.extend(_store_matrix_sections(store))
    out.extend(artifact_sections(arts))
    return out


def _store_matrix_sections(store) -> list[Section]:
    """Skill slices and rank aggregation over the store's response matrix (3+ models, 2+ skill values)."""
    from sharpbench.insight.skills import metadata_skill_columns
    from sharpbench.insight.stats import InsightError
    from sharpbench.matrix import MatrixError
    from sharpbench.report.sections import rank_section, skill_sections

    try:
        matrix = store.response_matrix()
    except (RuntimeError, ValueError):
        return []
    if matrix.n_models < 3:
        return []
    cols = [c for c in metadata_skill_columns(matrix.item_meta) if matrix.item_meta[c].nunique() >= 2]
    if not cols:
        return []
    try:
        bench = matrix.item_meta[cols[0]].dropna().astype(str)
        return skill_sections(matrix, cols[0]) + [rank_section(matrix, bench, cols[0])]
    except (InsightError, MatrixError):
        return []


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
            sections.extend(store_report_sections(store))
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
