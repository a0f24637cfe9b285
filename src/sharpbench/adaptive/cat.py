"""The adaptive test: pick an item, record the answer, update theta, stop.

:class:`AdaptiveTest` is a small state machine independent of where answers
come from: a live model (:mod:`sharpbench.adaptive.live`) or a recorded
response matrix (:mod:`sharpbench.adaptive.simulate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from sharpbench.adaptive.bank import ItemBank
from sharpbench.choices import ABILITY_METHODS
from sharpbench.errors import InputError
from sharpbench.adaptive.numeric import (
    THETA_BOUNDS,
    AbilityEstimate,
    estimate_ability,
    prob,
)
from sharpbench.adaptive.selection import SelectionRule, select_next

__all__ = ["AdaptiveError", "AdaptiveResult", "AdaptiveTest", "Step", "StoppingRule"]


class AdaptiveError(InputError, RuntimeError):
    """An adaptive run cannot proceed."""


@dataclass(frozen=True)
class StoppingRule:
    """Stop when any criterion is met (after ``min_items``).

    Attributes
    ----------
    max_items : int
        Item budget.
    target_se : float, optional
        Stop once the ability SE is at or below this.
    theta_tol : float, optional
        Stop once the last update moved theta by less than this.
    min_items : int
        Never stop on SE / tolerance before this many items.
    """

    max_items: int = 60
    target_se: float | None = None
    theta_tol: float | None = None
    min_items: int = 5

    def __post_init__(self) -> None:
        if self.max_items < 1:
            raise AdaptiveError(f"max_items must be >= 1, got {self.max_items}")
        if self.target_se is not None and not self.target_se > 0:
            raise AdaptiveError(f"target_se must be > 0, got {self.target_se}")
        if self.theta_tol is not None and not self.theta_tol > 0:
            raise AdaptiveError(f"theta_tol must be > 0, got {self.theta_tol}")


@dataclass(frozen=True)
class Step:
    """One administered item and the estimate after it."""

    n: int
    item: str
    response: float
    theta: float
    se: float


@dataclass
class AdaptiveResult:
    """Outcome of an adaptive run.

    ``accuracy`` predicts the full-benchmark accuracy: answered items count with
    their observed score, every other bank item with P(correct | theta), and the
    fixed-score items left out of the bank (``ItemBank.fixed_scores``) at their
    calibration mean. ``full_score``, when given, must be the model's mean over
    the same items (``ItemBank.full_score``), not over the bank's items only. Its CI
    combines, in quadrature, the theta interval (mapped through the monotone
    expected-accuracy curve), the Bernoulli spread of the unanswered items and
    the bank's model misfit (``ItemBank.misfit_sd``, scaled by the unanswered share).
    """

    bank: str
    benchmark: str
    theta: float
    se: float
    accuracy: float
    accuracy_ci: tuple[float, float]
    observed_accuracy: float
    items: list[str]
    responses: list[float]
    trajectory: list[Step]
    stop_reason: str
    selection: str
    ability_method: str
    confidence: float = 0.95
    skipped: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    full_score: float | None = None
    full_theta: float | None = None  # ability whose expected accuracy equals full_score

    @property
    def n_items(self) -> int:
        return len(self.items)

    def theta_ci(self) -> tuple[float, float]:
        z = stats.norm.ppf(0.5 + self.confidence / 2)
        return self.theta - z * self.se, self.theta + z * self.se

    def covers(self, score: float) -> bool:
        """Whether the accuracy CI contains ``score``."""
        return self.accuracy_ci[0] <= score <= self.accuracy_ci[1]

    def summary(self) -> dict[str, Any]:
        out = {
            "model": self.model, "bank": self.bank, "benchmark": self.benchmark,
            "theta": self.theta, "se": self.se, "theta_ci": list(self.theta_ci()),
            "accuracy": self.accuracy, "accuracy_ci": list(self.accuracy_ci),
            "observed_accuracy": None if np.isnan(self.observed_accuracy) else self.observed_accuracy,
            "n_items": self.n_items,
            "stop_reason": self.stop_reason, "selection": self.selection,
            "ability_method": self.ability_method, "confidence": self.confidence,
            "n_skipped": len(self.skipped),
        }
        if self.full_score is not None:
            out["full_score"] = self.full_score
            out["full_theta"] = self.full_theta
            out["covers_full_score"] = self.covers(self.full_score)
        return out

    def to_artifact(self) -> dict[str, Any]:
        """JSON-ready payload for ``Store.save_artifact("adaptive", name, payload)``."""
        return {
            "summary": self.summary(),
            "items": self.items,
            "responses": self.responses,
            "trajectory": [s.__dict__ for s in self.trajectory],
            "skipped": self.skipped,
        }

    def plot(self, path=None, *, title: str | None = None):
        """Trajectory figure (theta +/- SE vs items); see :func:`sharpbench.adaptive.plot.plot_trajectory`."""
        from sharpbench.adaptive.plot import plot_trajectory

        return plot_trajectory(self, path, title=title)


class AdaptiveTest:
    """Item-by-item adaptive test over an :class:`ItemBank`.

    Parameters
    ----------
    bank : ItemBank
    selection : SelectionRule
    stopping : StoppingRule
    ability : {"map", "eap"}
        Ability update after each answer (normal prior ``prior_mean, prior_sd``).
    start : {"prior", "bank"} or float
        Theta used to pick the first item: the prior mean, the bank's mean
        calibration ability, or a number.
    exclude : iterable of str, optional
        Item ids never to administer (e.g. cells missing from a matrix).
    seed : int
        Seed for random selection and randomesque draws.
    """

    def __init__(
        self,
        bank: ItemBank,
        *,
        selection: SelectionRule | None = None,
        stopping: StoppingRule | None = None,
        ability: str = "map",
        prior_mean: float = 0.0,
        prior_sd: float = 1.0,
        start: str | float = "prior",
        bounds: tuple[float, float] = THETA_BOUNDS,
        exclude=None,
        confidence: float = 0.95,
        seed: int = 0,
        model: str | None = None,
    ) -> None:
        if ability not in ABILITY_METHODS:
            raise AdaptiveError(f"unknown ability method {ability!r}; use {' or '.join(map(repr, ABILITY_METHODS))}")
        self.bank = bank
        self.selection = selection or SelectionRule()
        self.stopping = stopping or StoppingRule()
        if self.selection.balance is not None and self.selection.balance not in bank.items.columns:
            raise AdaptiveError(
                f"content balancing column {self.selection.balance!r} is not in bank {bank.name!r} "
                f"(metadata columns: {[c for c in bank.items.columns if c not in ('a', 'd', 'g', 'u')]})"
            )
        self.ability = ability
        self.prior_mean, self.prior_sd, self.bounds = float(prior_mean), float(prior_sd), bounds
        self.confidence = confidence
        self.model = model
        self._params = bank.params()
        self._pos = {item: k for k, item in enumerate(bank.item_ids)}
        self._available = np.ones(bank.n_items, dtype=bool)
        self._administered = np.zeros(bank.n_items, dtype=bool)
        self._groups = bank.items[self.selection.balance].astype(str).to_numpy() if self.selection.balance else None
        for item in exclude or ():
            if str(item) in self._pos:
                self._available[self._pos[str(item)]] = False
        self._rng = np.random.default_rng(seed)
        if start == "prior":
            theta0 = self.prior_mean
        elif start == "bank":
            theta0 = bank.ability_mean
        else:
            try:
                theta0 = float(start)
            except (TypeError, ValueError):
                raise AdaptiveError(f"start must be 'prior', 'bank' or a number, got {start!r}") from None
        self._estimate = AbilityEstimate(float(np.clip(theta0, *bounds)), self.prior_sd, "start")
        self._order: list[int] = []
        self._responses: list[float] = []
        self.trajectory: list[Step] = []
        self.skipped: dict[str, str] = {}
        self._last_move: float | None = None
        self._pending: int | None = None

    # -------------------------------------------------------------- state
    @property
    def theta(self) -> float:
        return self._estimate.theta

    @property
    def se(self) -> float:
        return self._estimate.se

    @property
    def n_administered(self) -> int:
        return len(self._order)

    @property
    def observed_accuracy(self) -> float:
        """Mean score on the items administered so far (NaN before the first)."""
        return float(np.mean(self._responses)) if self._responses else float("nan")

    def stop_reason(self) -> str | None:
        """Why the test is over, or ``None`` while it goes on."""
        s, n = self.stopping, self.n_administered
        if n >= s.max_items:
            return "item budget"
        if n >= s.min_items:
            if s.target_se is not None and self.se <= s.target_se:
                return "target SE"
            if s.theta_tol is not None and self._last_move is not None and self._last_move < s.theta_tol:
                return "theta change below tolerance"
        if not self._available.any():
            return "item pool exhausted"
        return None

    @property
    def done(self) -> bool:
        return self.stop_reason() is not None

    # ------------------------------------------------------------ stepping
    def next_item(self) -> str | None:
        """Id of the next item to administer (``None`` when the test is over)."""
        if self.done:
            return None
        if self._pending is None:
            self._pending = select_next(
                self.theta, self.n_administered, self._available, self._params, self.selection, self._rng,
                groups=self._groups, administered=self._administered,
            )
        return None if self._pending is None else self.bank.item_ids[self._pending]

    def _take(self, item: str) -> int:
        k = self._pos.get(str(item))
        if k is None:
            raise AdaptiveError(f"item {item!r} is not in bank {self.bank.name!r}")
        if not self._available[k]:
            raise AdaptiveError(f"item {item!r} was already administered, skipped or excluded")
        self._available[k] = False
        self._pending = None
        return k

    def record(self, item: str, score: float) -> AbilityEstimate:
        """Record a score in [0, 1] for ``item`` and update theta."""
        score = float(score)
        if not 0.0 <= score <= 1.0:
            raise AdaptiveError(f"score for item {item!r} must lie in [0, 1], got {score}")
        k = self._take(item)
        self._administered[k] = True
        self._order.append(k)
        self._responses.append(score)
        idx = np.asarray(self._order)
        prev = self.theta
        self._estimate = estimate_ability(
            np.asarray(self._responses), *(p[idx] for p in self._params), method=self.ability,
            prior_mean=self.prior_mean, prior_sd=self.prior_sd, bounds=self.bounds,
        )
        self._last_move = abs(self.theta - prev)
        self.trajectory.append(Step(self.n_administered, str(item), score, self.theta, self.se))
        return self._estimate

    def skip(self, item: str, reason: str) -> None:
        """Mark ``item`` unusable (engine error, missing answer); it is never selected again."""
        self._take(item)
        self.skipped[str(item)] = reason

    # -------------------------------------------------------------- result
    def predicted_accuracy(self, theta: float, se: float) -> tuple[float, tuple[float, float]]:
        """Predicted full-benchmark accuracy (``bank.n_total`` items) and its CI at ability ``theta`` with SE ``se``."""
        n = self.bank.n_total
        rest = ~self._administered
        fixed = self.bank.fixed_scores
        answered = float(np.sum(self._responses)) + float(fixed.sum())
        z = stats.norm.ppf(0.5 + self.confidence / 2)
        rest_params = tuple(p[rest] for p in self._params)
        grid = np.array([theta - z * se, theta, theta + z * se])
        p = prob(grid, *rest_params) if rest.any() else np.zeros((3, 0))
        acc_lo, acc, acc_hi = (answered + p.sum(axis=1)) / n
        bern = z * np.sqrt(np.sum(p[1] * (1 - p[1])) + np.sum(fixed * (1 - fixed))) / n
        # model misfit (bank.misfit_sd) applies to the predicted, not the answered, share
        bern = np.hypot(bern, z * self.bank.misfit_sd * (n - self.n_administered) / n)
        lo = acc - np.hypot(acc - acc_lo, bern)
        hi = acc + np.hypot(acc_hi - acc, bern)
        return float(acc), (float(max(lo, 0.0)), float(min(hi, 1.0)))

    def result(self, full_score: float | None = None) -> AdaptiveResult:
        """Summary of the run so far (callable at any point)."""
        acc, ci = self.predicted_accuracy(self.theta, self.se)
        return AdaptiveResult(
            bank=self.bank.name, benchmark=self.bank.benchmark, theta=self.theta, se=self.se,
            accuracy=acc, accuracy_ci=ci,
            observed_accuracy=self.observed_accuracy,
            items=[self.bank.item_ids[k] for k in self._order], responses=list(self._responses),
            trajectory=list(self.trajectory), stop_reason=self.stop_reason() or "not finished",
            selection=self.selection.method, ability_method=self.ability, confidence=self.confidence,
            skipped=dict(self.skipped), model=self.model, full_score=full_score,
            full_theta=None if full_score is None else self._theta_for(full_score),
        )

    def _theta_for(self, accuracy: float) -> float | None:
        """Theta whose expected bank accuracy equals ``accuracy`` (None outside the reachable range)."""
        from scipy.optimize import brentq

        lo, hi = self.bounds
        f = lambda t: float(self.bank.expected_accuracy(t)[0]) - accuracy
        if f(lo) > 0 or f(hi) < 0:
            return None
        return float(brentq(f, lo, hi, xtol=1e-6))
