"""Leave-one-model-out evaluation of adaptive testing against random sampling.

For each held-out model a bank is calibrated on the other models; the held-out
model then answers from its recorded responses. Adaptive runs are compared with
random item samples scored two ways (plain accuracy, IRT ability -> expected
accuracy), as Fluid Benchmarking (Hofmann et al., 2025) compares them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sharpbench.adaptive.bank import ItemBank
from sharpbench.adaptive.calibrate import calibrate_bank  # noqa: F401 (re-export)
from sharpbench.adaptive.cat import AdaptiveTest, StoppingRule
from sharpbench.adaptive.numeric import estimate_ability
from sharpbench.adaptive.selection import SelectionRule
from sharpbench.matrix.core import ResponseMatrix

__all__ = ["held_out_runs", "leave_one_model_out", "summarize"]

BankFitter = Callable[[ResponseMatrix, str], ItemBank]


def held_out_runs(
    bank: ItemBank, row: pd.Series, budgets: Sequence[int], *, n_reps: int, seed: int,
    random_budgets: Sequence[int] | None = None, ability: str = "map", randomesque: int = 1,
    prior_mean: float = 0.0, prior_sd: float = 1.0,
) -> list[dict]:
    """Predictions for one held-out model.

    Parameters
    ----------
    row : Series
        The model's scores on every benchmark item (index = item ids, NaN = missing).
        Items outside the bank's benchmark (:attr:`ItemBank.benchmark_item_ids`)
        are dropped, so that every method predicts :meth:`ItemBank.full_score`.
        Random samples draw from all its observed benchmark items (fixed-score
        items included); the adaptive test from its observed bank items.

    Returns rows ``method, scoring, budget, rep, predicted, ci_low, ci_high``.
    The adaptive test runs once per repetition (once when deterministic) up to
    ``max(budgets)`` and is read off at every budget.
    """
    rows: list[dict] = []
    row = pd.Series(row.to_numpy(dtype=float), index=[str(i) for i in row.index])
    row = row[row.index.isin(set(bank.benchmark_item_ids))]  # keeps the row's order (and the random draws)
    y = row.reindex(list(bank.item_ids)).to_numpy(dtype=float)
    missing = [bank.item_ids[k] for k in np.flatnonzero(np.isnan(y))]
    pos = {item: k for k, item in enumerate(bank.item_ids)}
    adaptive_reps = n_reps if randomesque > 1 else 1
    for rep in range(adaptive_reps):
        test = AdaptiveTest(bank, selection=SelectionRule("fisher", randomesque=randomesque),
                            stopping=StoppingRule(max_items=max(budgets)), ability=ability,
                            prior_mean=prior_mean, prior_sd=prior_sd, exclude=missing, seed=seed + rep)
        while (item := test.next_item()) is not None:
            test.record(item, y[pos[item]])
            if test.n_administered in budgets:
                acc, ci = test.predicted_accuracy(test.theta, test.se)
                n = test.n_administered
                rows.append(dict(method="adaptive", scoring="irt", budget=n, rep=rep, predicted=acc,
                                 ci_low=ci[0], ci_high=ci[1]))
                rows.append(dict(method="adaptive", scoring="accuracy", budget=n, rep=rep,
                                 predicted=test.observed_accuracy, ci_low=np.nan, ci_high=np.nan))
    full = row.to_numpy(dtype=float)
    bank_pos = np.array([pos.get(str(i), -1) for i in row.index])
    observed = np.flatnonzero(~np.isnan(full))
    a, d, g, u = bank.params()
    rng = np.random.default_rng(seed)
    z = stats.norm.ppf(0.975)
    for n in random_budgets or budgets:
        if n > observed.size:
            continue
        for rep in range(n_reps):
            pick = rng.choice(observed, size=n, replace=False)
            raw = float(full[pick].mean())
            half = z * np.sqrt(max(raw * (1 - raw), 1e-12) / n)
            rows.append(dict(method="random", scoring="accuracy", budget=n, rep=rep, predicted=raw,
                             ci_low=raw - half, ci_high=raw + half))
            k = bank_pos[pick]
            in_bank = k >= 0
            k = k[in_bank]
            est = estimate_ability(full[pick][in_bank], a[k], d[k], g[k], u[k], method=ability,
                                   prior_mean=prior_mean, prior_sd=prior_sd)
            acc = float(bank.expected_accuracy(est.theta)[0])
            lo, hi = bank.expected_accuracy([est.theta - z * est.se, est.theta + z * est.se])
            lo = acc - np.hypot(acc - lo, z * bank.misfit_sd)
            hi = acc + np.hypot(hi - acc, z * bank.misfit_sd)
            rows.append(dict(method="random", scoring="irt", budget=n, rep=rep, predicted=acc,
                             ci_low=float(lo), ci_high=float(hi)))
    return rows


def leave_one_model_out(
    matrix: ResponseMatrix, budgets: Sequence[int], *, fit_bank: BankFitter, n_reps: int = 10,
    seed: int = 0, random_budgets: Sequence[int] | None = None, ability: str = "map",
    randomesque: int = 1, models: Sequence[str] | None = None, progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run :func:`held_out_runs` for each model with a bank fitted without it.

    ``truth`` is the held-out model's accuracy over all its observed cells of
    the benchmark the bank predicts (:meth:`ItemBank.full_score`: for a bank
    calibrated on ``matrix``, every matrix item, fixed-score items included);
    missing cells are left out of both truth and administration.
    """
    frames = []
    for k, model in enumerate(models or matrix.models):
        if progress:
            progress(model)
        bank = fit_bank(matrix.drop_models([model]), model)
        row = pd.Series(matrix.values[matrix.models.index(model)], index=list(matrix.items))
        truth = bank.full_score(row)
        rows = held_out_runs(bank, row, budgets, n_reps=n_reps, seed=seed + 1000 * k,
                             random_budgets=random_budgets, ability=ability, randomesque=randomesque,
                             prior_mean=bank.ability_mean, prior_sd=bank.ability_sd)
        df = pd.DataFrame(rows)
        df["model"], df["truth"] = model, truth
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (method, scoring, budget): MAE, Kendall tau vs the full ranking, run-to-run variance, CI coverage.

    ``tau`` is the mean over repetitions of Kendall's tau between the predicted
    and the full-benchmark accuracies of all held-out models; ``sd_runs`` is
    the root mean over models of the variance of the prediction across
    repetitions (0 for a deterministic rule).
    """
    out = []
    for (method, scoring, budget), g in runs.groupby(["method", "scoring", "budget"]):
        taus = [stats.kendalltau(r["predicted"], r["truth"]).statistic for _, r in g.groupby("rep")]
        var = g.groupby("model")["predicted"].var(ddof=0).mean()
        cov = ((g["ci_low"] <= g["truth"]) & (g["truth"] <= g["ci_high"])).mean() if g["ci_low"].notna().any() else np.nan
        out.append(dict(method=method, scoring=scoring, budget=int(budget),
                        mae=float((g["predicted"] - g["truth"]).abs().mean()),
                        tau=float(np.mean(taus)), sd_runs=float(np.sqrt(var)), coverage=float(cov),
                        n_reps=int(g["rep"].nunique())))
    return pd.DataFrame(out).sort_values(["method", "scoring", "budget"]).reset_index(drop=True)
