"""What ``sharpbench eval`` shows: progress, lm-eval's result tables, warnings and the ``--output-json`` file.

Shared by the single-model run (:mod:`sharpbench.cli.eval_cmd`) and the
fan-out view (:mod:`sharpbench.cli.fanout_view`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sharpbench.cli.common import fail
from sharpbench.errors import EXIT_FAILURE

__all__ = [
    "groups_table", "print_generation_notes", "print_warnings", "report_table", "write_output_json", "Progress",
    "duration",
]

_LOWER_IS_BETTER = {"brier", "brier_score"}


def write_output_json(path: Path, payload: Any, store: Any) -> None:
    """Write ``--output-json``; if that fails the results are stored already: say so, exit 1."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    except OSError as exc:
        raise fail(
            f"cannot write --output-json {path}: {exc.strerror or exc}. The results are stored in {store}: "
            "run the same command with another --output-json to write the report (nothing is recomputed)",
            EXIT_FAILURE,
        ) from None


def print_warnings(console: Console, caught, categories) -> None:
    for w in caught:
        if issubclass(w.category, categories):
            console.print(f"[yellow]warning:[/yellow] {escape(str(w.message))}")


def print_generation_notes(console: Console, report) -> None:
    """Per generative task: generations that hit ``max_gen_toks`` and answers a filter could not extract (with examples)."""
    for t in report.tasks:
        g = t.generation or {}
        n = g.get("n_samples") or 0
        if not n:
            continue
        length = (g.get("stop_reasons") or {}).get("length", 0)
        if length:
            console.print(f"[yellow]note:[/yellow] {escape(t.task)}: {length} of {n} generations reached "
                          "max_gen_toks without a stop sequence (raise it with --gen-kwargs max_gen_toks=N)")
        for filt, (count, examples) in (g.get("unextracted") or {}).items():
            if count:
                ids = ", ".join(map(str, examples))
                console.print(f"[yellow]note:[/yellow] {escape(t.task)}: filter {escape(filt)} found no answer in "
                              f"{count} of {n} generations (e.g. items {ids}; `sharpbench results show RUN --item ID`)")


class Progress:
    """Rich progress bar on a terminal, plain 'N/M items stored' lines otherwise (logs, CI)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total = 0
        self.done = 0
        self._bar: Any = None
        self._task_id: Any = None
        self._t0 = time.monotonic()
        self.n_tokens = 0
        self._last_print = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def plan(self, n_todo: int, n_reused: int) -> None:
        self.total = n_todo
        if n_reused:
            self.console.print(f"{n_reused} items already in the store; {n_todo} to compute")
        self._t0 = time.monotonic()
        if not n_todo:
            return
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("items"), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self._bar.start()
            self._task_id = self._bar.add_task("scoring", total=n_todo, rate="")

    def tokens(self, n: int) -> None:
        """Count generated tokens (generative tasks): the bar shows tokens/s next to items/s."""
        self.n_tokens += n
        now = time.monotonic()
        if self._bar is not None and now - self._last_print > 0.5:
            self._last_print = now
            self._bar.update(self._task_id, rate=self._rate_text())

    def _rate_text(self) -> str:
        elapsed = time.monotonic() - self._t0
        parts = []
        speed = self._bar.tasks[0].speed if self._bar is not None else None
        if speed:
            parts.append(f"{speed:.1f} items/s")
        if self.n_tokens and elapsed > 0:
            parts.append(f"{self.n_tokens / elapsed:.1f} tok/s")
        return ", ".join(parts)

    def advance(self, n: int, task: str) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task_id, advance=n, description=task)
            self._bar.update(self._task_id, rate=self._rate_text())
        else:
            print(f"[sharpbench] {task}: {self.done}/{self.total} items stored{self.rate_eta()}",
                  file=sys.stderr, flush=True)

    def rate_eta(self) -> str:
        """``" (2.4 items/s, ETA 1m05s)"`` from the items scored since :meth:`plan` (logs have no bar)."""
        elapsed = time.monotonic() - self._t0
        if self.done <= 0 or elapsed <= 0:
            return ""
        rate = self.done / elapsed
        left = max(self.total - self.done, 0) / rate
        toks = f", {self.n_tokens / elapsed:.1f} tok/s" if self.n_tokens else ""
        return f" ({rate:.1f} items/s{toks}, ETA {duration(left)})"


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or x != x:  # NaN
        return "N/A"
    return f"{x:.{digits}f}"


def _metric_rows(metrics: dict) -> list[tuple[str, str, str, str, str]]:
    """(filter, metric, arrow, value, stderr) per metric; ``"exact_match,strict-match"`` -> filter ``strict-match``."""
    rows = []
    for key, (value, stderr) in metrics.items():
        name, _, filt = key.partition(",")
        arrow = "↓" if name in _LOWER_IS_BETTER else "↑"
        rows.append((filt or "none", name, arrow, _fmt(value), _fmt(stderr)))
    return rows


def report_table(report) -> Table:
    """lm-eval's results table: Tasks | Version | Filter | n-shot | Metric | | Value | ± | Stderr."""
    table = Table(title=escape(f"{report.model_id} ({report.dtype})"), show_lines=False)
    for col in ("Tasks", "Version", "Filter", "n-shot", "Metric", "", "Value", "", "Stderr"):
        table.add_column(col, justify="right" if col in ("Value", "Stderr", "n-shot") else "left")
    grouped: dict[str | None, list] = {}
    for t in report.tasks:
        grouped.setdefault(t.group, []).append(t)
    groups = {g.group: g for g in report.groups}
    for group, members in grouped.items():
        if group is not None and group in groups:
            g = groups[group]
            for i, (f, m, arrow, v, se) in enumerate(_metric_rows(g.metrics)):
                table.add_row(escape(group) if i == 0 else "", "", escape(f),
                              str(g.num_fewshot) if i == 0 else "", m, arrow, v, "±", se)
        for t in members:
            name = escape(f" - {t.task}" if group is not None else t.task)
            for i, (f, m, arrow, v, se) in enumerate(_metric_rows(t.metrics)):
                first = i == 0
                table.add_row(name if first else "", (t.version or "") if first else "",
                              escape(f), str(t.num_fewshot) if first else "",
                              m, arrow, v, "±", se)
    return table


def groups_table(report) -> Table:
    """lm-eval's second table: one row per group metric."""
    table = Table(title="Groups")
    for col in ("Groups", "Version", "Filter", "n-shot", "Metric", "", "Value", "", "Stderr"):
        table.add_column(col, justify="right" if col in ("Value", "Stderr", "n-shot") else "left")
    for g in report.groups:
        for i, (f, m, arrow, v, se) in enumerate(_metric_rows(g.metrics)):
            table.add_row(escape(g.group) if i == 0 else "", "", escape(f),
                          str(g.num_fewshot) if i == 0 else "", m, arrow, v, "±", se)
    return table
