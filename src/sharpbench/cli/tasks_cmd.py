"""CLI commands ``sharpbench tasks``: list the built-in tasks, show a task's exact requests."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from sharpbench.cli.common import App, fail
from sharpbench.cli.output import Output, check_format, format_option, print_json
from sharpbench.errors import EXIT_INPUT

tasks_app = App(
    help="Benchmarks (tasks): list them, show their exact prompts.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``tasks`` command group to the main app."""
    app.add_typer(tasks_app, name="tasks")


def _task_row(task: Any) -> dict[str, Any]:
    try:
        n_docs: int | None = task.n_docs
        error = ""
    except (RuntimeError, ValueError) as exc:  # data not installed: list it anyway
        n_docs, error = None, str(exc)
    return {
        "name": task.name,
        "group": task.group or "",
        "kind": task.kind,
        "n_docs": n_docs,
        "split": task.split,
        "source": task.source,
        "metrics": ",".join(task.metric_names),
        "template_hash": task.template_hash,
        **({"error": error} if error else {}),
    }


@tasks_app.command("list")
def tasks_list(
    group: str | None = typer.Option(
        None, "--group", "-g", help="Only the tasks of this group (e.g. mmlu)."
    ),
    fmt: str = format_option(),
    groups: bool = typer.Option(
        False, "--groups", help="List the groups instead of the tasks."
    ),
) -> None:
    """Table of built-in tasks: name, group, n_docs, split, source, metrics."""
    check_format(fmt)
    from sharpbench.data import (
        get_task,
        list_groups,
        list_tasks,
        tasks_in_group,
    )

    if groups:
        rows = [
            {"group": g.name, "n_tasks": len(g.tasks), "metric": g.metric, "weight_by_size": g.weight_by_size,
             "description": g.description}
            for g in list_groups().values()
        ]  # fmt: skip
    else:
        names = tasks_in_group(group) if group else list_tasks()
        rows = [_task_row(get_task(n)) for n in names]
    columns = None if groups or not rows else [k for k in rows[0] if k != "template_hash"]
    with Output(fmt) as out:
        out.rows(rows, title="sharpbench groups" if groups else "sharpbench tasks", columns=columns)


@tasks_app.command("show")
def tasks_show(
    name: str = typer.Argument(..., help="Task name or path of a TOML/YAML task file."),
    n: int = typer.Option(
        2, "--n", "-n", help="How many items to show (from the first)."
    ),
    num_fewshot: int | None = typer.Option(
        None, "--num-fewshot", help="Few-shot examples (default: task's)."
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="text | json."),
) -> None:
    """Print the exact requests of the first items of a task: (context, continuation) pairs, or generation prompts."""
    from sharpbench.data import get_task
    from sharpbench.data.task import check_text

    if fmt not in ("text", "json"):
        raise fail(ValueError(f"unknown format {fmt!r}; choose text or json"), EXIT_INPUT)
    task = get_task(name, num_fewshot=num_fewshot)
    items = task.items(limit=max(n, 0))
    check_text(task.name, items)
    if fmt == "json":
        payload = {
            "task": task.name, "group": task.group, "num_fewshot": task.num_fewshot, "split": task.split,
            "template_hash": task.template_hash, "n_docs": task.n_docs,
            "kind": task.kind,
            "items": [_item_json(it) for it in items],
        }  # fmt: skip
        print_json(payload)
        return
    out = Console(highlight=False)
    out.print(
        f"[bold]{escape(task.name)}[/bold]  group={task.group}  split={task.split}  n_docs={task.n_docs}  "
        f"num_fewshot={task.num_fewshot}  metrics={','.join(task.metric_names)}  hash={task.template_hash[:12]}"
    )
    for it in items:
        if it.kind == "generate_until":
            out.rule(escape(f"item {it.item_id}  target={it.target!r}  {it.metadata or ''}"))
            out.print("[dim]--- prompt:[/dim]")
            out.print(it.prompt, markup=False)
            out.print(f"[dim]--- until {list(it.until)!r}, max_gen_toks {it.max_gen_toks}, repeats {it.repeats}, "
                      f"{'sampled' if it.do_sample else 'greedy'}[/dim]", markup=True)
            continue
        out.rule(escape(f"item {it.item_id}  gold={it.gold}  {it.metadata or ''}"))
        for j, r in enumerate(it.requests):
            mark = "*" if j == it.gold else " "
            out.print(f"[dim]--- request {j}{mark} context:[/dim]")
            out.print(r.context, markup=False)
            out.print(f"[dim]--- continuation:[/dim] {escape(repr(r.continuation))}")


def _item_json(it: Any) -> dict[str, Any]:
    if it.kind == "generate_until":
        return {"item_id": it.item_id, "target": it.target, "metadata": it.metadata, "prompt": it.prompt,
                "until": list(it.until), "max_gen_toks": it.max_gen_toks, "repeats": it.repeats,
                "do_sample": it.do_sample, "temperature": it.temperature}
    return {"item_id": it.item_id, "gold": it.gold, "choices": list(it.choices), "metadata": it.metadata,
            "requests": [{"context": r.context, "continuation": r.continuation} for r in it.requests]}
