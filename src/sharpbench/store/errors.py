"""Errors raised by the result store, each with an actionable message."""

from __future__ import annotations

from sharpbench.errors import InputError, SharpbenchError

__all__ = [
    "StoreError",
    "StoreLockedError",
    "StoreCorruptError",
    "StoreVersionError",
    "StoreImportError",
    "StoreLookupError",
]


class StoreError(SharpbenchError, RuntimeError):
    """Base class of every store failure."""


class StoreLockedError(StoreError):
    """The DuckDB file is held open by another process."""


class StoreCorruptError(StoreError):
    """The file exists but is not a readable sharpbench DuckDB store."""


class StoreVersionError(StoreError):
    """The store was written by a newer sharpbench (newer schema version)."""


class StoreImportError(StoreError, InputError, ValueError):
    """An external result file (e.g. lm-eval ``--log_samples`` output) cannot be imported."""


class StoreLookupError(StoreError, InputError, LookupError):
    """A run or item named on the command line is not in the store (or the name is ambiguous)."""
