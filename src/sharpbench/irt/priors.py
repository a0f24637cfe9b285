"""Priors on item parameters (MAP estimation) and their named presets.

Every prior is stated in the coordinates the optimiser uses:

* slope ``a ~ Normal(a_mean, a_sd)`` (negative slopes stay possible);
* intercept ``d ~ Normal(0, d_sd)`` (slope-intercept logit ``a*theta + d``);
* lower asymptote ``g``: weight ``g**g_alpha * (1-g)**g_beta`` on the logit
  scale (a Beta(g_alpha, g_beta) density times the logit Jacobian, mode
  ``g_alpha / (g_alpha + g_beta)``), concave in ``logit(g)``;
* upper asymptote ``u``: the same with ``u_alpha, u_beta``.

``None`` for a field means a flat prior on that parameter. Hard bounds apply
in every case (``BOUNDS``) so that items every respondent answered alike get
finite, flagged estimates instead of diverging.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sharpbench.choices import IRT_PRIORS
from sharpbench.irt.errors import IRTError

__all__ = ["ASYMPTOTE_DEFAULTS", "BOUNDS", "PRESETS", "ItemPrior", "resolve_prior", "with_asymptote_priors"]

#: Box constraints on the optimiser's coordinates: a, d, logit(g), logit(u).
BOUNDS = {"a": (-20.0, 20.0), "d": (-30.0, 30.0), "g": (-12.0, 12.0), "u": (-12.0, 12.0)}


@dataclass(frozen=True)
class ItemPrior:
    """Independent priors on item parameters (see module docstring)."""

    a_mean: float = 1.0
    a_sd: float | None = None
    d_sd: float | None = None
    g_alpha: float | None = None
    g_beta: float | None = None
    u_alpha: float | None = None
    u_beta: float | None = None

    @property
    def is_flat(self) -> bool:
        return self.a_sd is None and self.d_sd is None and self.g_alpha is None and self.u_alpha is None

    def to_dict(self) -> dict:
        return asdict(self)

    def grad_info(self, name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and negative Hessian of the log prior at coordinate values ``x``."""
        zero = np.zeros_like(x)
        if name == "a" and self.a_sd is not None:
            return -(x - self.a_mean) / self.a_sd**2, zero + 1.0 / self.a_sd**2
        if name == "d" and self.d_sd is not None:
            return -x / self.d_sd**2, zero + 1.0 / self.d_sd**2
        if name in ("g", "u"):
            al, be = (self.g_alpha, self.g_beta) if name == "g" else (self.u_alpha, self.u_beta)
            if al is not None and be is not None:
                p = 1.0 / (1.0 + np.exp(-x))
                return al * (1 - p) - be * p, (al + be) * p * (1 - p)
        return zero, zero

    def logpdf(self, name: str, x: np.ndarray) -> np.ndarray:
        """Log prior (up to a constant) at coordinate values ``x``."""
        if name == "a" and self.a_sd is not None:
            return -0.5 * ((x - self.a_mean) / self.a_sd) ** 2
        if name == "d" and self.d_sd is not None:
            return -0.5 * (x / self.d_sd) ** 2
        if name in ("g", "u"):
            al, be = (self.g_alpha, self.g_beta) if name == "g" else (self.u_alpha, self.u_beta)
            if al is not None and be is not None:
                return -al * np.logaddexp(0, -x) - be * np.logaddexp(0, x)
        return np.zeros_like(x)


PRESETS: dict[str, ItemPrior] = {
    "none": ItemPrior(),
    # Regularises just enough that all-correct / all-wrong items and tiny
    # respondent pools give finite, sensible parameters.
    "weak": ItemPrior(a_mean=1.0, a_sd=2.0, d_sd=4.0, g_alpha=2.0, g_beta=8.0, u_alpha=9.5, u_beta=0.5),
    # For very few respondents (e.g. < 50 models): pulls slopes towards 1.
    "strong": ItemPrior(a_mean=1.0, a_sd=0.5, d_sd=2.0, g_alpha=4.0, g_beta=16.0, u_alpha=19.0, u_beta=1.0),
}

assert ("auto", *PRESETS) == IRT_PRIORS, "sharpbench.choices.IRT_PRIORS names the priors the CLI offers"

#: Asymptote priors added whenever g or u is estimated but the chosen prior
#: leaves it flat (an unpenalised lower asymptote is not identified in practice).
ASYMPTOTE_DEFAULTS = {"g_alpha": 2.0, "g_beta": 8.0, "u_alpha": 9.5, "u_beta": 0.5}


def with_asymptote_priors(prior: ItemPrior, free: tuple[str, ...]) -> tuple[ItemPrior, bool]:
    """Add :data:`ASYMPTOTE_DEFAULTS` for free g/u that have no prior; returns (prior, changed)."""
    from dataclasses import replace

    upd: dict[str, float] = {}
    if "g" in free and prior.g_alpha is None:
        upd.update(g_alpha=ASYMPTOTE_DEFAULTS["g_alpha"], g_beta=ASYMPTOTE_DEFAULTS["g_beta"])
    if "u" in free and prior.u_alpha is None:
        upd.update(u_alpha=ASYMPTOTE_DEFAULTS["u_alpha"], u_beta=ASYMPTOTE_DEFAULTS["u_beta"])
    return (replace(prior, **upd), True) if upd else (prior, False)


def resolve_prior(prior: str | ItemPrior | dict | None, n_respondents: int, has_constant: bool) -> tuple[ItemPrior, str]:
    """Turn the user's ``prior`` option into an :class:`ItemPrior` and a label.

    ``"auto"``: ``"strong"`` below 50 respondents, ``"weak"`` below 200 or when
    some item is constant (all right / all wrong), else ``"none"``.
    """
    if prior is None:
        return PRESETS["none"], "none"
    if isinstance(prior, ItemPrior):
        return prior, "custom"
    if isinstance(prior, dict):
        try:
            return ItemPrior(**prior), "custom"
        except TypeError as exc:
            raise IRTError(f"bad prior fields: {exc}; valid: {list(ItemPrior().to_dict())}") from None
    key = str(prior).lower()
    if key == "auto":
        key = "strong" if n_respondents < 50 else ("weak" if n_respondents < 200 or has_constant else "none")
    if key not in PRESETS:
        raise IRTError(f"unknown prior {prior!r}; use 'auto', {', '.join(map(repr, PRESETS))} or an ItemPrior")
    return PRESETS[key], key
