"""The result store: every run, item, choice score and generated sample in one DuckDB file."""

from __future__ import annotations

from sharpbench.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreImportError,
    StoreLockedError,
    StoreLookupError,
    StoreVersionError,
)
from sharpbench.store.schema import SCHEMA_VERSION
from sharpbench.store.store import DEFAULT_STORE, RunSpec, Store, run_key

__all__ = [
    "Store",
    "RunSpec",
    "run_key",
    "DEFAULT_STORE",
    "SCHEMA_VERSION",
    "StoreError",
    "StoreLockedError",
    "StoreCorruptError",
    "StoreVersionError",
    "StoreImportError",
    "StoreLookupError",
]
