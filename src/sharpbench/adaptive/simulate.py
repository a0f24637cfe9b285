"""Simulated adaptive runs: held-out models answer from their recorded responses.

Missing cells (NaN) of a model are never administered to it (they are treated
as items that model was not asked). Its true full score is the mean of its
observed cells over the whole benchmark the bank predicts
(:meth:`ItemBank.full_score`): bank items and the fixed-score items left out of
the bank, since predicted accuracies count those too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sharpbench.adaptive.bank import BankError, ItemBank
from sharpbench.adaptive.cat import AdaptiveResult, AdaptiveTest, StoppingRule
from sharpbench.adaptive.numeric import estimate_ability
from sharpbench.adaptive.selection import SelectionRule
from sharpbench.matrix.core import ResponseMatrix

__all__ = ["SimulationConfig", "random_sample_scores", "simulate_matrix", "simulate_model"]


@dataclass(frozen=True)
class SimulationConfig:
    """Settings shared by every simulated run (see :class:`AdaptiveTest`)."""

    selection: SelectionRule = field(default_factory=SelectionRule)
    stopping: StoppingRule = field(default_factory=StoppingRule)
    ability: str = "map"
    prior_mean: float = 0.0
    prior_sd: float = 1.0
    start: str | float = "prior"


def _model_row(bank: ItemBank, matrix: ResponseMatrix, model: str) -> tuple[np.ndarray, float]:
    """Responses of ``model`` aligned to the bank's items (NaN where not in the matrix) and its full score."""
    if model not in matrix.models:
        raise BankError(f"model {model!r} is not in the response matrix")
    row = pd.Series(matrix.values[matrix.models.index(model)], index=[str(i) for i in matrix.items])
    aligned = row.reindex(list(bank.item_ids))
    if aligned.notna().sum() == 0:
        raise BankError(f"model {model!r} has no recorded response on any item of bank {bank.name!r}")
    return aligned.to_numpy(dtype=float), bank.full_score(row)


def simulate_model(
    bank: ItemBank, matrix: ResponseMatrix, model: str, config: SimulationConfig = SimulationConfig(),
    *, seed: int = 0,
) -> AdaptiveResult:
    """One adaptive run of ``model`` answering from ``matrix``.

    ``full_score`` is the model's observed mean over the benchmark the
    prediction is for (:meth:`ItemBank.full_score`), not over the bank's items only.
    """
    y, full_score = _model_row(bank, matrix, model)
    missing = [bank.item_ids[k] for k in np.flatnonzero(np.isnan(y))]
    test = AdaptiveTest(
        bank, selection=config.selection, stopping=config.stopping, ability=config.ability,
        prior_mean=config.prior_mean, prior_sd=config.prior_sd, start=config.start, exclude=missing,
        seed=seed, model=model,
    )
    pos = {item: k for k, item in enumerate(bank.item_ids)}
    while (item := test.next_item()) is not None:
        test.record(item, y[pos[item]])
    return test.result(full_score=full_score)


def simulate_matrix(
    bank: ItemBank, matrix: ResponseMatrix, models: Sequence[str] | None = None,
    config: SimulationConfig = SimulationConfig(), *, seed: int = 0,
) -> pd.DataFrame:
    """Simulate every model (default: all matrix models); one row per model.

    Columns: ``theta, se, accuracy, ci_low, ci_high, full_score, abs_error,
    covered, n_items, stop_reason``.
    """
    rows = []
    for k, model in enumerate(models if models is not None else matrix.models):
        r = simulate_model(bank, matrix, model, config, seed=seed + k)
        rows.append({
            "model": model, "theta": r.theta, "se": r.se, "accuracy": r.accuracy,
            "ci_low": r.accuracy_ci[0], "ci_high": r.accuracy_ci[1], "full_score": r.full_score,
            "abs_error": abs(r.accuracy - r.full_score), "covered": r.covers(r.full_score),
            "n_items": r.n_items, "stop_reason": r.stop_reason,
        })
    return pd.DataFrame(rows).set_index("model")


def random_sample_scores(
    bank: ItemBank, y: np.ndarray, n_items: int, rng: np.random.Generator, *,
    prior_mean: float = 0.0, prior_sd: float = 1.0, method: str = "map",
) -> tuple[float, float]:
    """Random-sampling baseline for one model: ``(accuracy score, IRT-predicted accuracy)``.

    ``y`` holds the model's scores aligned to :attr:`ItemBank.benchmark_item_ids`
    (bank items, then fixed-score items; NaN = not answered). Draws ``n_items``
    of its answered benchmark items uniformly without replacement; the accuracy
    score is their mean, the IRT score is :meth:`ItemBank.expected_accuracy`
    (whole benchmark) at the theta fitted on the sampled bank items. Both
    estimate :meth:`ItemBank.full_score`.
    """
    y = np.asarray(y, dtype=float)
    if y.shape != (bank.n_total,):
        raise BankError(
            f"y must hold one score per benchmark item of bank {bank.name!r} ({bank.n_total}: "
            f"{bank.n_items} bank + {bank.n_total - bank.n_items} fixed-score items, ItemBank.benchmark_item_ids), "
            f"got shape {y.shape}"
        )
    observed = np.flatnonzero(~np.isnan(y))
    pick = rng.choice(observed, size=min(n_items, observed.size), replace=False)
    k = pick[pick < bank.n_items]
    a, d, g, u = bank.params()
    est = estimate_ability(y[k], a[k], d[k], g[k], u[k], method=method,
                           prior_mean=prior_mean, prior_sd=prior_sd)
    return float(y[pick].mean()), float(bank.expected_accuracy(est.theta)[0])
