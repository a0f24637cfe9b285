"""Response data in the form the EM engine multiplies with, built in row chunks.

Large matrices (e.g. 5,000 x 30,000) are processed in chunks of rows so that
no full-size float64 temporary is created besides the caller's own array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ColumnStats", "MissingCells", "Responses", "column_stats", "row_chunks", "start_values"]

_CHUNK_CELLS = 8_000_000
#: below this fraction of missing cells the E-step works with ``1 - missing`` (sparse) instead of
#: dense products with the observed mask
_SPARSE_MISSING = 0.05


def row_chunks(n_rows: int, n_cols: int, cells: int = _CHUNK_CELLS):
    """Yield ``slice`` objects covering the rows, each about ``cells`` cells."""
    step = max(1, cells // max(n_cols, 1))
    for s in range(0, n_rows, step):
        yield slice(s, min(s + step, n_rows))


class MissingCells:
    """Coordinates of the (few) missing cells, with per-row and per-column sums over them.

    With ``O = 1 - M`` (M the missing indicator), products with the observed
    mask become a full sum minus a correction touching only the missing cells.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray) -> None:
        order = np.lexsort((cols, rows))
        self.rows, self.cols = rows[order], cols[order]
        self.urows, self._rstart = np.unique(self.rows, return_index=True)
        self._corder = np.argsort(self.cols, kind="stable")
        self.ucols, self._cstart = np.unique(self.cols[self._corder], return_index=True)
        self._rows_by_col = self.rows[self._corder]

    def row_sums(self, X: np.ndarray) -> np.ndarray:
        """``sum over missing (i, j) of X[:, j]`` for each row i in ``urows``: (len(urows), Q)."""
        return np.add.reduceat(np.ascontiguousarray(X[:, self.cols].T), self._rstart, axis=0)

    def col_sums(self, post: np.ndarray) -> np.ndarray:
        """``sum over missing (i, j) of post[i, :]`` for each column j in ``ucols``: (len(ucols), Q)."""
        return np.add.reduceat(post[self._rows_by_col], self._cstart, axis=0)


@dataclass
class Responses:
    """Binary responses split into the two masks the E-step multiplies with.

    ``R[i, j] = 1`` where respondent i answered item j correctly, ``O`` the
    observed mask (``None`` when no cell is missing, or when the few missing
    cells are listed in ``missing`` instead).
    """

    R: np.ndarray
    O: np.ndarray | None
    n_obs: np.ndarray
    weights: np.ndarray | None = None  # frequency of each (unique) row; None = all 1
    inverse: np.ndarray | None = None  # original row -> unique row, when rows were collapsed
    missing: MissingCells | None = None  # the missing cells, when few (``O = 1 - missing``)

    @classmethod
    def from_values(cls, values: np.ndarray, dtype: type = np.float64, collapse: bool = True) -> Responses:
        """Masks from a (N, J) array with NaN; identical complete rows are collapsed
        into one weighted row when that saves work (short tests like LSAT7). Few
        missing cells (at most 5%) are kept as coordinates (``missing``, ``O`` None)."""
        v = np.asarray(values, dtype=float)
        if v.ndim != 2:
            raise ValueError(f"responses must be 2-D (respondents x items), got shape {v.shape}")
        n, k = v.shape
        n_obs = np.empty(n, dtype=np.int64)
        for sl in row_chunks(n, k):
            n_obs[sl] = k - np.isnan(v[sl]).sum(axis=1)
        n_miss = n * k - int(n_obs.sum())
        if collapse and n_miss == 0 and k <= 64 and n > 1:
            uniq, inverse, counts = np.unique(v, axis=0, return_inverse=True, return_counts=True)
            if uniq.shape[0] < 0.8 * n:
                return cls(R=uniq.astype(dtype), O=None, n_obs=np.full(uniq.shape[0], k),
                           weights=counts.astype(float), inverse=inverse.ravel())
        sparse = n_miss <= _SPARSE_MISSING * n * k
        R = np.empty((n, k), dtype=dtype)
        O = None if sparse else np.empty((n, k), dtype=dtype)
        rows, cols = [], []
        for sl in row_chunks(n, k):
            blk = v[sl]
            miss = np.isnan(blk)
            R[sl] = blk
            if n_miss:
                np.copyto(R[sl], 0.0, where=miss)
            if O is not None:
                np.logical_not(miss, out=O[sl], casting="unsafe")
            elif n_miss:
                flat = np.flatnonzero(miss)
                rows.append(flat // k + sl.start)
                cols.append(flat % k)
        missing = MissingCells(np.concatenate(rows), np.concatenate(cols)) if (sparse and n_miss) else None
        return cls(R=R, O=O, n_obs=n_obs, missing=missing)

    @property
    def complete(self) -> bool:
        """No missing cell."""
        return self.O is None and self.missing is None

    def expand(self, per_row: np.ndarray) -> np.ndarray:
        """Map a per-unique-row array back to the original rows."""
        return per_row if self.inverse is None else per_row[self.inverse]


@dataclass
class ColumnStats:
    """Per-item and per-respondent counts, computed in row chunks."""

    n_item: np.ndarray  # observed cells per item
    sum_item: np.ndarray  # correct answers per item
    n_row: np.ndarray  # observed cells per respondent
    sum_row: np.ndarray  # correct answers per respondent

    @property
    def p_item(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sum_item / self.n_item

    @property
    def p_row(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sum_row / self.n_row


def column_stats(values: np.ndarray) -> ColumnStats:
    """Counts of observed and correct cells per item and per respondent."""
    v = np.asarray(values, dtype=float)
    n, k = v.shape
    n_item, sum_item = np.zeros(k), np.zeros(k)
    n_row, sum_row = np.zeros(n), np.zeros(n)
    for sl in row_chunks(n, k):
        blk = v[sl]
        obs = ~np.isnan(blk)
        y = np.where(obs, blk, 0.0)
        n_item += obs.sum(0)
        sum_item += y.sum(0)
        n_row[sl] = obs.sum(1)
        sum_row[sl] = y.sum(1)
    return ColumnStats(n_item, sum_item, n_row, sum_row)


def start_values(
    values: np.ndarray, free: tuple[str, ...], shared_a: bool, g_fixed=None, u_fixed=None,
    stats: ColumnStats | None = None,
) -> dict[str, np.ndarray]:
    """Moment-based starting values from item p-values and item-score correlations
    (``stats``: the matrix's :func:`column_stats`, when the caller has them)."""
    v = np.asarray(values, dtype=float)
    n, k = v.shape
    cs = column_stats(v) if stats is None else stats
    n_i = np.maximum(cs.n_item, 1)
    p = (cs.sum_item + 0.5) / (n_i + 1.0)
    acc = (cs.sum_row + 0.5) / (cs.n_row + 1.0)
    t = np.log(acc / (1 - acc))
    t = (t - t.mean()) / (t.std() + 1e-9)
    st, st2, sty = np.zeros(k), np.zeros(k), np.zeros(k)
    for sl in row_chunks(n, k):
        blk = v[sl]
        obs = (~np.isnan(blk)).astype(float)
        ts = t[sl]
        st += ts @ obs
        st2 += (ts * ts) @ obs
        sty += ts @ np.where(obs > 0, blk, 0.0)
    mt = st / n_i
    cov = sty / n_i - mt * (cs.sum_item / n_i)
    sd_t = np.sqrt(np.maximum(st2 / n_i - mt**2, 1e-9))
    sd_y = np.sqrt(p * (1 - p))
    r = np.clip(cov / (sd_t * sd_y), 0.05, 0.9)
    a = np.clip(1.7 * r / np.sqrt(1 - r**2), 0.2, 3.0)
    if shared_a:
        a = np.full_like(a, float(np.median(a)))
    lp = np.log(p / (1 - p))
    d = lp * np.sqrt(1 + (a / 1.7) ** 2)
    coords = {"a": a, "d": d}
    if "g" in free or g_fixed is not None:
        g0 = np.full_like(a, 0.15) if g_fixed is None else np.broadcast_to(np.asarray(g_fixed, float), a.shape).copy()
        coords["g"] = np.log(g0 / (1 - g0))
    if "u" in free or u_fixed is not None:
        u0 = np.full_like(a, 0.98) if u_fixed is None else np.broadcast_to(np.asarray(u_fixed, float), a.shape).copy()
        coords["u"] = np.log(u0 / (1 - u0))
    return coords
