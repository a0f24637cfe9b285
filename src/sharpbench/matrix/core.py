"""The response matrix: models x items, the one type every analysis reads.

Values are correctness in {0, 1} or partial scores in [0, 1]; ``NaN`` marks a
cell that was not administered or is missing. Rows are models (respondents),
columns are items. The matrix is numpy inside and pandas-friendly outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sharpbench.errors import InputError

__all__ = ["ResponseMatrix", "MatrixError"]


class MatrixError(InputError, ValueError):
    """A response matrix is malformed or unfit for the requested analysis."""


@dataclass(frozen=True, eq=False)
class ResponseMatrix:
    """Models x items matrix of scores with ids and metadata.

    Parameters
    ----------
    values : ndarray of shape (n_models, n_items)
        Scores in [0, 1]; ``NaN`` = missing / not administered.
    models : sequence of str, length n_models
        Unique model (respondent) ids.
    items : sequence of str, length n_items
        Unique item ids.
    item_meta : DataFrame, optional
        Indexed by item id (same order as ``items``); e.g. ``benchmark``,
        ``subject``, ``n_choices``.
    model_meta : DataFrame, optional
        Indexed by model id (same order as ``models``).
    """

    values: np.ndarray
    models: tuple[str, ...]
    items: tuple[str, ...]
    item_meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    model_meta: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        vals = np.asarray(self.values, dtype=float)
        if vals.ndim != 2:
            raise MatrixError(f"values must be 2-D (models x items), got shape {vals.shape}")
        models = tuple(str(m) for m in self.models)
        items = tuple(str(i) for i in self.items)
        if vals.shape != (len(models), len(items)):
            raise MatrixError(
                f"values shape {vals.shape} does not match {len(models)} models x {len(items)} items"
            )
        _check_unique(models, "model")
        _check_unique(items, "item")
        finite = vals[~np.isnan(vals)]
        if np.isinf(finite).any():
            raise MatrixError("values contain +/-inf; use NaN for missing cells")
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise MatrixError(
                f"values must lie in [0, 1] (got min {finite.min():g}, max {finite.max():g}); "
                "rescale scores or binarise them first"
            )
        vals = vals.copy()
        vals.setflags(write=False)
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "item_meta", _align_meta(self.item_meta, items, "item"))
        object.__setattr__(self, "model_meta", _align_meta(self.model_meta, models, "model"))

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> tuple[int, int]:
        """(n_models, n_items)."""
        return self.values.shape  # type: ignore[return-value]

    @property
    def n_models(self) -> int:
        return self.values.shape[0]

    @property
    def n_items(self) -> int:
        return self.values.shape[1]

    @property
    def observed(self) -> np.ndarray:
        """Boolean mask of observed (non-missing) cells."""
        return ~np.isnan(self.values)

    @property
    def is_binary(self) -> bool:
        """True when every observed value is exactly 0 or 1."""
        v = self.values[self.observed]
        return bool(np.all((v == 0) | (v == 1)))

    def __repr__(self) -> str:
        miss = int((~self.observed).sum())
        return f"ResponseMatrix({self.n_models} models x {self.n_items} items, {miss} missing cells)"

    # ------------------------------------------------------------ conversion
    def to_frame(self) -> pd.DataFrame:
        """Wide DataFrame: index = models, columns = items."""
        return pd.DataFrame(self.values, index=list(self.models), columns=list(self.items))

    def to_long(self) -> pd.DataFrame:
        """Long table with columns ``model, item, score`` (observed cells only)."""
        m_idx, i_idx = np.nonzero(self.observed)
        return pd.DataFrame(
            {
                "model": np.asarray(self.models, dtype=object)[m_idx],
                "item": np.asarray(self.items, dtype=object)[i_idx],
                "score": self.values[m_idx, i_idx],
            }
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        items_as_rows: bool = False,
        item_meta: pd.DataFrame | None = None,
        model_meta: pd.DataFrame | None = None,
    ) -> "ResponseMatrix":
        """Build from a wide DataFrame (index = models, columns = items, unless ``items_as_rows``)."""
        if items_as_rows:
            frame = frame.T
        try:
            if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):  # the common case: no per-column pass
                vals = frame.to_numpy(dtype=float, na_value=np.nan)
            else:
                vals = frame.apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
        except (ValueError, TypeError) as exc:
            raise MatrixError(f"matrix has non-numeric cells: {exc}") from exc
        return cls(
            vals,
            tuple(map(str, frame.index)),
            tuple(map(str, frame.columns)),
            item_meta if item_meta is not None else pd.DataFrame(),
            model_meta if model_meta is not None else pd.DataFrame(),
        )

    @classmethod
    def from_long(
        cls,
        table: pd.DataFrame,
        *,
        model: str = "model",
        item: str = "item",
        score: str = "score",
        item_meta: pd.DataFrame | None = None,
    ) -> "ResponseMatrix":
        """Build from a long table with one row per (model, item, score)."""
        missing = [c for c in (model, item, score) if c not in table.columns]
        if missing:
            raise MatrixError(f"long table lacks column(s) {missing}; has {list(table.columns)}")
        dup = table.duplicated([model, item])
        if dup.any():
            first = table.loc[dup, [model, item]].iloc[0].tolist()
            raise MatrixError(f"{int(dup.sum())} duplicated (model, item) rows, e.g. {first}")
        t = table.assign(**{model: table[model].astype(str), item: table[item].astype(str)})
        wide = t.pivot(index=model, columns=item, values=score)
        item_order = list(dict.fromkeys(t[item]))
        model_order = list(dict.fromkeys(t[model]))
        wide = wide.reindex(index=model_order, columns=item_order)
        return cls.from_frame(wide, item_meta=item_meta)

    # ------------------------------------------------------------- selection
    def select(
        self,
        models: Sequence[str] | np.ndarray | None = None,
        items: Sequence[str] | np.ndarray | None = None,
    ) -> "ResponseMatrix":
        """Sub-matrix by ids or boolean masks / integer positions (order kept as given)."""
        mi = self._index(models, self.models, "model")
        ii = self._index(items, self.items, "item")
        im = self.item_meta.iloc[ii] if len(self.item_meta.columns) else pd.DataFrame()
        mm = self.model_meta.iloc[mi] if len(self.model_meta.columns) else pd.DataFrame()
        return ResponseMatrix(
            self.values[np.ix_(mi, ii)],
            tuple(self.models[k] for k in mi),
            tuple(self.items[k] for k in ii),
            im,
            mm,
        )

    def drop_models(self, models: Iterable[str]) -> "ResponseMatrix":
        """Matrix without the given models."""
        drop = set(models)
        unknown = drop - set(self.models)
        if unknown:
            raise MatrixError(f"unknown model(s): {sorted(unknown)}")
        return self.select(models=[m for m in self.models if m not in drop])

    def binarize(self, threshold: float = 0.5) -> "ResponseMatrix":
        """Scores >= threshold become 1, others 0; NaN stays NaN."""
        v = self.values
        out = np.where(np.isnan(v), np.nan, (v >= threshold).astype(float))
        return ResponseMatrix(out, self.models, self.items, self.item_meta, self.model_meta)

    def require_binary(self) -> None:
        """Raise a clear error when the matrix holds non-binary scores."""
        if not self.is_binary:
            v = self.values[self.observed]
            bad = v[(v != 0) & (v != 1)]
            raise MatrixError(
                f"{bad.size} cells are not 0/1 (e.g. {bad[0]:g}); this analysis needs binary "
                "correctness: use .binarize(threshold) / --binarize 0.5"
            )

    # --------------------------------------------------------------- summary
    def model_accuracy(self, confidence: float = 0.95) -> pd.DataFrame:
        """Mean score per model over observed items, with a CI at ``confidence``.

        Scores in [0, 1] (accuracy, partial credit) get the Wilson score interval,
        which stays inside [0, 1] (the normal approximation gives e.g. [0.94, 1.03]
        for 9 of 10 with few items); other scores the normal approximation.

        Returns
        -------
        DataFrame indexed by model with ``accuracy, stderr, ci_low, ci_high, n_items``.
        """
        obs = self.observed
        n = obs.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(self.values, axis=1) / n
            var = np.nansum((self.values - mean[:, None]) ** 2, axis=1) / np.maximum(n - 1, 1)
            se = np.sqrt(var / n)
        z = stats.norm.ppf(0.5 + confidence / 2)
        low, high = mean - z * se, mean + z * se
        seen = self.values[obs]
        if seen.size and seen.min() >= 0 and seen.max() <= 1:
            with np.errstate(invalid="ignore", divide="ignore"):
                denom = 1 + z**2 / n
                centre = (mean + z**2 / (2 * n)) / denom
                half = z * np.sqrt(mean * (1 - mean) / n + z**2 / (4 * n**2)) / denom
            # the interval holds the mean exactly (rounding put 1 - 1e-16 above an accuracy of 1)
            low = np.where(n > 0, np.clip(np.minimum(centre - half, mean), 0, 1), np.nan)
            high = np.where(n > 0, np.clip(np.maximum(centre + half, mean), 0, 1), np.nan)
        return pd.DataFrame(
            {
                "accuracy": mean,
                "stderr": se,
                "ci_low": low,
                "ci_high": high,
                "n_items": n,
            },
            index=pd.Index(self.models, name="model"),
        )

    def item_pvalues(self) -> pd.Series:
        """Classical item difficulty: mean score per item over models that answered it."""
        with np.errstate(invalid="ignore"):
            p = np.nanmean(np.where(self.observed, self.values, np.nan), axis=0)
        return pd.Series(p, index=pd.Index(self.items, name="item"), name="p_value")

    def missing_counts(self) -> dict[str, pd.Series]:
        """Missing cells per model and per item."""
        miss = ~self.observed
        return {
            "per_model": pd.Series(miss.sum(axis=1), index=list(self.models), name="missing"),
            "per_item": pd.Series(miss.sum(axis=0), index=list(self.items), name="missing"),
        }

    def constant_items(self) -> np.ndarray:
        """Boolean mask of items every observed model got equally right or wrong (or unobserved)."""
        v = np.where(self.observed, self.values, np.nan)
        with np.errstate(invalid="ignore"):
            lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
        return np.isnan(lo) | (lo == hi)

    # ------------------------------------------------------------- internals
    @staticmethod
    def _index(sel, ids: tuple[str, ...], kind: str) -> np.ndarray:
        if sel is None:
            return np.arange(len(ids))
        arr = np.asarray(sel)
        if arr.dtype == bool:
            if arr.shape != (len(ids),):
                raise MatrixError(f"{kind} mask has shape {arr.shape}, expected ({len(ids)},)")
            return np.flatnonzero(arr)
        if arr.size and np.issubdtype(arr.dtype, np.integer):
            return arr.astype(int)
        pos = {k: i for i, k in enumerate(ids)}
        unknown = [s for s in map(str, arr.tolist()) if s not in pos]
        if unknown:
            raise MatrixError(f"unknown {kind}(s): {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
        return np.array([pos[s] for s in map(str, arr.tolist())], dtype=int)


def _check_unique(ids: tuple[str, ...], kind: str) -> None:
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dups = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
        raise MatrixError(f"duplicate {kind} ids: {dups[:5]}")


def _align_meta(meta: pd.DataFrame | None, ids: tuple[str, ...], kind: str) -> pd.DataFrame:
    if meta is None or len(meta.columns) == 0:
        return pd.DataFrame(index=pd.Index(ids, name=kind))
    meta = meta.copy()
    meta.index = meta.index.map(str)
    missing = [i for i in ids if i not in meta.index]
    if missing:
        raise MatrixError(f"{kind} metadata lacks {len(missing)} ids, e.g. {missing[:3]}")
    out = meta.loc[list(ids)]
    out.index.name = kind
    return out
