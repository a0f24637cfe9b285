"""The one output emitter of the CLI: every command prints its result through :class:`Output`.

``--format`` picks one of three renderings of the same result:

* ``table`` (for people): each table as a rich table with its title; numbers
  to 4 significant digits (:func:`cell`), a missing value as ``-``, booleans
  as ``yes``/``no``; notes and the command's extra fields as plain lines.
  Printed as the command goes.
* ``json`` (for programs): one JSON document on stdout, numbers at full
  precision, NaN and infinities as ``null``. A result that is one list of
  rows prints as a JSON array of row objects; any other result prints as one
  object: the command's fields, with each table as a list of row objects
  under its name (``"rows"`` unless the command names it).
* ``csv`` (for spreadsheets): the result's main table (the one named
  ``"rows"``, else the first; a record is one row), header and rows, numbers
  at full precision, a missing value as an empty cell, nested values as JSON.

A result is built from tables (:meth:`Output.rows`: a ``pandas.DataFrame``,
whose index becomes columns unless it is unnamed integers, or a list of dicts), a record
(:meth:`Output.record`: a dict of scalars), fields (:meth:`Output.fields`:
anything JSON can hold) and notes (:meth:`Output.note`: table mode only).
``with Output(fmt) as out:`` prints the JSON or CSV when the block ends
without an error, so a command that fails prints its one error line and no
half document.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = [
    "FORMATS", "Output", "OutputFormat", "cell", "check_format", "dumps", "format_option", "interval", "jsonable", "pm",
    "print_json",
]


class OutputFormat(str, Enum):
    """How a command prints its result (see the module docstring)."""

    table = "table"
    json = "json"
    csv = "csv"


#: The ``--format`` choices of every command that prints a result.
FORMATS = tuple(f.value for f in OutputFormat)


def format_option(*, extra: Sequence[str] = (), help: str = "") -> Any:
    """The ``--format/-f`` option of a command printing a result (``extra``: its own further formats).

    A plain string option checked by :func:`check_format`, so a wrong value
    gives the one ``error:`` line and exit code 2 of every input error.
    """
    import typer  # the CLI's own dependency, loaded already by every command module

    names = (*FORMATS, *extra)
    return typer.Option(names[0], "--format", "-f", help=" | ".join(names) + (f" ({help})" if help else "") + ".")


def check_format(fmt: Any, extra: Sequence[str] = ()) -> str:
    """``fmt`` as a string if it is one of :data:`FORMATS` (or ``extra``); an :class:`InputError` if not."""
    from sharpbench.errors import InputError

    value = fmt.value if isinstance(fmt, Enum) else str(fmt)
    names = (*FORMATS, *extra)
    if value not in names:
        raise InputError(f"unknown --format {value!r}; choose one of {', '.join(names)}")
    return value


# ------------------------------------------------------------------ values
def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: numpy scalars and arrays, pandas frames and NA, paths, dates, enums.

    Floats keep full precision; NaN and infinities become ``None``.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    kind = type(value).__module__.split(".")[0]
    if kind == "datetime":  # date, datetime, time
        return value.isoformat()
    if kind == "numpy" and hasattr(value, "tolist"):  # arrays and scalars alike
        return jsonable(value.tolist())
    if kind == "pandas":
        if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
            return _records(value)
        if hasattr(value, "to_dict"):  # a Series
            return jsonable(value.to_dict())
        if hasattr(value, "isoformat"):  # Timestamp
            return None if _isna(value) else value.isoformat()
        if _isna(value):  # NA, NaT
            return None
    return str(value)


def _isna(value: Any) -> bool:
    try:
        import pandas as pd  # only reached with a pandas value: pandas is loaded already

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def dumps(value: Any) -> str:
    """``value`` as indented JSON (:func:`jsonable` first; non-ASCII text kept as it is)."""
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False, allow_nan=False)


def print_json(value: Any) -> None:
    """Print ``value`` as one JSON document on stdout (for commands whose result is a document)."""
    sys.stdout.write(dumps(value) + "\n")
    sys.stdout.flush()


def cell(value: Any) -> str:
    """How a table shows one value: 4 significant digits, ``-`` for missing, ``yes``/``no``, text as is.

    Numbers of 1000 and more show one decimal (``1234.6``), never an exponent;
    tiny ones an exponent (``1.23e-05``).
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == 0 or 1e-4 <= abs(value) < 1000:
            return f"{value:.4g}"
        return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.2e}"
    kind = type(value).__module__.split(".")[0]
    if kind in ("numpy", "pandas"):
        plain = jsonable(value)
        return cell(plain) if isinstance(plain, (bool, int, float)) or plain is None else str(plain)
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    return str(value)


def pm(value: Any, se: Any) -> str:
    """``value ± se`` as a table shows it (``value`` alone without a standard error; ``-`` without either)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return cell(value) if se is None or (isinstance(se, float) and math.isnan(se)) else f"{cell(value)} ± {cell(se)}"


def interval(low: Any, high: Any) -> str:
    """``[low, high]`` as a table shows it."""
    return f"[{cell(low)}, {cell(high)}]"


# ------------------------------------------------------------------ tables
def _records(data: Any) -> list[dict[str, Any]]:
    """Rows as a list of dicts of JSON values: a DataFrame (see :func:`_raw_rows`) or rows already."""
    return [{k: jsonable(v) for k, v in r.items()} for r in _raw_rows(data)]


def _raw_rows(data: Any) -> list[dict[str, Any]]:
    """Rows with their values as they are (for the table's number formatting and column kinds)."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame
        import pandas as pd  # loaded already: the caller holds a DataFrame

        frame = data
        # a named index (or labels) is data; an unnamed integer index is only the rows' positions
        if any(n is not None for n in frame.index.names) or not pd.api.types.is_integer_dtype(frame.index.dtype):
            frame = frame.reset_index()
        return [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]
    return [{str(k): v for k, v in dict(r).items()} for r in data]


def _numeric(values: Iterable[Any]) -> bool:
    seen = False
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) and type(v).__module__.split(".")[0] != "numpy":
            return False
        plain = jsonable(v)
        if isinstance(plain, bool) or not isinstance(plain, (int, float)):
            return False
        seen = True
    return seen


class Output:
    """Collects one command's result and prints it as ``fmt`` (``table``, ``json`` or ``csv``).

    Use it as a context manager; see the module docstring for what each
    format prints.
    """

    def __init__(self, fmt: OutputFormat | str) -> None:
        self.fmt = OutputFormat(check_format(fmt))
        self._tables: dict[str, list[dict[str, Any]]] = {}
        self._fields: dict[str, Any] = {}
        self._record: dict[str, Any] | None = None
        self._console = None

    # -- context manager: JSON and CSV are printed at the end, only after success
    def __enter__(self) -> Output:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    @property
    def is_table(self) -> bool:
        return self.fmt is OutputFormat.table

    @property
    def console(self):
        """The rich console of table mode (stdout)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console()
        return self._console

    # -- building the result
    def rows(self, data: Any, *, title: str = "", name: str = "rows", columns: Sequence[str] | None = None,
             display: Sequence[Mapping[str, Any]] | None = None, show: bool = True, max_rows: int | None = None,
             empty: str | None = None) -> None:
        """Add a table ``name`` (a DataFrame or a list of dicts) to the result.

        Table mode shows it under ``title`` (only ``columns`` if given;
        ``display`` rows instead of ``data`` where the command shows cells
        its own way, e.g. ``0.51 ± 0.02``; the first ``max_rows`` rows; the
        ``empty`` line on stderr when there is no row); ``show=False`` keeps
        it out of table mode.
        """
        if name in self._tables:
            raise ValueError(f"output table {name!r} added twice")
        self._tables[name] = _records(data)
        if self.is_table and show:
            self.table(data if display is None else display, title=title, columns=columns, max_rows=max_rows,
                       empty=empty)

    def record(self, data: Mapping[str, Any], *, title: str = "",
               display: Sequence[tuple[str, str]] | None = None, show: bool = True) -> None:
        """Add the result's record (a dict of scalars): JSON fields, one CSV row, a field/value table.

        ``display`` gives the table's (field, shown value) pairs where the
        command shows them its own way.
        """
        self._record = dict(data)
        self._fields.update(data)
        if not (self.is_table and show):
            return
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=escape(title) if title else None)
        table.add_column("field")
        table.add_column("value", overflow="fold")
        for k, v in display if display is not None else data.items():
            table.add_row(escape(str(k)), escape(v if isinstance(v, str) and display is not None else cell(v)))
        self.console.print(table)

    def fields(self, data: Mapping[str, Any], *, show: bool = False) -> None:
        """Add fields to the JSON object (``show``: also print them as ``key: value`` lines in table mode)."""
        self._fields.update(data)
        if self.is_table and show:
            for k, v in data.items():
                self.note(f"{k}: {cell(v) if not isinstance(v, str) else v}")

    def note(self, text: str) -> None:
        """A plain line after the tables, in table mode only (stdout; no markup)."""
        if self.is_table:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def table(self, data: Any, *, title: str = "", columns: Sequence[str] | None = None,
              max_rows: int | None = None, empty: str | None = None) -> None:
        """Show rows as a rich table in table mode only (nothing in JSON or CSV)."""
        if not self.is_table:
            return
        from rich.markup import escape
        from rich.table import Table

        raw = _raw_rows(data)
        if not raw:
            if empty:
                from rich.console import Console

                Console(stderr=True, soft_wrap=True).print(empty, markup=False)
            return
        cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in raw for k in r))
        table = Table(title=escape(title) if title else None)
        shown = raw if not max_rows else raw[:max_rows]
        cells = [[cell(r.get(c)) for c in cols] for r in shown]
        for c in cols:  # nothing is cut: a narrow terminal folds cells onto more lines
            table.add_column(escape(c), justify="right" if _numeric(r.get(c) for r in raw) else "left",
                             overflow="fold")
        for row in cells:
            table.add_row(*(escape(v) for v in row))
        self.console.print(table)
        if max_rows and len(raw) > max_rows:
            self.note(f"{len(raw) - max_rows} more rows (--format csv for all)")

    # -- printing JSON or CSV
    def document(self) -> Any:
        """The JSON document of the result (see the module docstring)."""
        if not self._fields and self._record is None and list(self._tables) == ["rows"]:
            return self._tables["rows"]
        clash = set(self._fields) & set(self._tables)
        if clash:
            raise ValueError(f"output field and table share the name(s) {sorted(clash)}")
        return jsonable({**self._fields, **self._tables})

    def main_rows(self) -> list[dict[str, Any]]:
        """The CSV rows: the table named ``rows``, else the first table, else the record as one row."""
        if "rows" in self._tables:
            return self._tables["rows"]
        if self._tables:
            return next(iter(self._tables.values()))
        return [jsonable(self._record)] if self._record is not None else []

    def close(self) -> None:
        """Print the JSON document or the CSV (table mode printed as it went)."""
        if self.fmt is OutputFormat.json:
            print_json(self.document())
        elif self.fmt is OutputFormat.csv:
            sys.stdout.write(to_csv(self.main_rows()))
            sys.stdout.flush()


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Header and rows (columns in first-seen order); ``None`` as an empty cell, nested values as JSON."""
    import csv  # start-up time: only a command printing CSV loads it
    import io

    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for r in rows:
        writer.writerow(["" if (v := r.get(c)) is None else json.dumps(v, ensure_ascii=False)
                         if isinstance(v, (dict, list)) else repr(v) if isinstance(v, float) else v for c in cols])
    return buf.getvalue()
