"""Find lm-evaluation-harness ``--log_samples`` files.

lm-eval 0.4.x writes one ``samples_<task>_<date>.jsonl`` per task and run
(``<date>`` like ``2024-05-01T12-30-00.123456``) beside a
``results_<date>.json``.  Both the response-matrix reader
(:mod:`sharpbench.matrix.lmeval`) and the store importer
(:mod:`sharpbench.store.lmeval_import`) locate files through here; the lines
are read with :func:`sharpbench.data.readers.iter_jsonl`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

__all__ = ["SAMPLES_GLOB", "sample_task", "newest_per_key"]

SAMPLES_GLOB = "samples_*.jsonl"
_SAMPLES_RE = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.\-]+)\.jsonl$")


def sample_task(path: str | Path) -> str | None:
    """The task name of a ``samples_<task>_<date>.jsonl`` file, ``None`` if not named so."""
    m = _SAMPLES_RE.match(Path(path).name)
    return m.group("task") if m else None


def newest_per_key(files: Iterable[Path], key: Callable[[Path], Hashable]) -> dict[Hashable, Path]:
    """The newest file (lexically last name, i.e. last date) for each ``key(file)``."""
    out: dict[Hashable, Path] = {}
    for f in files:
        k = key(f)
        if k not in out or f.name > out[k].name:
            out[k] = f
    return out
