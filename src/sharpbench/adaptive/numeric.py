"""Numeric core of adaptive testing for ONE respondent: response probabilities,
Fisher and Kullback-Leibler item information, MAP / EAP ability updates.

Probabilities, Fisher information and ability estimation come from
:mod:`sharpbench.irt` (``icc.probability``, ``information.item_information``,
``ability.estimate_abilities``); this module adds what a CAT loop needs on
top: KL information, a single-respondent ability update with a general normal
prior N(mu, sigma^2) (by rescaling the items to the N(0, 1) scale the IRT
estimators use), clipping to a sane theta range and a prior-only estimate
before the first answer. Item parameters follow the slope-intercept form
``P = g + (u - g) * sigmoid(a * theta + d)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sharpbench.errors import InputError
from sharpbench.irt.ability import estimate_abilities
from sharpbench.irt.icc import probability as prob
from sharpbench.irt.information import item_information as fisher_information

__all__ = [
    "THETA_BOUNDS",
    "AbilityError",
    "AbilityEstimate",
    "estimate_ability",
    "fisher_information",
    "kl_information",
    "prob",
]

#: Ability estimates are clipped to this range (the logit scale of the bank).
THETA_BOUNDS: tuple[float, float] = (-6.0, 6.0)


class AbilityError(InputError, ValueError):
    """Inputs to an ability update are inconsistent."""


@dataclass(frozen=True)
class AbilityEstimate:
    """Ability estimate of one respondent.

    Attributes
    ----------
    theta : float
        Point estimate (MAP mode or EAP mean), clipped to the bounds.
    se : float
        Posterior standard deviation (EAP) or ``1/sqrt(test info + prior info)`` (MAP).
    method : str
        ``"map"``, ``"eap"`` or ``"start"`` (before any answer).
    """

    theta: float
    se: float
    method: str


def kl_information(theta_hat: float, n_administered: int, a, d, g=None, u=None, *,
                   z: float = 3.0, n_points: int = 21) -> np.ndarray:
    """Chang & Ying (1996) global KL information of each item, shape (n_items,).

    ``KL_j = integral over |theta - theta_hat| <= z / sqrt(n) of
    KL(P_j(theta_hat) || P_j(theta)) dtheta`` with ``n = max(n_administered, 1)``:
    wide early in the test (when ``theta_hat`` is uncertain), local later.
    """
    half = z / np.sqrt(max(int(n_administered), 1))
    grid = np.linspace(theta_hat - half, theta_hat + half, n_points)
    eps = 1e-12
    p0 = np.clip(prob(theta_hat, a, d, g, u)[0], eps, 1 - eps)
    p = np.clip(prob(grid, a, d, g, u), eps, 1 - eps)
    kl = p0 * np.log(p0 / p) + (1 - p0) * np.log((1 - p0) / (1 - p))
    return np.trapezoid(kl, grid, axis=0)


def estimate_ability(
    responses,
    a,
    d,
    g=None,
    u=None,
    *,
    method: str = "map",
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
    bounds: tuple[float, float] = THETA_BOUNDS,
) -> AbilityEstimate:
    """MAP or EAP ability of one respondent under a N(prior_mean, prior_sd^2) prior.

    Parameters
    ----------
    responses : array of shape (n_items,)
        Scores in {0, 1}; NaN cells are ignored.
    a, d, g, u : arrays of shape (n_items,)
        Item parameters of the administered items.
    method : {"map", "eap"}
    prior_mean, prior_sd : float
        Normal prior on theta. The items are rescaled to ``z = (theta - mu) / sd``
        (``a' = a sd``, ``d' = d + a mu``) so that :func:`sharpbench.irt.ability.estimate_abilities`
        (N(0, 1) prior) applies; theta and SE are mapped back.
    bounds : (float, float)
        Theta is clipped to this range.

    Returns
    -------
    AbilityEstimate
        With no observed responses, the prior (``prior_mean``, ``prior_sd``).
    """
    a = np.atleast_1d(np.asarray(a, dtype=float))
    d = np.atleast_1d(np.asarray(d, dtype=float))
    y = np.atleast_1d(np.asarray(responses, dtype=float))
    if a.ndim != 1 or d.shape != a.shape or y.shape != a.shape:
        raise AbilityError(f"responses {y.shape}, a {a.shape} and d {d.shape} must be 1-D of equal length")
    if method not in ("map", "eap"):
        raise AbilityError(f"unknown ability method {method!r}; use 'map' or 'eap'")
    if not prior_sd > 0:
        raise AbilityError(f"prior_sd must be > 0, got {prior_sd}")
    lo, hi = bounds
    keep = ~np.isnan(y)
    if not keep.any():
        return AbilityEstimate(float(np.clip(prior_mean, lo, hi)), float(prior_sd), method)
    g_k = None if g is None else np.broadcast_to(np.asarray(g, float), a.shape)[keep]
    u_k = None if u is None else np.broadcast_to(np.asarray(u, float), a.shape)[keep]
    a_k, d_k = a[keep], d[keep]
    z, se_z = estimate_abilities(y[keep][None, :], a_k * prior_sd, d_k + a_k * prior_mean, g_k, u_k, method=method)
    theta = prior_mean + prior_sd * float(z[0])
    se = prior_sd * float(se_z[0])
    if not (np.isfinite(theta) and np.isfinite(se)):
        raise AbilityError(f"ability estimate is not finite (theta={theta}, se={se}); check the item parameters")
    return AbilityEstimate(float(np.clip(theta, lo, hi)), se, method)
