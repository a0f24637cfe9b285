"""The ``sharpbench`` command line: one module per command group, registered here.

Every command runs inside :func:`sharpbench.cli.common.handle_errors` (one
error line, one exit code per kind of error) and takes its option defaults
from ``sharpbench.toml`` when there is one (:mod:`sharpbench.cli.settings`).
The command modules import their analysis stacks (torch, scipy, duckdb,
pandas...) inside the command functions: that is for start-up time, so
``sharpbench --help`` and every command load only what they use.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer

from sharpbench.cli.common import CONFIG_ENV, CONFIG_FILE, App

app = App(
    name="sharpbench",
    help="Fast, sharp and honest LLM evaluation: run benchmarks, keep every answer, analyse like a psychometrician.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# Each module defines ``register(app: typer.Typer) -> None``. The order is the
# pipeline's: data -> models -> engine -> store -> analysis -> report.
_COMMAND_MODULES = (
    "eval_cmd",
    "results_cmd",
    "models_cmd",
    "tasks_cmd",
    "matrix_cmd",
    "irt_cmd",
    "distill_cmd",
    "adaptive_cmd",
    "compare_cmd",
    "elicit_cmd",
    "insight_cmd",
    "report_cmd",
)

for _name in _COMMAND_MODULES:
    importlib.import_module(f"sharpbench.cli.{_name}").register(app)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Fast, sharp and honest LLM evaluation."""
    if os.environ.get(CONFIG_ENV, "").strip() or Path(CONFIG_FILE).is_file():
        from sharpbench.cli.settings import apply_settings  # start-up time: pydantic loads only for a settings file

        apply_settings(ctx)  # option defaults from sharpbench.toml


@app.command("version")
def version() -> None:
    """Print the sharpbench version."""
    from sharpbench import __version__

    typer.echo(__version__)


# Options whose value is optional (``--ray`` alone means "auto"); typer has no optional-value options.
_OPTIONAL_VALUE = {"--ray": "auto"}


def optional_values(argv: list[str]) -> list[str]:
    """Give a bare optional-value option (last, or followed by another option) its default."""
    out = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg in _OPTIONAL_VALUE and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(_OPTIONAL_VALUE[arg])
    return out


def main() -> None:
    """Console-script entry point."""
    app(args=optional_values(sys.argv[1:]))
