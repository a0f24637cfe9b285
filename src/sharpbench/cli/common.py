"""Pieces every CLI command module shares: the command wrapper, the error line, the artifact saver.

(The output emitter every command prints its result with is :mod:`sharpbench.cli.output`.)

Every command is registered on an :class:`App` (a ``typer.Typer`` whose
``command``/``callback`` wrap the function with :func:`handle_errors`), so
the same error gives the same one-line message and exit code from every
command (codes: :mod:`sharpbench.errors`).
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from sharpbench.cli.output import OutputFormat  # re-exported: the one --format choice list
from sharpbench.errors import EXIT_FAILURE, EXIT_INPUT, EXIT_INTERRUPTED, SharpbenchError
from sharpbench.models import REGISTRY

__all__ = [
    "CONFIG_ENV", "CONFIG_FILE", "App", "OutputFormat", "backend_help", "choice_enum", "choice_help", "dtype_help",
    "exit_code", "fail", "handle_errors", "save_artifact", "sigterm_as_interrupt",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The settings file the CLI reads in the working directory, and the variable naming another one
#: (read by :mod:`sharpbench.cli.settings`).
CONFIG_FILE = "sharpbench.toml"
CONFIG_ENV = "SHARPBENCH_CONFIG"


def fail(error: Exception | str, code: int = EXIT_FAILURE) -> typer.Exit:
    """Print ``error: <message>`` in red on stderr and return the ``typer.Exit`` to raise.

    ``code`` is :data:`~sharpbench.errors.EXIT_INPUT` (2) for bad usage or
    input (click's own convention), :data:`~sharpbench.errors.EXIT_FAILURE`
    (1) for failures while doing the work.  The message is printed literally
    (no rich markup), so brackets in file names or values survive.
    """
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(error))}")
    return typer.Exit(code)


def exit_code(exc: BaseException) -> int | None:
    """The exit code of an expected failure, ``None`` for a bug (shown with its traceback).

    sharpbench's own errors carry theirs (:attr:`SharpbenchError.exit_code`);
    errors of the libraries underneath map by kind: a missing input file,
    ``ValueError``/``KeyError`` (bad values, unreadable CSV, bad encoding) are
    input errors (2); other ``OSError`` and ``RuntimeError`` are failures (1).
    """
    if isinstance(exc, SharpbenchError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return EXIT_INPUT
    if isinstance(exc, (ValueError, LookupError)):
        return EXIT_INPUT
    if isinstance(exc, (OSError, RuntimeError)):
        return EXIT_FAILURE
    return None


def handle_errors(fn: F) -> F:
    """Run a command; an expected error becomes ``error: <message>`` on stderr and its exit code.

    click's own exits and usage errors pass through untouched; an error
    :func:`exit_code` does not know (a bug) keeps its traceback. SIGTERM acts
    as Ctrl-C (:func:`sigterm_as_interrupt`), so a killed run stores what it
    finished the same way.
    """

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            with sigterm_as_interrupt():
                return fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None
        except Exception as exc:
            if _from_click(exc):
                raise
            code = exit_code(exc)
            if code is None:
                raise
            raise fail(exc, code) from None

    return run  # type: ignore[return-value]


def _from_click(exc: Exception) -> bool:
    """``typer.Exit``, usage errors, aborts: click's (or typer's vendored click's) own control flow."""
    return type(exc).__module__.split(".")[0] in ("click", "typer")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM (``kill PID``, a job scheduler, ``docker stop``) acts as Ctrl-C.

    The first SIGTERM raises ``KeyboardInterrupt`` where the program is, so a
    run stores its whole items (or batches), marks itself interrupted and exits
    130; later ones are ignored while that clean-up runs. Outside the main
    thread (no signal handlers there) the block does nothing.
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


class App(typer.Typer):
    """A ``typer.Typer`` whose commands and callbacks run inside :func:`handle_errors`."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        register = super().command(*args, **kwargs)

        def decorator(fn: F) -> F:
            register(handle_errors(fn))
            return fn

        return decorator

    def callback(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        register = super().callback(*args, **kwargs)

        def decorator(fn: F) -> F:
            register(handle_errors(fn))
            return fn

        return decorator


def save_artifact(store: Path | str | None, kind: str, name: str, payload: dict) -> bool:
    """Save ``payload`` as artifact ``kind``/``name`` in the result store at ``store``; no-op for ``None``.

    Every command that keeps an analysis in the store goes through here (the
    store is opened shared and closed again). Returns whether it saved.
    """
    if store is None:
        return False
    from sharpbench.store import Store  # start-up time: duckdb and pandas load only when a command saves

    with Store(store, shared=True) as st:
        st.save_artifact(kind, name, payload)
    return True


def choice_enum(name: str, values: Iterable[str]) -> type[Enum]:
    """A ``str`` enum whose members are ``values``: typer builds an option's choices from it.

    The values come from the library (:mod:`sharpbench.choices`, the backend
    registry), so the CLI offers exactly what the library accepts.
    """
    return Enum(name, [(v, v) for v in values], type=str)  # type: ignore[return-value]


def choice_help(values: Iterable[str]) -> str:
    """``"a | b | c"``: the choices in help text."""
    return " | ".join(values)


def backend_help() -> str:
    """``--backend`` help from the backend registry: ``"Model backend: hf | llamacpp | openai."``."""
    return f"Model backend: {' | '.join(REGISTRY)}."


def dtype_help() -> str:
    """``--dtype`` help from the backend registry: each backend's dtypes, its default first."""
    return "; ".join(f"{name}: {' | '.join(info.dtypes)}" for name, info in REGISTRY.items()) + "."
