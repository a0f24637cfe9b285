"""Which way round is a wide response matrix? Guess from its ids, refuse to guess wrong silently.

Every command that reads a wide matrix (``matrix``, ``irt``, ``calibrate``,
``adaptive``, ``distill``, ``predict``, ``skills``/``rank``/``calibration``,
``report``) takes ``--items-as-rows`` / ``--models-as-rows``. Without either
flag the reader calls :func:`resolve_orientation`: when the ids make it clear
that the rows are items (row ids like ``0, 1, 2`` or ``q17``, column ids like
``Llama-3.1-8B-Instruct``) it raises :class:`~sharpbench.matrix.core.MatrixError`
instead of reading items as models; when they say rows are models (or say
nothing) the sharpbench convention, one row per model, is used.

>>> resolve_orientation(["gpt-4o", "llama-3-8b"], ["0", "1", "2"], None)
False
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sharpbench.matrix.core import MatrixError

__all__ = ["resolve_orientation", "guess_items_as_rows", "id_kinds"]

# Item-like ids: integers, item_12 / q12 / question-3 / i7, lm-eval's task/doc_id (piqa/12), hashes and uuids.
_ITEM_ID = re.compile(
    r"^(?:-?\d+(?:\.0)?|(?:item|items|q|question|i|id|doc|sample|problem)[_\-\s]?\d+|[\w.\-]+/\d+"
    r"|[0-9a-f]{12,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
    re.IGNORECASE,
)
# Model-like ids: a known family name, a parameter count (7b, 135M, 8x7b), a hub id org/name,
# or a fine-tuning suffix.
_FAMILIES = (
    "gpt", "llama", "claude", "mistral", "mixtral", "gemma", "gemini", "qwen", "phi", "falcon", "olmo",
    "deepseek", "command", "palm", "pythia", "bloom", "smollm", "galactica", "galatica", "vicuna", "grok",
    "internlm", "baichuan", "chatglm", "starcoder", "dbrx", "nemotron", "granite", "zephyr", "tulu", "yi",
    "opt", "t5", "gpt2", "o1", "o3", "paperqa", "jamba", "solar", "hermes", "aya", "codellama", "wizard",
)
_MODEL_ID = re.compile(
    r"(?:^|[^a-z])(?:" + "|".join(sorted(map(re.escape, _FAMILIES), key=len, reverse=True)) + r")(?:[^a-z]|$)"
    r"|\d+(?:\.\d+)?\s*[bmk]\b|\d+x\d+b\b|instruct|[\-_]chat\b|[\-_]it\b|[\-_]hf\b|shots?\b|^[\w.\-]+/[\w.\-]+$",
    re.IGNORECASE,
)


def id_kinds(ids: Sequence[object]) -> tuple[float, float]:
    """(fraction of ids that look like item ids, fraction that look like model names)."""
    ids = [str(i).strip() for i in ids]
    if not ids:
        return 0.0, 0.0
    n_item = sum(bool(_ITEM_ID.match(i)) for i in ids)
    n_model = sum(bool(_MODEL_ID.search(i)) and not _ITEM_ID.match(i) for i in ids)
    return n_item / len(ids), n_model / len(ids)


def guess_items_as_rows(row_ids: Sequence[object], col_ids: Sequence[object]) -> bool | None:
    """True: rows look like items; False: rows look like models; None: the ids do not say."""
    row_item, row_model = id_kinds(row_ids)
    col_item, col_model = id_kinds(col_ids)
    rows_items = (row_item >= 0.9 and col_item <= 0.1) or (col_model >= 0.5 and row_model <= 0.05)
    rows_models = (col_item >= 0.9 and row_item <= 0.1) or (row_model >= 0.5 and col_model <= 0.05)
    if rows_items and not rows_models:
        return True
    if rows_models and not rows_items:
        return False
    return None


def _examples(ids: Sequence[object], n: int = 3) -> str:
    return ", ".join(repr(str(i)) for i in list(ids)[:n])


def resolve_orientation(
    row_ids: Sequence[object],
    col_ids: Sequence[object],
    items_as_rows: bool | None,
    source: str = "the matrix",
) -> bool:
    """``items_as_rows`` to use for a wide table with these row and column ids.

    An explicit True/False (``--items-as-rows`` / ``--models-as-rows``) is
    obeyed. ``None`` means the user said nothing: rows are models unless the
    ids show that rows are items, in which case :class:`MatrixError` asks for
    the flag (a transposed matrix would fit items as "respondents").
    """
    if items_as_rows is not None:
        return bool(items_as_rows)
    if guess_items_as_rows(row_ids, col_ids):
        row_item, _ = id_kinds(row_ids)
        _, col_model = id_kinds(col_ids)
        rows = "item-like ids" if row_item >= 0.9 else "ids that are not model names"
        cols = "look like model names" if col_model >= 0.5 else "do not look like item ids"
        raise MatrixError(
            f"{source} looks transposed: its {len(row_ids)} rows have {rows} ({_examples(row_ids)}, ...) "
            f"and its {len(col_ids)} columns {cols} ({_examples(col_ids)}, ...), but sharpbench reads one "
            "row per model. Pass --items-as-rows if the rows are items, or --models-as-rows if they really "
            "are models"
        )
    return False
