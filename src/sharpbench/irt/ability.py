"""Ability (theta) estimation for fixed item parameters: MLE, MAP and EAP.

Prior on theta: N(0, 1) (MAP, EAP). Standard errors: ``1/sqrt(I(theta))``
(MLE), ``1/sqrt(I(theta) + 1)`` (MAP), posterior SD (EAP). EAP integrates on
an even 121-node grid on [-6, 6]; where a posterior is narrower than three
node spacings (long tests) the grid cannot resolve it and the EAP is taken
from a Laplace approximation at the MAP (mean = mode, SD = 1/sqrt(I + 1)),
which is exact in that regime up to O(1/I).
"""

from __future__ import annotations

import warnings

import numpy as np

from sharpbench.irt.data import Responses
from sharpbench.irt.em import e_step
from sharpbench.irt.errors import IRTError
from sharpbench.irt.icc import log_sigmoid_pair
from sharpbench.irt.quadrature import make_quadrature

__all__ = ["eap_from_posterior", "estimate_abilities"]

_CHUNK_CELLS = 4_000_000


def _coords(a, d, g, u) -> dict[str, np.ndarray]:
    a = np.atleast_1d(np.asarray(a, dtype=float))
    c = {"a": a, "d": np.atleast_1d(np.asarray(d, dtype=float))}
    with np.errstate(divide="ignore"):
        if g is not None and np.any(np.asarray(g) > 0):
            gg = np.broadcast_to(np.asarray(g, float), a.shape)
            c["g"] = np.log(gg) - np.log1p(-gg)
        if u is not None and np.any(np.asarray(u) < 1):
            uu = np.broadcast_to(np.asarray(u, float), a.shape)
            c["u"] = np.log(uu) - np.log1p(-uu)
    return c


def _start_theta(yy: np.ndarray, obs: np.ndarray, theta0=None) -> np.ndarray:
    """Starting abilities: ``theta0`` if given, else the logit of each row's smoothed accuracy."""
    if theta0 is not None:
        return np.asarray(theta0, dtype=float).copy()
    acc = (yy.sum(1) + 0.5) / (obs.sum(1) + 1.0)
    return np.clip(np.log(acc / (1 - acc)), -4, 4)


def _newton(y: np.ndarray, a, d, g, u, prior_var: float | None, max_iter: int, tol: float, theta0=None):
    """Fisher scoring on theta for each row of y (NaN = missing); returns theta, info, converged."""
    if g is None and u is None:
        return _newton_2pl(y, a, d, prior_var, max_iter, tol, theta0)
    obs = ~np.isnan(y)
    yy = np.where(obs, y, 0.0)
    n = y.shape[0]
    theta = _start_theta(yy, obs, theta0)
    info = np.zeros(n)
    done = np.zeros(n, dtype=bool)
    g0 = np.zeros_like(a) if g is None else g
    u0 = np.ones_like(a) if u is None else u
    with np.errstate(divide="ignore"):
        log_scale = np.log(np.abs(a)) + np.log(u0 - g0)
    sign = np.sign(a)
    for _ in range(max_iter):
        z = np.multiply.outer(theta, a) + d
        ls, l1 = log_sigmoid_pair(z)
        with np.errstate(divide="ignore"):  # g and u not both None: the 2PL takes _newton_2pl
            lp = np.logaddexp(np.log(g0), np.log(u0 - g0) + ls)
            lq = np.logaddexp(np.log1p(-u0), np.log(u0 - g0) + l1)
        log_dp = log_scale + ls + l1  # log |dP/dtheta|
        w = sign * np.exp(log_dp - lp - lq)  # P' / (P Q)
        grad = (obs * (yy - np.exp(lp)) * w).sum(1)
        info = (obs * np.exp(2 * log_dp - lp - lq)).sum(1)
        if prior_var is not None:
            grad -= theta / prior_var
            info_s = info + 1.0 / prior_var
        else:
            info_s = info
        step = np.clip(grad / np.maximum(info_s, 1e-12), -1.0, 1.0)
        step[done] = 0.0
        theta = np.clip(theta + step, -50.0, 50.0)
        done |= np.abs(step) < tol
        if done.all():
            break
    return theta, info, done


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` in place (exact 0 and 1 in the overflowing tails)."""
    with np.errstate(over="ignore"):
        np.negative(z, out=z)
        np.exp(z, out=z)
    z += 1.0
    return np.divide(1.0, z, out=z)


def _newton_2pl(y: np.ndarray, a, d, prior_var: float | None, max_iter: int, tol: float, theta0=None):
    """Newton for the 2PL (canonical link: Fisher scoring = Newton), one ``expit`` per cell.

    Gradient ``sum_j a_j (y_ij - p_ij)`` and information ``sum_j a_j^2 p_ij (1 - p_ij)``
    are matrix-vector products; only rows not yet converged are recomputed.
    """
    obs = ~np.isnan(y)
    complete = bool(obs.all())
    yy = y if complete else np.where(obs, y, 0.0)
    n = y.shape[0]
    theta = _start_theta(yy, obs, theta0)
    a2 = a * a
    ya = yy @ a  # (n,): the observed part of the gradient never changes
    info = np.zeros(n)
    done = np.zeros(n, dtype=bool)
    todo = np.arange(n)
    buf_p, buf_w = np.empty(n * a.size), np.empty(n * a.size)
    for _ in range(max_iter):
        m = todo.size
        p = np.multiply.outer(theta[todo], a, out=buf_p[: m * a.size].reshape(m, a.size))
        p += d
        _sigmoid(p)
        if not complete:
            p *= obs[todo]  # missing cells: p = 0, so they add nothing below
        grad = ya[todo] - p @ a
        w = np.subtract(1.0, p, out=buf_w[: m * a.size].reshape(m, a.size))
        w *= p  # p (1 - p)
        inf_t = w @ a2
        info[todo] = inf_t
        if prior_var is not None:
            grad = grad - theta[todo] / prior_var
            inf_t = inf_t + 1.0 / prior_var
        step = np.clip(grad / np.maximum(inf_t, 1e-12), -1.0, 1.0)
        theta[todo] = np.clip(theta[todo] + step, -50.0, 50.0)
        fin = np.abs(step) < tol
        done[todo[fin]] = True
        todo = todo[~fin]
        if todo.size == 0:
            break
    return theta, info, done


def estimate_abilities(
    responses,
    a,
    d,
    g=None,
    u=None,
    method: str = "map",
    *,
    quadrature: str = "even:121",
    max_iter: int = 100,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Estimate abilities of respondents from their responses and fixed items.

    Parameters
    ----------
    responses : array_like (n, n_items)
        0/1 with NaN for missing cells.
    a, d, g, u : array_like (n_items,)
        Item parameters, slope-intercept logit ``a*theta + d``; g/u optional.
    method : {"map", "eap", "mle"}
        MLE of a respondent with all answers right (wrong) is +inf (-inf),
        returned as such with SE inf and a warning.

    Returns
    -------
    theta, se : ndarray (n,)
    """
    y = np.asarray(responses, dtype=float)
    a = np.atleast_1d(np.asarray(a, dtype=float))
    d = np.atleast_1d(np.asarray(d, dtype=float))
    if y.ndim != 2 or y.shape[1] != a.size or d.shape != a.shape:
        raise IRTError(f"responses {y.shape} do not match {a.size} items (a {a.shape}, d {d.shape})")
    g = None if g is None else np.broadcast_to(np.asarray(g, float), a.shape)
    u = None if u is None else np.broadcast_to(np.asarray(u, float), a.shape)
    if method not in ("map", "eap", "mle"):
        raise IRTError(f"unknown ability method {method!r}; use 'map', 'eap' or 'mle'")
    n = y.shape[0]
    theta = np.empty(n)
    se = np.empty(n)
    if method == "eap":
        quad = make_quadrature(quadrature)
        resp = Responses.from_values(y, dtype=np.float32 if y.size > 2_000_000 else np.float64, collapse=False)
        _, log_post, *_ = e_step(resp, quad, _coords(a, d, g, u), counts=False)
        return eap_from_posterior(y, a, d, g, u, log_post, quad.nodes, max_iter=max_iter, tol=tol)
    prior_var = 1.0 if method == "map" else None
    theta, se = _newton_chunked(y, a, d, g, u, prior_var, max_iter, tol)
    if method == "mle":
        inf = np.abs(theta) > 30
        if inf.any():
            warnings.warn(
                f"{int(inf.sum())} respondent(s) have no finite MLE (all answers right or wrong); "
                "returned +/-inf with SE inf: use method='map' or 'eap' for finite values",
                RuntimeWarning,
                stacklevel=2,
            )
            theta = np.where(inf, np.sign(theta) * np.inf, theta)
            se = np.where(inf, np.inf, se)
    return theta, se


def eap_from_posterior(y, a, d, g, u, log_post: np.ndarray, nodes: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6):
    """EAP and posterior SD from each row's log posterior on the even grid ``nodes``.

    Rows whose posterior is narrower than three node spacings get the Laplace
    approximation at the MAP instead (see the module docstring).
    ``log_post`` is (n, Q) for the n rows of ``y``.
    """
    post = np.exp(log_post)
    theta = post @ nodes
    se = np.sqrt(np.maximum(post @ nodes**2 - theta**2, 0.0))
    spacing = float(np.min(np.diff(nodes)))
    narrow = se < 3 * spacing
    if narrow.any():  # start at the grid EAP: already within a node spacing of the mode
        rows = np.flatnonzero(narrow)
        th_m, se_m = _newton_chunked(y, a, d, g, u, 1.0, max_iter, max(tol, 1e-5), rows=rows, theta0=theta[rows])
        theta[narrow], se[narrow] = th_m, se_m
    return theta, se


def _newton_chunked(y, a, d, g, u, prior_var, max_iter, tol, rows=None, theta0=None):
    """Newton over row chunks of ``y`` (only ``rows`` when given) without copying all of ``y``."""
    rows = np.arange(y.shape[0]) if rows is None else np.asarray(rows)
    n = rows.size
    step = max(1, _CHUNK_CELLS // max(y.shape[1], 1))
    theta, se = np.empty(n), np.empty(n)
    extra = 0.0 if prior_var is None else 1.0 / prior_var
    for s in range(0, n, step):
        idx = rows[s : s + step]
        t0 = None if theta0 is None else theta0[s : s + step]
        th, info, _ = _newton(y[idx], a, d, g, u, prior_var, max_iter, tol, theta0=t0)
        theta[s : s + step] = th
        with np.errstate(divide="ignore"):
            se[s : s + step] = 1.0 / np.sqrt(info + extra)
    return theta, se
