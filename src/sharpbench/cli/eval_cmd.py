"""CLI command ``sharpbench eval``: run tasks on a model, store every answer, print lm-eval's table."""

from __future__ import annotations

import json
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sharpbench.cli.common import fail

# Exit codes: 1 runtime failure (store, data, model), 2 bad input (unknown names, bad options),
# 130 interrupted by Ctrl-C or SIGTERM (whole items are stored; rerun to resume).
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

_LOWER_IS_BETTER = {"brier", "brier_score"}


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the main app."""
    app.command("eval")(eval_command)


def eval_command(
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="Packaged short name, local path or hub id."),
    tasks: str = typer.Option("piqa", "--tasks", "-t", help="Comma-separated tasks / groups / task files."),
    limit: Optional[int] = typer.Option(None, "--limit", "-l", min=1, help="Only the first N documents of each task."),
    num_fewshot: Optional[int] = typer.Option(None, "--num-fewshot", "-k", min=0, help="Few-shot examples per prompt."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | bfloat16 | float16."),
    batch_size: int = typer.Option(
        16, "--batch-size", "-b", min=1, help="Items per forward batch (also items per store transaction)."
    ),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda (default: the backend's choice)."),
    store: Path = typer.Option(Path("sharpbench.duckdb"), "--store", "-s", help="DuckDB result store."),
    backend: str = typer.Option("hf", "--backend", help="Model backend: hf | llamacpp | openai."),
    model_arg: list[str] = typer.Option(
        [], "--model-arg", "-M",
        help="Backend option KEY=VALUE, repeatable (openai: base_url=..., tokenizer=..., max_concurrency=8).",
    ),
    no_prefix_cache: bool = typer.Option(
        False, "--no-prefix-cache",
        help="hf: compute every context in full (the plain path) instead of each shared prefix once.",
    ),
    prefix_cache_mb: Optional[int] = typer.Option(
        None, "--prefix-cache-mb", min=0,
        help="hf: memory for prefix states kept between batches (default: 1/8 of free memory, at most 4096).",
    ),
    model_args: Optional[str] = typer.Option(
        None, "--model-args",
        help="lm-eval style, comma-separated: pretrained=NAME,dtype=auto,device_map=auto,peft=ADAPTER_DIR,"
        "trust_remote_code=true,max_length=N (hf backend; pretrained replaces --model, dtype --dtype).",
    ),
    models_file: Optional[Path] = typer.Option(
        None, "--models", help="File with one model per line: evaluate them all (sharded, see --ray)."
    ),
    ray: Optional[str] = typer.Option(
        None, "--ray", metavar="[ADDRESS]",
        help="With --models: one Ray task per (model, task shard); --ray alone starts/joins a local cluster.",
    ),
    shard_size: int = typer.Option(100, "--shard-size", min=1, help="Items per shard with --models."),
    retries: int = typer.Option(1, "--retries", min=0, help="Extra attempts of a failed shard with --models."),
    output_json: Optional[Path] = typer.Option(None, "--output-json", "-o", help="Also write the report as JSON."),
) -> None:
    """Evaluate a model on multiple-choice tasks; results are stored per item and reused."""
    from sharpbench.data.errors import DataQualityWarning
    from sharpbench.engine.pipeline import (
        ChangedItemsWarning,
        ContextTooLongWarning,
        EvalInterrupted,
        run_eval,
    )

    console = Console(stderr=True, soft_wrap=True)
    try:
        model_kwargs = parse_model_args(model_arg)
        if model_args is not None:
            from sharpbench.models.model_args import parse_lmeval_model_args, resolve_model_args

            model, dtype, device, extra = resolve_model_args(
                parse_lmeval_model_args(model_args), model=model, dtype=dtype, device=device)
            model_kwargs.update(extra)
    except ValueError as exc:
        raise fail(exc, EXIT_USAGE) from None
    if no_prefix_cache or prefix_cache_mb is not None:
        if backend != "hf":
            raise fail("--no-prefix-cache / --prefix-cache-mb apply to the hf backend", EXIT_USAGE)
        if no_prefix_cache:
            model_kwargs["prefix_cache"] = False
        if prefix_cache_mb is not None:
            model_kwargs["prefix_cache_mb"] = prefix_cache_mb
    if ray is not None and models_file is None:
        raise fail("--ray fans out over --models FILE; give the models file", EXIT_USAGE)
    if models_file is not None:
        from sharpbench.cli.fanout_view import run_many

        with sigterm_as_interrupt():
            run_many(console, models_file, tasks, limit=limit, num_fewshot=num_fewshot, dtype=dtype,
                     batch_size=batch_size, device=device, backend=backend, store=store, ray=ray,
                     shard_size=shard_size, retries=retries, model_kwargs=model_kwargs, output_json=output_json,
                     exit_code=_exit_code)
        return
    progress = _Progress(console)
    try:
        with warnings.catch_warnings(record=True) as caught, sigterm_as_interrupt():
            warnings.simplefilter("always", ContextTooLongWarning)
            warnings.simplefilter("always", ChangedItemsWarning)
            warnings.simplefilter("always", DataQualityWarning)
            with progress:
                report = run_eval(
                    model, tasks, limit=limit, num_fewshot=num_fewshot, dtype=dtype,
                    batch_size=batch_size, device=device, backend=backend, store=store,
                    progress=progress.advance, on_plan=progress.plan, model_kwargs=model_kwargs,
                )
    except EvalInterrupted as exc:
        console.print(f"[yellow]{escape(str(exc))}[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted before any item was scored[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # translated to one clear line; no traceback for expected failures
        code = _exit_code(exc)
        if code is None:
            raise
        _print_warnings(console, caught, (DataQualityWarning,))
        raise fail(exc, code) from None
    _print_warnings(console, caught, (ContextTooLongWarning, ChangedItemsWarning, DataQualityWarning))
    out = Console()
    out.print(report_table(report))
    if report.groups:
        out.print(groups_table(report))
    rate = report.n_computed / report.elapsed_s if report.elapsed_s > 0 else 0.0
    console.print(
        f"{report.model_id} ({report.backend}, {report.dtype}, fingerprint {report.fingerprint[:16]}): "
        f"{report.n_computed} items computed, {sum(t.n_reused for t in report.tasks)} reused from "
        f"{report.store} in {report.elapsed_s:.1f} s ({rate:.1f} items/s)"
        + (f"; {report.n_changed} of the computed items had changed since they were stored"
           if report.n_changed else ""),
        markup=False,
    )
    if output_json is not None:
        write_output_json(output_json, report.to_dict(), report.store)


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


@contextmanager
def sigterm_as_interrupt():
    """Within the block SIGTERM (``kill PID``, a job scheduler, ``docker stop``) acts as Ctrl-C.

    The first SIGTERM raises ``KeyboardInterrupt`` where the program is, so the
    run stores its whole items, marks itself interrupted and exits 130; later
    ones are ignored while that clean-up runs. Outside the main thread (no
    signal handlers there) the block does nothing.
    """
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_warnings(console: Console, caught, categories) -> None:
    from rich.markup import escape

    for w in caught:
        if issubclass(w.category, categories):
            console.print(f"[yellow]warning:[/yellow] {escape(str(w.message))}")


def parse_model_args(pairs: list[str]) -> dict[str, Any]:
    """``["base_url=http://h/v1", "max_concurrency=8"]`` -> dict; numbers and true/false are parsed."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-arg expects KEY=VALUE, got {pair!r}")
        value: Any = raw.strip()
        if value.lower() in ("true", "false"):
            value = value.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(value)
                    break
                except ValueError:
                    pass
        out[key] = value
    return out


def _exit_code(exc: Exception) -> int | None:
    """Exit code for an expected failure, None for a bug (shown with its traceback)."""
    from sharpbench.store import StoreError

    if isinstance(exc, StoreError):
        return EXIT_FAILURE
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {"UnknownTaskError", "UnknownModelError", "UnknownBackendError", "UnknownModelArgError"}:
        return EXIT_USAGE
    if names & {"TaskError", "ModelError", "ModelLoadError", "MissingDataError", "BackendError"}:
        return EXIT_FAILURE
    if isinstance(exc, (ValueError, KeyError, LookupError)):
        return EXIT_USAGE
    if isinstance(exc, (OSError, RuntimeError)):
        return EXIT_FAILURE
    return None


class _Progress:
    """Rich progress bar on a terminal, plain 'N/M items stored' lines otherwise (logs, CI)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total = 0
        self.done = 0
        self._bar: Any = None
        self._task_id: Any = None
        self._t0 = time.monotonic()

    def __enter__(self) -> "_Progress":
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

    def advance(self, n: int, task: str) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task_id, advance=n, description=task)
            speed = self._bar.tasks[0].speed
            self._bar.update(self._task_id, rate=f"{speed:.1f} items/s" if speed else "")
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
        return f" ({rate:.1f} items/s, ETA {_duration(left)})"


def _duration(seconds: float) -> str:
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


def _metric_rows(metrics: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, (value, stderr) in metrics.items():
        arrow = "↓" if name in _LOWER_IS_BETTER else "↑"
        rows.append((name, arrow, _fmt(value), _fmt(stderr)))
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
            for i, (m, arrow, v, se) in enumerate(_metric_rows(g.metrics)):
                table.add_row(escape(group) if i == 0 else "", "", "none" if i == 0 else "",
                              str(g.num_fewshot) if i == 0 else "", m, arrow, v, "±", se)
        for t in members:
            name = escape(f" - {t.task}" if group is not None else t.task)
            for i, (m, arrow, v, se) in enumerate(_metric_rows(t.metrics)):
                first = i == 0
                table.add_row(name if first else "", (t.version or "") if first else "",
                              "none" if first else "", str(t.num_fewshot) if first else "",
                              m, arrow, v, "±", se)
    return table


def groups_table(report) -> Table:
    """lm-eval's second table: one row per group metric."""
    table = Table(title="Groups")
    for col in ("Groups", "Version", "Filter", "n-shot", "Metric", "", "Value", "", "Stderr"):
        table.add_column(col, justify="right" if col in ("Value", "Stderr", "n-shot") else "left")
    for g in report.groups:
        for i, (m, arrow, v, se) in enumerate(_metric_rows(g.metrics)):
            table.add_row(escape(g.group) if i == 0 else "", "", "none" if i == 0 else "",
                          str(g.num_fewshot) if i == 0 else "", m, arrow, v, "±", se)
    return table
