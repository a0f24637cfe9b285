"""Bayesian optimisation (optuna) of the hard-subset selection parameters.

Searched: the ranking (``ordering``), the fraction deleted, whether the voter
penalty padding runs (``pad``), the padding candidate window (``pad_lo``,
``pad_width``: which slice of the deleted items may be re-added), the padding
count multiplier (``pad_scale``) and whether models below chance are lifted
(``lift_to_chance``). Three objectives: maximise the discriminative ratio (std
of the top-N scores over the full benchmark's), minimise the absolute mean
voter penalty, maximise the lowest score minus the chance baseline.

The voter penalty of every trial is the honest one: the whole pipeline (cut,
padding, lift) is rerun without each voter (``lovo_scores``), one pipeline per
voter and trial, not an approximation. The leave-one-voter-out rankings (and
their own leave-one-out rankings, which the padding needs) do not depend on
the trial and are built once per ranking method; a trial then costs one cut +
padding + lift per voter (0.14-0.24 s per trial for 28 voters on MMLU-Pro's
12,032 items, one process on a shared 2-core machine).

The Pareto set is returned with the chosen trial: among trials of at least
``min_items`` items with no model below chance, the most discriminative one
whose penalty is within ``penalty_tol``; when none is within it, the one with
the smallest penalty (then the chance constraint is dropped, then the size one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from sharpbench.distill.common import subset_scores
from sharpbench.distill.errors import DistillError
from sharpbench.distill.hard import HardResult, Selection, build_plan, lovo_plan, lovo_scores, select_hard, select_mask
from sharpbench.distill.hard_rank import IRT_RANKINGS
from sharpbench.matrix import ResponseMatrix

__all__ = ["choose_trial", "optimize_hard"]


def choose_trial(pareto: pd.DataFrame, penalty_tol: float = 0.005, min_items: int = 1) -> tuple[int, str]:
    """Row position of the chosen Pareto trial and the rule that chose it (see module docstring)."""
    if pareto.empty:
        raise DistillError("the optimisation produced no trial")
    ok_size = pareto["n_items"] >= min_items
    pen = pareto["voter_penalty"].abs()
    ok_pen = pen <= penalty_tol
    ok_chance = pareto["min_minus_chance"] >= 0
    if (ok_size & ok_pen & ok_chance).any():
        return int(pareto.loc[ok_size & ok_pen & ok_chance, "std_ratio"].idxmax()), (
            f"most discriminative with |voter penalty| <= {100 * penalty_tol:.2f} pts, no model below chance"
        )
    for cond, rule in (
        (ok_size & ok_chance, "smallest |voter penalty| with no model below chance"),
        (ok_size, "smallest |voter penalty| (no trial kept every model above chance)"),
        (pareto["n_items"] > 0, f"smallest |voter penalty| (no trial kept {min_items} items)"),
    ):
        if cond.any():
            rows = pareto.loc[cond]
            best = rows.loc[pen[cond] == pen[cond].min(), "std_ratio"].idxmax()
            return int(best), f"no trial within {100 * penalty_tol:.2f} pts of voter penalty: {rule}"
    return 0, "first trial"  # pragma: no cover - the last condition always holds


def optimize_hard(
    matrix: ResponseMatrix,
    *,
    reference: str | None = None,
    methods: Sequence[str] | None = None,
    n_trials: int = 60,
    seed: int = 0,
    top_n: int = 10,
    fraction_range: tuple[float, float] = (0.2, 0.95),
    penalty_tol: float = 0.005,
    min_items: int = 20,
    exclude_voters: Sequence[str] = (),
    chance: np.ndarray | None = None,
    chance_source: str | None = None,
    irt_fitter: Callable[[ResponseMatrix], pd.DataFrame] | None = None,
    n_jobs: int = 1,
) -> HardResult:
    """Search the selection parameters; return the chosen subset with ``.pareto`` filled in.

    ``methods`` defaults to ``ref-vs-others`` and ``mean`` (with a reference) or
    ``mean`` alone. ``fraction_range`` reaches down to 20 % deleted because the
    whole-pipeline penalty grows with the fraction deleted (MMLU-Pro, 28 voters:
    ~0.6 points at 50 %, ~2.5 at 80 %), so a ``penalty_tol`` near MAGI's 0.43
    points is only met by milder deletions; IRT rankings are searched only when named (they need fits:
    one per voter pair for the leave-one-voter-out plans). ``n_jobs`` > 1
    builds those plans, and reruns the chosen subset's leave-one-voter-out, in
    parallel processes; trials run one after the other. The search cost is
    stored in ``result.lovo_cost`` (``search_seconds``, ``trials``).
    """
    import optuna

    if n_trials < 1:
        raise DistillError("n_trials must be >= 1")
    lo_f, hi_f = fraction_range
    if not 0.0 <= lo_f < hi_f < 1.0:
        raise DistillError(f"fraction_range must satisfy 0 <= lo < hi < 1, got {fraction_range}")
    if methods is None:
        methods = ("ref-vs-others", "mean") if reference else ("mean",)
    if any(m in IRT_RANKINGS for m in methods) and irt_fitter is None:
        from sharpbench.distill.irt_bridge import fit_item_params

        irt_fitter = fit_item_params
    t_start = time.perf_counter()
    plans = {
        m: build_plan(
            matrix,
            m,
            reference=reference,
            top_n=top_n,
            exclude_voters=exclude_voters,
            chance=chance,
            irt_fitter=irt_fitter,
        )[0]
        for m in methods
    }
    subs = {m: _lovo_plans(matrix, p, irt_fitter, n_jobs) for m, p in plans.items()}
    t_plans = time.perf_counter() - t_start

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        method = trial.suggest_categorical("ordering", list(methods))
        frac = trial.suggest_float("fraction", lo_f, hi_f)
        pad = trial.suggest_categorical("pad", [True, False])
        pad_lo = trial.suggest_float("pad_lo", 0.0, 0.9)
        width = trial.suggest_float("pad_width", 0.05, 1.0)
        scale = trial.suggest_float("pad_scale", 0.25, 2.0, log=True)
        lift = trial.suggest_categorical("lift_to_chance", [False, True])
        plan = plans[method]
        sel = Selection(fraction=frac, pad=pad, window=(pad_lo, min(1.0, pad_lo + width)), scale=scale,
                        lift_to_chance=lift)  # fmt: skip
        mask = select_mask(plan, sel)[0]
        pen = lovo_scores(None, plan, sel, plans=subs[method]) - subset_scores(plan.values[plan.voters], mask)
        met = plan.metrics(mask[None, :], pen[None, :]).iloc[0]
        for key in ("n_items", "voter_penalty", "voter_penalty_max", "min_minus_chance", "share_below_chance"):
            trial.set_user_attr(key, float(met[key]))
        p = float(met["voter_penalty"])
        return float(met["std_ratio"]), abs(p) if np.isfinite(p) else 1.0, float(met["min_minus_chance"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["maximize", "minimize", "maximize"],
        sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True),
    )
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    t_search = time.perf_counter() - t0
    rows = []
    for t in study.best_trials:
        rows.append({"trial": t.number, **t.params, "std_ratio": t.values[0], **t.user_attrs})
    pareto = pd.DataFrame(rows).sort_values("std_ratio", ascending=False).reset_index(drop=True)
    pos, rule = choose_trial(pareto, penalty_tol, min_items)
    best = pareto.iloc[pos]
    result = select_hard(
        matrix,
        best["ordering"],
        reference=reference,
        fraction=float(best["fraction"]),
        top_n=top_n,
        exclude_voters=exclude_voters,
        pad=bool(best["pad"]),
        pad_window=(float(best["pad_lo"]), min(1.0, float(best["pad_lo"] + best["pad_width"]))),
        pad_scale=float(best["pad_scale"]),
        lift_to_chance=bool(best["lift_to_chance"]),
        chance=chance,
        chance_source=chance_source,
        irt_fitter=irt_fitter,
        n_jobs=n_jobs,
    )
    pareto["chosen"] = pareto["trial"] == best["trial"]
    result.pareto = pareto
    result.lovo_cost = {
        **result.lovo_cost,
        "trials": n_trials,
        "plan_seconds": t_plans,
        "search_seconds": t_search,
        "seconds_per_trial": t_search / n_trials,
        "choice": rule,
    }
    return result


def _lovo_plans(matrix: ResponseMatrix, plan, irt_fitter, n_jobs: int) -> list:
    """The leave-one-voter-out plans of ``plan``, with their own leave-one-out rankings (for padding)."""
    n = plan.voters.size
    if n_jobs == 1:
        return [lovo_plan(matrix, plan, k, inner_loo=True, irt_fitter=irt_fitter) for k in range(n)]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs)(
        delayed(lovo_plan)(matrix, plan, k, inner_loo=True, irt_fitter=irt_fitter) for k in range(n)
    )
