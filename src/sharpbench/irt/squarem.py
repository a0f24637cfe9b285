"""SQUAREM acceleration of a monotone fixed-point map (Varadhan & Roland 2008, scheme S3).

EM converges linearly: each iteration shrinks the distance to the optimum
by the fraction of missing information, often 0.3 to 0.9 for IRT. SQUAREM
takes two EM steps ``x1 = F(x0)``, ``x2 = F(x1)`` and jumps along the
squared extrapolation

    x' = x0 - 2 alpha r + alpha^2 v,   r = x1 - x0,  v = x2 - 2 x1 + x0,
    alpha = -|r| / |v|  (clamped to [-step_max, -1]; -1 gives back x2),

then applies one more EM step at ``x'`` (stabilisation). The objective at
``x'`` comes for free with that step (the E-step computes it), so the
safeguard costs nothing unless it fires: when ``x'`` is worse than ``x1``
(whose objective the second step computed) the jump is discarded, the
cycle restarts from the plain EM iterate ``x2`` and ``step_max`` shrinks.
So the objective at the start of every cycle never decreases (up to the
map's own monotonicity). For a map that increases no known objective the
merit is the fixed-point residual ``|F(x) - x|`` instead (``merit="residual"``):
a jump is kept only when the residual at ``x'`` is no larger than at ``x1``.

Convergence is tested on every map evaluation exactly as for plain EM:
stop when one EM step changes no coordinate by more than ``tol``; or, with
``ftol > 0``, when two consecutive plain steps ``x -> F(x)`` (never across an
extrapolation) change the objective by less than ``ftol * |objective|``.
The second rule ends fits whose objective has settled while a few weakly
identified coordinates (3PL items on a flat ridge between guessing and
difficulty) still wander by more than ``tol``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["FixedPointResult", "squarem"]

#: evaluates the map at x: returns (objective at x, F(x))
StepFn = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass
class FixedPointResult:
    x: np.ndarray
    n_evals: int  # map evaluations (one E-step and one M-step each)
    converged: bool
    history: list[float]  # objective at each evaluated point
    n_rejected: int  # extrapolations discarded by the safeguard
    reason: str = ""  # "parameters" (change < tol), "objective" (relative change < ftol) or "max_evals"
    last_change: float = float("nan")  # largest coordinate change of the last evaluation


def _norm(x: np.ndarray) -> float:
    return float(np.sqrt(x @ x))


def _change(x: np.ndarray, y: np.ndarray, scale: Callable[[np.ndarray], np.ndarray] | None) -> float:
    if scale is not None:
        x, y = scale(x), scale(y)
    return float(np.abs(y - x).max(initial=0.0))


def squarem(
    step: StepFn,
    x0: np.ndarray,
    *,
    tol: float,
    max_evals: int,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    change_scale: Callable[[np.ndarray], np.ndarray] | None = None,
    on_reject: Callable[[], None] | None = None,
    callback: Callable[[int, float, float], None] | None = None,
    accelerate: bool = True,
    merit: str = "objective",
    step_max: float = 1.0,
    mstep: float = 4.0,
    ftol: float = 0.0,
) -> FixedPointResult:
    """Iterate ``step`` to a fixed point, with SQUAREM jumps when ``accelerate``.

    Parameters
    ----------
    step : callable
        ``x -> (objective(x), F(x))`` with F monotone in the objective (EM).
    x0 : ndarray (P,)
    tol : float
        Stop once ``max |change_scale(F(x)) - change_scale(x)| < tol``.
    max_evals : int
        Budget of map evaluations.
    lower, upper : ndarray (P,), optional
        Box the extrapolated point is clipped to.
    change_scale : callable, optional
        Elementwise transform applied before measuring changes (e.g. logits
        to probabilities).
    on_reject : callable, optional
        Called when an extrapolation is discarded (e.g. to reset caches tied
        to the last evaluated point).
    callback : callable, optional
        ``callback(n_evals, objective, change)`` after every evaluation.
    accelerate : bool
        False: plain fixed-point iteration.
    merit : {"objective", "residual"}
        What the safeguard compares: the objective (for maps that increase it,
        such as EM), or the Euclidean fixed-point residual ``|F(x) - x|`` (for
        maps whose fixed point maximises nothing the caller can evaluate).
    ftol : float
        Also stop when two consecutive plain steps change the objective by
        less than ``ftol * max(1, |objective|)`` (0: never).
    """
    if merit not in ("objective", "residual"):
        raise ValueError(f"merit must be 'objective' or 'residual', got {merit!r}")
    x = np.asarray(x0, dtype=float).copy()
    history: list[float] = []
    n = 0
    rejected = 0
    last = float("nan")

    def evaluate(point: np.ndarray) -> tuple[float, np.ndarray, float]:
        nonlocal n, last
        obj, new = step(point)
        n += 1
        history.append(obj)
        delta = _change(point, new, change_scale)
        last = delta
        if callback is not None:
            callback(n, obj, delta)
        return obj, new, delta

    def done(x_out, reason):
        return FixedPointResult(x=x_out, n_evals=n, converged=reason != "max_evals", history=history,
                                n_rejected=rejected, reason=reason, last_change=last)

    def settled(f0: float | None, f1: float) -> bool:
        return ftol > 0 and f0 is not None and abs(f1 - f0) < ftol * max(1.0, abs(f1))

    prev: float | None = None  # objective at x when x is the plain step F of the previous point
    while n < max_evals:
        l0, x1, delta = evaluate(x)
        if delta < tol:
            return done(x1, "parameters")
        if settled(prev, l0):
            return done(x1, "objective")
        if not accelerate or n >= max_evals:
            x, prev = x1, l0
            continue
        l1, x2, delta = evaluate(x1)
        if delta < tol:
            return done(x2, "parameters")
        if settled(l0, l1):
            return done(x2, "objective")
        prev = None
        r = x1 - x
        v = x2 - x1 - r
        sr, sv = _norm(r), _norm(v)
        alpha = min(step_max, sr / sv) if sv > 0 else 1.0
        if alpha <= 1.0 + 1e-2 or n >= max_evals:
            if alpha >= step_max:  # the cap bound: allow longer jumps next time
                step_max *= mstep
            x, prev = x2, l1
            continue
        xe = x + 2.0 * alpha * r + alpha * alpha * v
        if lower is not None or upper is not None:
            xe = np.clip(xe, lower, upper)
        le, x3, delta = evaluate(xe)
        if merit == "objective":
            worse = le < l1 - 1e-9 * (1.0 + abs(l1))
        else:  # fixed-point residual, Euclidean, compared with the one at x1
            worse = _norm(x3 - xe) > _norm(x2 - x1)
        if not np.isfinite(le) or not np.isfinite(x3).all() or worse:
            rejected += 1
            if on_reject is not None:
                on_reject()
            step_max = max(1.0, step_max / mstep)
            x, prev = x2, l1
            continue
        if delta < tol:
            return done(x3, "parameters")
        if alpha >= step_max:
            step_max *= mstep
        x, prev = x3, le
    return done(x, "max_evals")
