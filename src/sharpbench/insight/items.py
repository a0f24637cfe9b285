"""Question texts from item metadata (the tables themselves are read by :func:`sharpbench.matrix.read_item_table`)."""

from __future__ import annotations

import pandas as pd

from sharpbench.insight.stats import InsightError

__all__ = ["TEXT_COLUMNS", "item_texts"]

TEXT_COLUMNS = ("question", "text", "prompt", "query", "input")


def item_texts(meta: pd.DataFrame) -> pd.Series:
    """Question text per item (passage prepended when there is one); error if no text column."""
    col = next((c for c in TEXT_COLUMNS if c in meta.columns), None)
    if col is None:
        raise InsightError(
            f"item metadata has no text column (one of {TEXT_COLUMNS}); pass --items with the questions"
        )
    text = meta[col].fillna("").astype(str)
    if "passage" in meta.columns:
        passage = meta["passage"].fillna("").astype(str)
        text = (passage + "\n" + text).str.strip()
    return text[text.str.len() > 0]
