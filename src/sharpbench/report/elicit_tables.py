"""The tables of an elicitation study (summary, methods, arms, comparisons) as DataFrames of formatted cells.

Shared by the study's own page (:mod:`sharpbench.report.elicit_page`) and the
store report's "Elicitation studies" section (:mod:`sharpbench.report.artifacts`).
"""

from __future__ import annotations

import pandas as pd

from sharpbench.elicit.plots import cell_method, method_columns
from sharpbench.elicit.result import CellResult, Comparison, ElicitResult, MethodScore

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
    """One row per model x task: items, plain, elicited, ratio (with intervals), best method, prompt spread,
    compute time."""
    rows = []
    for c in result.cells:
        rows.append({
            "model": c.model, "dtype": c.dtype or _DASH, "task": c.task, "items": c.n_items,
            "plain [95% CI]": _iv(c.plain, c.plain_low, c.plain_high),
            "elicited, held out [95% CI]": _iv(c.elicited, c.elicited_low, c.elicited_high),
            "ratio elicited / plain [95% CI]": (_iv(c.ratio, c.ratio_low, c.ratio_high, 2) if c.ratio is not None
                                                else "undefined (plain = 0)"),
            "best method": c.best_method or _DASH,
            "prompt std / range": f"{_num(c.prompt_std)} / {_num(c.prompt_range)}",
            "compute seconds": _seconds(c.seconds),
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
