"""Pieces every CLI command module shares."""

from __future__ import annotations

from enum import Enum


class OutputFormat(str, Enum):
    """How a command prints tabular output."""

    table = "table"
    json = "json"
    csv = "csv"


def fail(error: Exception | str, code: int = 1):
    """Print ``error: <message>`` in red on stderr and return the ``typer.Exit`` to raise.

    ``code`` is 2 for bad usage or input (typer's own convention), 1 for
    failures while doing the work.  The message is printed literally (no rich
    markup), so brackets in file names or values survive.
    """
    import typer
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(error))}")
    return typer.Exit(code)
