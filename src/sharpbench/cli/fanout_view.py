"""``sharpbench eval --models FILE [--ray [ADDRESS]]``: progress and tables for a fan-out job."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sharpbench.cli.common import fail
from sharpbench.cli.eval_view import duration, report_table, write_output_json
from sharpbench.errors import EXIT_FAILURE, EXIT_INPUT, EXIT_INTERRUPTED


def run_many(console: Console, models_file: Path, tasks: str, *, ray: str | None, shard_size: int, retries: int,
             output_json: Path | None, exit_code: Callable[[Exception], int | None], **kw: Any) -> None:
    """Run :func:`sharpbench.engine.fanout.run_fanout` with a progress display; exit 1 if a shard failed."""
    from sharpbench.engine.fanout import read_models_file, run_fanout

    try:
        models = read_models_file(models_file)
    except (OSError, ValueError) as exc:
        raise fail(exc, EXIT_INPUT) from None
    view = _FanoutProgress(console, models)
    try:
        with view:
            report = run_fanout(models, tasks, ray=ray, shard_size=shard_size, retries=retries,
                                on_plan=view.plan, progress=view.shard_done, **kw)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: finished shards are stored; run the same command to resume[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        raise fail(exc, code) from None
    out = Console()
    for rep in report.reports:
        out.print(report_table(rep))
    if report.failures:
        table = Table(title=f"{len(report.failures)} shard(s) failed after {retries} retr{'y' if retries == 1 else 'ies'}")
        for col in ("shard", "items", "error"):
            table.add_column(col)
        for f in report.failures:
            table.add_row(escape(f.shard), str(f.n_items), escape(f.error))
        console.print(table)
    console.print(
        f"{len(models)} model(s), {report.n_shards} shard(s) on {report.executor} in {report.elapsed_s:.1f} s; "
        f"results in {kw['store']}",
        markup=False,
    )
    if output_json is not None:
        payload = {"reports": [r.to_dict() for r in report.reports],
                   "failures": [f.__dict__ for f in report.failures], "executor": report.executor}
        write_output_json(output_json, payload, kw["store"])
    if report.failures:
        console.print("[red]some shards failed[/red]: their items are not stored; rerun to retry only those")
        raise typer.Exit(EXIT_FAILURE)


class _FanoutProgress:
    """One rich display: an overall bar plus one bar per model; plain lines without a terminal."""

    def __init__(self, console: Console, models: list[str]) -> None:
        self.console = console
        self.models = models
        self._bar: Any = None
        self._ids: dict[str, Any] = {}
        self.done = self.total = 0
        self._t0 = time.monotonic()

    def __enter__(self) -> _FanoutProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def plan(self, todo_by_model: dict[str, int], n_reused: int, n_shards: int) -> None:
        n_todo = sum(todo_by_model.values())
        self.total = n_todo
        self._t0 = time.monotonic()
        if n_reused:
            self.console.print(f"{n_reused} items already in the store; {n_todo} to compute in {n_shards} shard(s)")
        if not n_todo or not self.console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("items"), TimeElapsedColumn(), console=self.console)
        self._bar.start()
        self._ids["*"] = self._bar.add_task(f"all ({n_shards} shards)", total=n_todo)
        for model, n in todo_by_model.items():
            self._ids[model] = self._bar.add_task(f"  {model}", total=n)

    def _rate_eta(self) -> str:
        """``", 2.4 items/s, ETA 1m05s"`` over the shards finished so far (logs have no bar)."""
        elapsed = time.monotonic() - self._t0
        if self.done <= 0 or elapsed <= 0:
            return ""
        rate = self.done / elapsed
        return f", {rate:.1f} items/s, ETA {duration(max(self.total - self.done, 0) / rate)}"

    def shard_done(self, key: str, n_ok: int, n_failed: int) -> None:
        self.done += n_ok + n_failed
        model = next((m for m in self.models if key.startswith(f"{m}/")), key)
        if self._bar is None:
            state = "failed" if n_failed else "stored"
            print(f"[sharpbench] {key}: {n_ok or n_failed} items {state} ({self.done}/{self.total}"
                  f"{self._rate_eta()})", file=sys.stderr, flush=True)
            return
        self._bar.update(self._ids[model], advance=n_ok + n_failed)
        self._bar.update(self._ids["*"], advance=n_ok + n_failed)
