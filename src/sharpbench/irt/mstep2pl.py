"""Fused Newton M-step for the 2PL (free ``a, d``, no asymptotes).

The generic Fisher-scoring M-step in :mod:`sharpbench.irt.em` evaluates the
(Q, J) logits and their transcendental functions four times per step
(objective, gradient, trial objective, ...). For the 2PL the expected
complete-data log-likelihood of item j is

    f_j = sum_q r1_qj * z_qj + n_qj * log(1 - sigmoid(z_qj)),  z = a_j * theta_q + d_j,

whose gradient and (exact, canonical-link) Hessian use the same
``sigmoid(z)``. This module computes value, gradient and Hessian from one
pass over ``E = exp(-z)`` (``log sigmoid(z) = -log(1 + E)``, ``sigmoid(z) =
1 / (1 + E)``, ``1 - sigmoid(z) = E * sigmoid(z)``), reduces over nodes with
one matrix product per quantity, and solves the 2 x 2 Newton systems in
closed form. All (Q, J) temporaries live in a :class:`Workspace` reused
across EM iterations (no allocation, no page faults per pass). The trial
point costs one more, shorter pass; step halving per item keeps the
penalised objective monotone exactly as in the generic step.

``E`` stays finite (float64) for ``|z| < 700``; logits beyond that (slopes
at their bound times far-out nodes) take the overflow-free
``log1p(exp(-|z|))`` path instead.
"""

from __future__ import annotations

import numpy as np

from sharpbench.irt.priors import BOUNDS, ItemPrior

__all__ = ["FactoredCounts", "Workspace", "ascent_certified", "m_step_2pl"]

_EXP_SAFE = 700.0


class Workspace:
    """Reusable flat float64 buffers handing out C-contiguous (rows, cols) views."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        size = shape[0] * shape[1]
        buf = self._bufs.get(name)
        if buf is None or buf.size < size:
            buf = np.empty(size)
            self._bufs[name] = buf
        return buf[:size].reshape(shape)


def _neg_logits(theta: np.ndarray, a: np.ndarray, d: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``-(a * theta + d)`` of shape (Q, J) into ``out``."""
    np.multiply.outer(theta, -a, out=out)
    np.subtract(out, d, out=out)
    return out


def _log1p_exp(x: np.ndarray, out: np.ndarray, safe: bool) -> np.ndarray:
    """``log(1 + exp(x))`` into ``out`` (may alias ``x``); ``safe`` promises ``|x| < 700``."""
    if safe:
        np.exp(x, out=out)
        np.log1p(out, out=out)
    else:
        pos = np.maximum(x, 0.0)  # before ``out`` (which may alias ``x``) is overwritten
        np.abs(x, out=out)
        np.negative(out, out=out)
        np.exp(out, out=out)
        np.log1p(out, out=out)
        out += pos
    return out


def _exp_safe(theta: np.ndarray, a: np.ndarray, d: np.ndarray) -> bool:
    if a.size == 0:
        return True
    return float(np.abs(theta).max() * np.abs(a).max() + np.abs(d).max()) < _EXP_SAFE


class FactoredCounts:
    """Expected correct answers ``r1 = post_t @ R`` (Q, J), kept as its two factors.

    The Newton step needs ``r1`` only through ``T @ r1`` for two node weights
    ``T`` (theta and 1), a (2, N) @ (N, J) product instead of the (Q, N) @ (N, J)
    one that forms ``r1``; whole columns are formed only for the items whose step
    must be checked against the objective.
    """

    def __init__(self, post_t: np.ndarray, R: np.ndarray) -> None:
        if post_t.shape[1] != R.shape[0]:
            raise ValueError(f"posterior {post_t.shape} does not match responses {R.shape}")
        self.post_t, self.R = post_t, R
        self.shape = (post_t.shape[0], R.shape[1])

    def moments(self, T: np.ndarray) -> np.ndarray:
        """``T (k, Q) @ r1`` -> (k, J)."""
        left = (T @ self.post_t).astype(self.R.dtype, copy=False)
        return np.asarray(left @ self.R, dtype=np.float64)

    def columns(self, idx: np.ndarray | None = None) -> np.ndarray:
        """``r1[:, idx]`` (all columns for None), float64."""
        R = self.R if idx is None else self.R[:, idx]
        return np.asarray(self.post_t @ R, dtype=np.float64)


class _DenseCounts:
    """:class:`FactoredCounts`' interface over an explicit ``r1`` array."""

    def __init__(self, r1: np.ndarray) -> None:
        self.r1, self.shape = r1, r1.shape

    def moments(self, T: np.ndarray) -> np.ndarray:
        return T @ self.r1

    def columns(self, idx: np.ndarray | None = None) -> np.ndarray:
        return self.r1 if idx is None else self.r1[:, idx]


def _value_parts(
    theta: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    r1: np.ndarray | None,
    n: np.ndarray,
    want_grad: bool,
    n0: np.ndarray | None = None,
    ws: Workspace | None = None,
    want_value: bool = True,
    r1_moments: np.ndarray | None = None,
):
    """Objective per item (without prior); with ``want_grad`` also gradient and Hessian pieces.

    Parameters
    ----------
    theta : ndarray (Q,)
    a, d : ndarray (J,)
    r1 : ndarray (Q, J) or None
        Expected correct answers (None when only the gradient is wanted and
        ``r1_moments`` is given).
    n : ndarray (Q, J), or (Q, 1) when only the gradient is wanted
        Expected administrations.
    n0 : ndarray (Q, J), optional
        ``n - r1`` (computed when not given).
    ws : Workspace, optional
    want_value : bool
        False skips the objective (one ``log1p`` pass and two reductions).
    r1_moments : ndarray (2, J), optional
        ``[theta @ r1, r1.sum(0)]``, the only way the gradient depends on ``r1``.

    Returns
    -------
    f : ndarray (J,), or None
    parts : ``(g_a, g_d, h_aa, h_ad, h_dd)`` each (J,), or None
    """
    Q, J = theta.size, a.size
    value = want_value or not want_grad
    if n.shape[0] != Q or n.shape[1] not in ((1, J) if not value else (J,)):
        raise ValueError(f"n {n.shape} does not match {Q} nodes x {J} items")
    if (r1 is None and (value or r1_moments is None)) or (r1 is not None and r1.shape != (Q, J)):
        raise ValueError(f"r1 {None if r1 is None else r1.shape} does not match {Q} nodes x {J} items")
    ws = ws or Workspace()
    zn = _neg_logits(theta, a, d, ws.get("zn", (Q, J)))  # -z
    safe = _exp_safe(theta, a, d)
    f = None
    if value:
        if n0 is None:
            n0 = n - r1
        soft = _log1p_exp(zn, ws.get("soft", (Q, J)), safe)  # -log sigmoid(z)
        # r1*z + n*log(1 - s) = r1*z + n*(log s - z) = -(n - r1)*z - n*softplus(-z)
        f = np.einsum("qj,qj->j", n0, zn) - np.einsum("qj,qj->j", n, soft)
    if not want_grad:
        return f, None
    e = ws.get("e", (Q, J))
    p = ws.get("p", (Q, J))
    if safe:
        np.exp(zn, out=e)  # exp(-z)
        np.add(e, 1.0, out=p)
        np.divide(1.0, p, out=p)  # sigmoid(z)
        e *= p  # 1 - sigmoid(z)
    else:
        from scipy.special import expit

        expit(-zn, out=p)
        expit(zn, out=e)
    T = np.stack([theta * theta, theta, np.ones_like(theta)])
    if r1_moments is None:
        r1_moments = T[1:] @ r1
    np.multiply(n, p, out=p)  # n p
    g_a, g_d = r1_moments - T[1:] @ p  # sum_q (theta, 1) (r1 - n p)
    p *= e  # w = n p (1 - p)
    h_aa, h_ad, h_dd = T @ p
    return f, (g_a, g_d, h_aa, h_ad, h_dd)


def m_step_2pl(
    theta: np.ndarray,
    r1: np.ndarray,
    n: np.ndarray,
    coords: dict[str, np.ndarray],
    prior: ItemPrior,
    n_steps: int = 1,
    max_halvings: int = 10,
    ws: Workspace | None = None,
) -> dict[str, np.ndarray]:
    """Newton steps on ``(a, d)`` of every item at once, monotone per item.

    A step that :func:`ascent_certified` proves uphill is taken without
    evaluating the objective; the others are checked against the objective
    and halved until it does not decrease (at most ``max_halvings`` times,
    else the item keeps its value).

    Parameters
    ----------
    theta : ndarray (Q,)
        Node positions.
    r1 : ndarray (Q, J) or FactoredCounts
        Expected correct answers per node and item.
    n : ndarray (Q, J) or (Q, 1)
        Expected administrations per node and item (one column: all items alike).
    coords : dict with ``"a"``, ``"d"`` of shape (J,)
    prior : ItemPrior
        Gaussian or flat on ``a`` and ``d``.
    ws : Workspace, optional
        Buffers reused across calls.
    """
    a, d = coords["a"].copy(), coords["d"].copy()
    J = a.size
    counts = r1 if isinstance(r1, FactoredCounts) else _DenseCounts(np.asarray(r1))
    if counts.shape != (theta.size, J) or n.shape[0] != theta.size or n.shape[1] not in (1, J):
        raise ValueError(f"r1 {counts.shape} / n {n.shape} do not match {theta.size} nodes x {J} items")
    ws = ws or Workspace()
    moments = counts.moments(np.stack([theta, np.ones_like(theta)]))
    n_item = np.ones(theta.size) @ n  # expected administrations per item
    if n_item.size == 1:
        n_item = np.full(J, float(n_item[0]))
    t_max = float(np.abs(theta).max(initial=0.0))
    lo_a, hi_a = BOUNDS["a"]
    lo_d, hi_d = BOUNDS["d"]
    for _ in range(n_steps):
        _, parts = _value_parts(theta, a, d, None, n, True, ws=ws, want_value=False, r1_moments=moments)
        g_a, g_d, h_aa, h_ad, h_dd = parts
        pg, pi = prior.grad_info("a", a)
        g_a, h_aa = g_a + pg, h_aa + pi + 1e-8
        pg, pi = prior.grad_info("d", d)
        g_d, h_dd = g_d + pg, h_dd + pi + 1e-8
        det_raw = h_aa * h_dd - h_ad * h_ad
        det = np.where(det_raw > 1e-300, det_raw, 1e-300)
        s_a = (h_dd * g_a - h_ad * g_d) / det
        s_d = (h_aa * g_d - h_ad * g_a) / det
        big = np.maximum(np.abs(s_a), np.abs(s_d))
        cap = np.minimum(1.0, 2.0 / np.maximum(big, 1e-300))
        s_a *= cap
        s_d *= cap
        new_a = np.clip(a + s_a, lo_a, hi_a)
        new_d = np.clip(d + s_d, lo_d, hi_d)
        sure = ascent_certified(s_a, s_d, h_aa, h_ad, h_dd, n_item, t_max)
        sure &= (det_raw > 1e-300) & (new_a == a + s_a) & (new_d == d + s_d)
        todo = np.flatnonzero(~sure)
        if todo.size:
            na, nd = _line_search(theta, a, d, s_a, s_d, todo, (counts, n), prior, max_halvings, ws)
            new_a[todo], new_d[todo] = na, nd
        a, d = new_a, new_d
        if max(np.abs(s_a).max(initial=0.0), np.abs(s_d).max(initial=0.0)) < 1e-7:
            break
    out = dict(coords)
    out["a"], out["d"] = a, d
    return out


#: max over z of |softplus'''(z)| = max s (1 - s) |1 - 2 s| = 1 / (6 sqrt 3), divided by 3! = 6
_C3 = 1.0 / (36.0 * np.sqrt(3.0))


def ascent_certified(s_a, s_d, h_aa, h_ad, h_dd, n_item, t_max) -> np.ndarray:
    """True for items whose (capped) Newton step provably does not lower the objective.

    Along the step ``s = c H^-1 g`` (``c <= 1``; ``H`` the negative Hessian
    plus prior information plus a 1e-8 ridge, so at least the exact negative
    Hessian) the objective changes by at least ``s'Hs / c - s'Hs / 2 - C3 *
    sum_q n_q |s_a t_q + s_d|^3``: the first two terms are the first- and
    second-order Taylor terms (a Gaussian prior has no higher ones), the last
    bounds the third-order remainder of the data term by the largest third
    derivative of the softplus, ``1 / (6 sqrt 3)``. With ``|s_a t_q + s_d| <=
    m = |s_a| t_max + |s_d|`` and ``sum_q n_q = n_item`` the step is uphill
    whenever ``s'Hs / 2 >= C3 m^3 n_item``, which holds for every item once EM
    is near its fixed point (steps of about 1e-2 and below).

    Parameters
    ----------
    s_a, s_d, h_aa, h_ad, h_dd, n_item : ndarray (J,)
    t_max : float
        Largest ``|theta|`` among the nodes.
    """
    qf = s_a * s_a * h_aa + 2.0 * s_a * s_d * h_ad + s_d * s_d * h_dd
    m = np.abs(s_a) * t_max + np.abs(s_d)
    return 0.5 * qf * (1.0 - 1e-9) >= _C3 * m**3 * n_item


def _line_search(theta, a, d, s_a, s_d, todo, counts, prior, max_halvings, ws):
    """Step halving on the items ``todo`` until the penalised objective does not decrease."""
    lo_a, hi_a = BOUNDS["a"]
    lo_d, hi_d = BOUNDS["d"]
    counts, n = counts
    r1 = counts.columns(todo if todo.size < a.size else None)
    n = np.ascontiguousarray(np.broadcast_to(n, r1.shape) if n.shape[1] == 1 else n[:, todo])
    n0 = n - r1
    a0, d0, sa, sd = a[todo], d[todo], s_a[todo], s_d[todo]
    f_old, _ = _value_parts(theta, a0, d0, r1, n, False, n0=n0, ws=ws)
    f_old = f_old + prior.logpdf("a", a0) + prior.logpdf("d", d0)
    out_a, out_d = a0.copy(), d0.copy()
    t = np.ones(todo.size)
    left = np.arange(todo.size)
    for _half in range(max_halvings):
        ta = np.clip(a0[left] + t[left] * sa[left], lo_a, hi_a)
        td = np.clip(d0[left] + t[left] * sd[left], lo_d, hi_d)
        sub = (r1, n, n0) if left.size == todo.size else (r1[:, left], n[:, left], n0[:, left])
        ft, _ = _value_parts(theta, ta, td, sub[0], sub[1], False, n0=sub[2], ws=ws)
        ft = ft + prior.logpdf("a", ta) + prior.logpdf("d", td)
        fo = f_old[left]
        ok = ft >= fo - 1e-10 * (1 + np.abs(fo))
        out_a[left[ok]], out_d[left[ok]] = ta[ok], td[ok]
        left = left[~ok]
        if left.size == 0:
            break
        t[left] *= 0.5
    return out_a, out_d
