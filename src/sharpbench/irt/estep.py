"""E-step of the marginal-ML EM: posteriors over quadrature nodes and expected counts.

With N respondents, J items and Q nodes, the respondent log-likelihood at
every node is ``L = R @ (logP - logQ).T + O @ logQ.T``. For the 1PL/2PL the
first product collapses to ``outer(R @ a, nodes) + R @ d`` (N x J); the
second is a row sum of ``logQ`` when nothing is missing, minus a correction
over the missing cells when few are (:class:`~sharpbench.irt.data.MissingCells`),
and a matrix product otherwise. Expected counts ``r1 = post.T @ R`` and
``n = post.T @ O`` cost N x J x Q each (``n`` is free when nothing is
missing, nearly free with few missing cells). All probabilities stay in log
space.
"""

from __future__ import annotations

import numpy as np

from sharpbench.irt.data import Responses
from sharpbench.irt.icc import log_probs
from sharpbench.irt.mstep2pl import FactoredCounts, Workspace, _exp_safe, _log1p_exp
from sharpbench.irt.quadrature import Quadrature

__all__ = ["e_step", "expected_counts", "natural", "posterior"]


def natural(coords: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Optimiser coordinates -> natural ``(a, d, g, u)``; g and u live on the logit scale."""
    g = 1.0 / (1.0 + np.exp(-coords["g"])) if "g" in coords else None
    u = 1.0 / (1.0 + np.exp(-coords["u"])) if "u" in coords else None
    return coords["a"], coords["d"], g, u


def _rows_times(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``X (N, J) @ Y (J, Q)``, in the orientation OpenBLAS runs fast (it is slow for N << Q)."""
    return (Y.T @ X.T).T if X.shape[0] < Y.shape[1] else X @ Y


def _post_times(Pt: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``Pt (Q, N) @ X (N, J)``, in the faster orientation for wide X."""
    return (X.T @ Pt.T).T if X.shape[1] > Pt.shape[0] else Pt @ X


def e_step(resp: Responses, quad: Quadrature, coords: dict[str, np.ndarray], counts: bool = True, ws: Workspace | None = None):
    """One E-step.

    Returns ``(loglik, log_post (N, Q), r1 (Q, J), n (Q, J) or (Q, 1), mass (Q,))``:
    expected correct answers and administrations of each item at each node,
    and the pooled posterior mass per node (the last three ``None`` when
    ``counts=False``).
    """
    loglik, log_post, post = posterior(resp, quad, coords, ws)
    if not counts:
        return loglik, log_post, None, None, None
    r1, n = expected_counts(resp, post, ws)
    return loglik, log_post, r1, n, post.sum(axis=0)


def posterior(resp: Responses, quad: Quadrature, coords: dict[str, np.ndarray], ws: Workspace | None = None):
    """Marginal log-likelihood and each respondent's posterior over the nodes.

    Returns ``(loglik, log_post (N, Q), post (N, Q))``; ``post`` is multiplied
    by the row weights when rows were collapsed (so its column sums are the
    pooled posterior mass per node).
    """
    a, d, g, u = natural(coords)
    th = quad.nodes
    dt = resp.R.dtype
    if g is None and u is None:
        # 2PL: log(1 - P) = -softplus(z); the correct-answer part is linear in theta
        ws = ws or Workspace()
        z = np.multiply.outer(th, a, out=ws.get("ez", (th.size, a.size)))
        z += d
        nlq = _log1p_exp(z, z, _exp_safe(th, a, d))  # -log(1 - P), in place of z
        L = np.outer(resp.R @ a.astype(dt), th) + (resp.R @ d.astype(dt))[:, None]
        sign = -1.0
    else:
        lp, nlq = log_probs(th, a, d, g, u)
        L = _rows_times(resp.R, (lp - nlq).T.astype(dt))
        sign = 1.0
    L = L.astype(np.float64, copy=False)
    # L += sign * O @ nlq.T  (log(1 - P) summed over each respondent's observed items)
    if resp.O is None or resp.missing is not None:
        L += sign * nlq.sum(axis=1)[None, :]
        if resp.missing is not None:  # minus the few missing cells
            L[resp.missing.urows] -= sign * resp.missing.row_sums(nlq)
    else:
        L += sign * _rows_times(resp.O, nlq.T.astype(dt, copy=False))
    L += quad.log_weights[None, :]
    m = L.max(axis=1, keepdims=True)
    L -= m
    post = np.exp(L)
    s = post.sum(axis=1, keepdims=True)
    post /= s
    lse = (m + np.log(s))[:, 0]
    log_post = L - np.log(s)
    loglik = float(lse.sum() if resp.weights is None else lse @ resp.weights)
    if resp.weights is not None:
        post *= resp.weights[:, None]
    return loglik, log_post, post


def expected_counts(resp: Responses, post: np.ndarray, ws: Workspace | None = None, factored: bool = False):
    """Expected correct answers ``r1 (Q, J)`` and administrations ``n`` ((Q, J), or (Q, 1)
    when nothing is missing) at the nodes of ``post (N, Q)`` (weighted posterior).

    ``factored=True`` returns ``r1`` as :class:`~sharpbench.irt.mstep2pl.FactoredCounts`
    (not multiplied out), which the 2PL M-step accepts.
    """
    dt = resp.R.dtype
    Q, J = post.shape[1], resp.R.shape[1]
    pt = np.ascontiguousarray(post.T, dtype=dt)
    if factored:
        r1 = FactoredCounts(pt, resp.R)
    elif ws is not None and dt == np.float64:
        r1 = np.matmul(pt, resp.R, out=ws.get("r1", (Q, J)))
    else:
        r1 = _post_times(pt, resp.R).astype(np.float64, copy=False)
    mass = post.sum(axis=0)
    if resp.complete:
        return r1, mass[:, None]
    if resp.missing is not None:
        n = ws.get("n", (Q, J)) if ws is not None else np.empty((Q, J))
        n[...] = mass[:, None]
        n[:, resp.missing.ucols] -= resp.missing.col_sums(post).T
        return r1, n
    return r1, _post_times(pt, resp.O).astype(np.float64, copy=False)
