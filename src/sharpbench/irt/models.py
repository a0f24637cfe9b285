"""Unidimensional logistic IRT models fitted by marginal ML / MAP with EM.

``OnePL`` (Rasch-type: one common slope, theta ~ N(0, 1)), ``TwoPL``,
``ThreePL`` (lower asymptote estimated, or fixed with ``guess=``) and
``FourPL`` (plus upper asymptote). All report slope-intercept parameters
``a*theta + d`` together with ``b = -d/a``.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.choices import IRT_MODELS
from sharpbench.irt.ability import eap_from_posterior, estimate_abilities
from sharpbench.irt.data import Responses, column_stats, row_chunks, start_values
from sharpbench.irt.em import natural, run_em
from sharpbench.irt.errors import IRTConvergenceError, IRTConvergenceWarning, IRTError
from sharpbench.irt.priors import (
    BOUNDS,
    ItemPrior,
    resolve_prior,
    with_asymptote_priors,
)
from sharpbench.irt.quadrature import make_quadrature, resolve_rule
from sharpbench.irt.result import IRTFit, as_matrix
from sharpbench.matrix.core import ResponseMatrix

__all__ = ["MODELS", "FourPL", "OnePL", "ThreePL", "TwoPL", "as_matrix", "check_fit_input"]


class _ArrayMatrix:
    """Lightweight stand-in for a ResponseMatrix over a caller's array (no copy)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.models = tuple(f"r{i}" for i in range(values.shape[0]))
        self.items = tuple(f"i{j}" for j in range(values.shape[1]))
        self.shape = values.shape

    def binarize(self, threshold: float) -> _ArrayMatrix:
        v = self.values
        return _ArrayMatrix(np.where(np.isnan(v), np.nan, (v >= threshold).astype(float)))


def _unpack(data: Any):
    """ResponseMatrix as is; a plain 2-D float array wrapped without copying it."""
    if isinstance(data, np.ndarray) and data.ndim == 2 and not isinstance(data, np.matrix):
        v = np.asarray(data, dtype=float)
        if np.isinf(v).any():
            raise IRTError("values contain +/-inf; use NaN for missing cells")
        return _ArrayMatrix(v)
    return as_matrix(data)


def check_fit_input(m: ResponseMatrix, binarize: float | None = None) -> ResponseMatrix:
    """Binarise on request and reject matrices no IRT model can be fitted to.

    Works in row chunks (no full-size temporaries). Raises
    ------
    IRTError
        Non-binary scores without ``binarize``; an empty row or column; a
        matrix whose observed cells split into unlinked blocks (no overlap).
    """
    if binarize is not None:
        m = m.binarize(binarize)
    n, k = m.shape
    if n < 2 or k < 1:
        raise IRTError(f"need at least 2 respondents and 1 item, got {m.shape}")
    v = m.values
    complete = True
    for sl in row_chunks(n, k):
        blk = v[sl]
        miss = np.isnan(blk)
        complete &= not bool(miss.any())
        bad = ~((blk == 0) | (blk == 1) | miss)  # boolean temporaries only
        if bad.any():
            raise IRTError(
                f"cells are not 0/1 (e.g. {blk[bad][0]:g}); IRT needs binary correctness: "
                "binarise with binarize=0.5 (CLI: --binarize 0.5)"
            )
    cs = column_stats(v)
    empty_r = np.flatnonzero(cs.n_row == 0)
    empty_c = np.flatnonzero(cs.n_item == 0)
    if empty_r.size or empty_c.size:
        raise IRTError(
            f"{empty_r.size} respondent(s) (e.g. {[m.models[i] for i in empty_r[:3]]}) and "
            f"{empty_c.size} item(s) (e.g. {[m.items[j] for j in empty_c[:3]]}) have no observed cell; "
            "drop them with matrix.select(...) first"
        )
    if not complete and not _linked(v):
        raise IRTError(
            "the observed cells form unlinked blocks (no respondent/item overlap), so their "
            "abilities are not on a common scale; fit each block separately"
        )
    return m


def _linked(v: np.ndarray) -> bool:
    """True when every respondent is reachable from respondent 0 through shared items."""
    n, k = v.shape
    rows = np.zeros(n, dtype=bool)
    rows[0] = True
    items = np.zeros(k, dtype=bool)
    while True:
        new_items = items.copy()
        for sl in row_chunks(n, k):
            sel = rows[sl]
            if sel.any():
                new_items |= (~np.isnan(v[sl][sel])).any(axis=0)
        new_rows = rows.copy()
        idx = np.flatnonzero(new_items)
        for sl in row_chunks(n, idx.size):
            new_rows[sl] |= (~np.isnan(v[sl][:, idx])).any(axis=1)
        if new_rows.sum() == rows.sum() and new_items.sum() == items.sum():
            return bool(rows.all())
        rows, items = new_rows, new_items


_CONTROLLER = None


def _blas_controller():
    """One ``threadpoolctl.ThreadpoolController`` per process (building it scans every
    loaded library, ~15 ms; ``threadpool_limits`` would rescan on each fit)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController  # start-up time (scans the loaded BLAS libraries)

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def _busy() -> bool:
    """True when the 1-minute load average exceeds 3/4 of the CPUs (False where unknown)."""
    try:
        return os.getloadavg()[0] > 0.75 * (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return False


class _IRTModel:
    name = "2pl"
    _free: tuple[str, ...] = ("a", "d")
    _shared_a = False

    def __init__(
        self,
        *,
        prior: str | ItemPrior | dict | None = "auto",
        quadrature: str = "auto",
        max_iter: int = 500,
        tol: float = 1e-4,
        ftol: float | None = None,
        px: bool | str = "auto",
        dtype: str = "auto",
        binarize: float | None = None,
        ability_method: str = "eap",
        strict: bool = False,
        asymptote_prior: bool = True,
        blas_threads: int | str | None = "auto",
    ) -> None:
        self.prior = prior
        self.quadrature = quadrature
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.ftol = ftol
        self.px = px
        self.dtype = dtype
        self.binarize = binarize
        self.ability_method = ability_method
        self.strict = strict
        self.asymptote_prior = asymptote_prior
        self.blas_threads = blas_threads
        self.g_fixed: float | None = None
        self.u_fixed: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prior={self.prior!r}, quadrature={self.quadrature!r})"

    def free_params(self) -> tuple[str, ...]:
        return self._free

    def n_params(self, n_items: int) -> int:
        k = len(self.free_params())
        return n_items * (k - 1) + 1 if self._shared_a else n_items * k

    def fit(self, matrix: Any, callback=None) -> IRTFit:
        """Fit to a respondents x items matrix (ResponseMatrix, DataFrame or array with NaN).

        ``blas_threads="auto"`` runs the matrix products single-threaded when
        the matrix has fewer than 4 million cells (products too small for BLAS
        threads to pay off) or when the machine is busy (1-minute load average
        above 3/4 of the CPU count), where oversubscribed threads cost more
        than they save (measured 2x on ChemBench / MMLU-Pro and 1.6x on a
        2,000 x 5,000 matrix with load 5 on 2 cores).
        ``None`` leaves BLAS alone; an int sets the thread count.
        """
        t0 = time.perf_counter()
        m = check_fit_input(_unpack(matrix), self.binarize)
        threads = self.blas_threads
        if threads == "auto":
            threads = 1 if m.shape[0] * m.shape[1] < 4_000_000 or _busy() else None
        if threads is None:
            return self._fit(m, callback, t0)
        with _blas_controller().limit(limits=int(threads), user_api="blas"):
            return self._fit(m, callback, t0)

    def _fit(self, m: ResponseMatrix, callback, t0: float) -> IRTFit:
        y = m.values
        n, k = m.shape
        cs = column_stats(y)
        pv = cs.p_item
        const = (pv == 0) | (pv == 1)
        prior, label = resolve_prior(self.prior, n, bool(const.any()))
        free = self.free_params()
        if self.asymptote_prior:
            prior, added = with_asymptote_priors(prior, free)
            label = f"{label}+asymptote" if added else label
        rule = resolve_rule(self.quadrature, float(np.median(cs.n_row)))
        quad = make_quadrature(rule)
        if self.dtype == "auto":
            dt = np.float32 if n * k > 2_000_000 else np.float64
        else:
            dt = np.dtype(self.dtype).type
        resp = Responses.from_values(y, dtype=dt)
        coords = start_values(y, free, self._shared_a, self.g_fixed, self.u_fixed, stats=cs)
        px = self.px
        if px == "auto":
            # 1PL/2PL: plain PX-EM (its fixed point predicts held-out cells better than the MAP, see
            # run_em); with asymptotes its fixed point is far from the MAP (MMLU-Pro 3PL: held-out
            # -0.4457 vs -0.4427), so those models use the prior-aware PX-ECM, which converges to it
            px = "map" if ("g" in coords or "u" in coords) else True
        ftol = self.ftol
        if ftol is None:
            # 3PL/4PL: a few items sit on the flat ridge between guessing and difficulty and keep
            # moving by more than tol while the objective has long settled. 1PL/2PL fits reach tol,
            # and an objective rule would stop an all-correct item's intercept before its bound
            ftol = 1e-9 if ("g" in coords or "u" in coords) else 0.0
        res = run_em(
            resp, quad, coords, free, prior, shared_a=self._shared_a,
            max_iter=self.max_iter, tol=self.tol, px=px, callback=callback, ftol=float(ftol),
        )
        if not res.converged:
            msg = (
                f"{self.name} EM did NOT converge: stopped at max_iter={self.max_iter} iterations; the last "
                f"iteration still moved a parameter by {res.last_change:.3g} (tol={self.tol:g}) and the "
                f"penalised log-likelihood by more than ftol={ftol:g} relative. The estimates are not "
                "a maximum (fit.converged is False): raise max_iter, loosen tol/ftol, or use a stronger prior"
            )
            if self.strict:
                raise IRTConvergenceError(msg)
            warnings.warn(msg, IRTConvergenceWarning, stacklevel=3)
        a, d, g, u = natural(res.coords)
        items = self._item_table(m, cs, a, d, g, u, res.coords)
        eap_nodes = make_quadrature("even:121").nodes  # estimate_abilities' EAP grid
        if self.ability_method == "eap" and np.array_equal(quad.nodes, eap_nodes):
            # the final E-step already holds every row's posterior on that grid
            th, se = eap_from_posterior(y, a, d, g, u, resp.expand(res.log_posterior), quad.nodes)
        else:
            th, se = estimate_abilities(y, a, d, g, u, method=self.ability_method)
        del resp
        acc = cs.p_row
        abil = pd.DataFrame(
            {"theta": th, "se": se, "flag": np.where(acc == 1, "all_correct", np.where(acc == 0, "all_wrong", ""))},
            index=pd.Index(m.models, name="model"),
        )
        return IRTFit(
            model=self.name, items=items, abilities=abil, loglik=res.loglik,
            n_params=self.n_params(k), n_respondents=n, n_cells=int(cs.n_row.sum()),
            converged=res.converged, n_iter=res.n_iter, quadrature=quad.rule,
            prior=prior.to_dict(), prior_label=label, ability_method=self.ability_method,
            history=[float(h) for h in res.history], fit_seconds=time.perf_counter() - t0,
            stop_reason="max_iter" if res.stop_reason == "max_evals" else res.stop_reason,
            last_change=float(res.last_change),
        )

    def _item_table(self, m: ResponseMatrix, cs, a, d, g, u, coords) -> pd.DataFrame:
        pv = cs.p_item
        at_bound = np.zeros(a.size, dtype=bool)
        for key in self.free_params():
            lo, hi = BOUNDS[key]
            at_bound |= (coords[key] <= lo + 1e-9) | (coords[key] >= hi - 1e-9)
        flag = np.where(pv == 1, "all_correct", np.where(pv == 0, "all_wrong", np.where(at_bound, "at_bound", "")))
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(a != 0, -d / a, np.nan)
        if np.isnan(b).any():
            flag = np.where(np.isnan(b), "zero_slope", flag)
        if at_bound.any():
            warnings.warn(
                f"{int(at_bound.sum())} item(s) reached a parameter bound (flag 'at_bound'/'all_*'), typically "
                "items every respondent answered alike; use prior='weak' or drop them",
                RuntimeWarning,
                stacklevel=4,
            )
        return pd.DataFrame(
            {
                "a": a, "b": b, "d": d,
                "g": np.zeros_like(a) if g is None else g,
                "u": np.ones_like(a) if u is None else u,
                "n_obs": cs.n_item.astype(int), "p_value": pv, "flag": flag,
            },
            index=pd.Index(m.items, name="item"),
        )


class OnePL(_IRTModel):
    """One common slope for all items (Rasch model with the latent SD absorbed in ``a``)."""

    name = "1pl"
    _shared_a = True


class TwoPL(_IRTModel):
    """Two-parameter logistic model: ``P = 1 / (1 + exp(-(a*theta + d)))``."""

    name = "2pl"


class ThreePL(_IRTModel):
    """Adds a lower asymptote ``g``: estimated, or fixed to ``guess`` (e.g. 1/n_choices)."""

    name = "3pl"

    def __init__(self, *, guess: float | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        if guess is not None and not 0 < guess < 1:
            raise IRTError(f"guess must lie in (0, 1), got {guess}")
        self.g_fixed = guess

    def free_params(self) -> tuple[str, ...]:
        return ("a", "d") if self.g_fixed is not None else ("a", "d", "g")


class FourPL(ThreePL):
    """Adds an upper asymptote ``u`` (slips): estimated, or fixed to ``upper``."""

    name = "4pl"

    def __init__(self, *, guess: float | None = None, upper: float | None = None, **kw: Any) -> None:
        super().__init__(guess=guess, **kw)
        if upper is not None and not 0 < upper < 1:
            raise IRTError(f"upper must lie in (0, 1), got {upper}")
        self.u_fixed = upper

    def free_params(self) -> tuple[str, ...]:
        out = ["a", "d"]
        if self.g_fixed is None:
            out.append("g")
        if self.u_fixed is None:
            out.append("u")
        return tuple(out)


MODELS: dict[str, type[_IRTModel]] = {"1pl": OnePL, "rasch": OnePL, "2pl": TwoPL, "3pl": ThreePL, "4pl": FourPL}
assert set(MODELS) == {*IRT_MODELS, "rasch"}, "sharpbench.choices.IRT_MODELS names the models the CLI offers"
