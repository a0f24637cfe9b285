"""Hard and discriminative subsets by progressive deletion (the MAGI method).

``select_hard`` ranks the items (see :mod:`sharpbench.distill.hard_rank`),
deletes the lowest-ranked ones in steps, and at every step recomputes every
model's score and the selection metrics. The chosen subset then goes through
the rest of the pipeline (``select_mask``): penalty padding and the lift above
chance. Metrics:

``std_top``        std. dev. of the top-N models' scores (top-N by full score, guessers excluded)
``std_ratio``      ``std_top`` over its value on the full benchmark (discriminative-power ratio)
``voter_penalty``  mean over voters of (voter's score on the subset the *whole pipeline* selects
                   without it) minus (its score on the subset selected with it); > 0 = voters are
                   burned. In the trend table (deletion only) that pipeline is ranking + cut; for the
                   chosen subset it also reruns padding and the lift (``lovo_scores``), one pipeline
                   per voter. ``voter_penalty_max`` is the largest voter's.
``penalty_vs_unpadded_lovo``  chosen subset only: the padded subset against the *unpadded*
                   leave-one-voter-out cuts, i.e. the gap the padding is tuned to close (~0 by
                   construction; not a voter penalty, kept to show what padding does)
``chance``         random-guess baseline of the subset: mean over its items of 1 / n_options
``min_score``, ``min_minus_chance``  lowest non-guesser score, and it minus ``chance``
``share_below_chance``  share of non-guesser models scoring below ``chance`` (MAGI: none should)
``n_items``        subset size
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.distill.common import (
    chance_rates,
    describe_chance,
    full_scores,
    require_models,
    subset_scores,
)
from sharpbench.distill.errors import DistillError
from sharpbench.distill.hard_pad import lift_above_chance
from sharpbench.distill.hard_rank import (
    IRT_RANKINGS,
    RANKINGS,
    deletion_order,
    detect_guessers,
    keep_scores,
    loo_keep_scores,
)
from sharpbench.matrix import ResponseMatrix

__all__ = [
    "MIN_MODELS_HARD",
    "HardPlan",
    "HardResult",
    "Selection",
    "default_fractions",
    "lovo_plan",
    "lovo_scores",
    "select_hard",
    "select_mask",
]

MIN_MODELS_HARD = 4
"""A voter pool of at least 2 besides the reference, plus top models to compare."""


def default_fractions(step: float = 0.05, stop: float = 0.95) -> np.ndarray:
    """Fractions deleted at each step: 0, step, ..., stop."""
    return np.round(np.arange(0.0, stop + 1e-9, step), 6)


def _masks(order: np.ndarray, n_delete: np.ndarray) -> np.ndarray:
    """Keep masks (..., n_steps, n_items) from deletion order(s) (..., n_items)."""
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.broadcast_to(np.arange(order.shape[-1]), order.shape), axis=-1)
    return pos[..., None, :] >= n_delete[:, None]


@dataclass
class HardPlan:
    """Everything one ranking needs to score any subset quickly (used by the optimiser)."""

    values: np.ndarray
    method: str
    order: np.ndarray
    loo_orders: np.ndarray | None
    voters: np.ndarray
    top: np.ndarray
    regular: np.ndarray
    chance: np.ndarray
    reference: int | None
    std_full: float

    def liftable(self) -> np.ndarray:
        """Non-guesser models at or above the chance baseline on the full benchmark (the lift's targets)."""
        full = subset_scores(self.values, np.ones(self.values.shape[1], dtype=bool))
        return self.regular[full[self.regular] >= self.chance.mean()]

    def n_delete(self, fractions: np.ndarray) -> np.ndarray:
        n = self.values.shape[1]
        return np.minimum(np.round(np.asarray(fractions) * n).astype(int), n - 1)

    def keep_mask(self, fraction: float) -> np.ndarray:
        return _masks(self.order, self.n_delete(np.array([fraction])))[0]

    def loo_masks(self, fractions: np.ndarray) -> np.ndarray | None:
        """(n_voters, n_steps, n_items) keep masks of the leave-one-voter-out selections."""
        if self.loo_orders is None:
            return None
        return _masks(self.loo_orders, self.n_delete(fractions))

    def penalties(self, masks: np.ndarray, loo: np.ndarray | None) -> np.ndarray:
        """Voter penalties (n_steps, n_voters) of selections ``masks`` (n_steps, n_items)."""
        if loo is None:
            return np.full((masks.shape[0], self.voters.size), np.nan)
        x = self.values[self.voters]
        obs = ~np.isnan(x)
        xf = np.where(obs, x, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out_score = np.einsum("vsn,vn->vs", loo, xf) / np.einsum("vsn,vn->vs", loo, obs.astype(float))
            in_score = (masks.astype(float) @ xf.T) / (masks.astype(float) @ obs.T.astype(float))
        return out_score.T - in_score

    def metrics(self, masks: np.ndarray, penalties: np.ndarray) -> pd.DataFrame:
        """Selection metrics for keep masks (n_steps, n_items) and their voter penalties."""
        scores = subset_scores(self.values, masks)
        std_top = np.nanstd(scores[:, self.top], axis=1)
        reg = scores[:, self.regular]
        m = masks.astype(float)
        chance = (m @ self.chance) / m.sum(axis=1)
        min_score = np.nanmin(reg, axis=1)
        out = {
            "n_items": masks.sum(axis=1),
            "std_top": std_top,
            "std_ratio": std_top / self.std_full if self.std_full > 0 else np.nan,
            "voter_penalty": np.nanmean(penalties, axis=1) if np.isfinite(penalties).any() else np.nan,
            "voter_penalty_max": np.nanmax(penalties, axis=1) if np.isfinite(penalties).any() else np.nan,
            "min_score": min_score,
            "chance": chance,
            "min_minus_chance": min_score - chance,
            "share_below_chance": np.mean(reg < chance[:, None], axis=1),
        }
        if self.reference is not None:
            full = subset_scores(self.values, np.ones(self.values.shape[1], dtype=bool))
            z = (scores - np.nanmean(scores[:, self.regular], axis=1, keepdims=True)) / np.nanstd(
                scores[:, self.regular], axis=1, keepdims=True
            )
            z_full = (full - np.nanmean(full[self.regular])) / np.nanstd(full[self.regular])
            out["reference_gain_z"] = z[:, self.reference] - z_full[self.reference]
        return pd.DataFrame(out)


@dataclass(frozen=True)
class Selection:
    """The pipeline steps after the ranking, for one chosen subset.

    ``fraction`` of the items is deleted by the ranking; ``pad`` re-adds deleted
    items for the voters burned relative to the unpadded leave-one-voter-out
    cuts; ``lift_to_chance`` then re-adds items until no non-guesser model is
    below the subset's chance baseline. ``window`` (fractions of the deleted
    items, 0 = deleted first) and ``scale`` (count multiplier) apply to both.
    """

    fraction: float
    pad: bool = True
    window: tuple[float, float] = (0.0, 1.0)
    scale: float = 1.0
    lift_to_chance: bool = True
    tol: float = 0.002

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction < 1.0:
            raise DistillError(f"fraction deleted must be in [0, 1), got {self.fraction}")
        lo, hi = self.window
        if not 0.0 <= lo < hi <= 1.0:
            raise DistillError(f"padding window must satisfy 0 <= lo < hi <= 1, got {self.window}")
        if not self.scale > 0:
            raise DistillError(f"padding scale must be > 0, got {self.scale}")


@dataclass
class HardResult:
    """Outcome of ``select_hard``: the score-trend table, metrics per step, and the chosen subset."""

    method: str
    reference: str | None
    fractions: np.ndarray
    scores: pd.DataFrame  # index fraction deleted, columns models
    metrics: pd.DataFrame  # index fraction deleted
    penalties: pd.DataFrame  # index fraction deleted, columns voters
    guessers: pd.DataFrame
    voters: list[str]
    top_models: list[str]
    deletion_order: list[str]
    selected_items: list[str]
    selected_fraction: float
    padding: dict[str, int] = field(default_factory=dict)
    selected_metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    pareto: pd.DataFrame | None = None
    voter_penalties: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    lovo_cost: dict[str, Any] = field(default_factory=dict)
    chance_source: str = ""
    chance_shortfall: dict[str, float] = field(default_factory=dict)
    lifted: dict[str, int] = field(default_factory=dict)
    lift_to_chance: bool = True

    @property
    def chance_note(self) -> str:
        """One sentence on MAGI's "no model below random" objective for the chosen subset."""
        if not self.chance_shortfall:
            lift = f"; {sum(self.lifted.values())} item(s) re-added to lift models above it" if self.lifted else ""
            return f"no model below chance{lift}"
        worst = sorted(self.chance_shortfall.items(), key=lambda kv: -kv[1])
        head = f"{len(worst)} model(s) below chance: " + ", ".join(f"{m} ({100 * g:.2f} pts)" for m, g in worst)
        if not self.lift_to_chance:
            return f"{head} (the lift above chance is off)"
        full, base = self.scores.iloc[0], float(self.metrics["chance"].iloc[0])
        already = [m for m, _ in worst if full[m] < base]
        stuck = [m for m, _ in worst if full[m] >= base]
        why = []
        if already:
            why.append(f"{', '.join(already)} below chance on the full benchmark too (not lifted)")
        if stuck:
            why.append(f"no deleted item left in the padding window that {', '.join(stuck)} answered correctly")
        return f"{head}; {'; '.join(why)}"

    def subset(self, fraction: float) -> list[str]:
        """Item ids kept after deleting ``fraction`` of the items (no padding)."""
        n = len(self.deletion_order)
        k = min(round(fraction * n), n - 1)
        return self.deletion_order[k:]

    def summary(self) -> pd.DataFrame:
        """Baseline vs subset: size, std of top-N, ratio, voter penalties (points), chance objective."""
        b, s = self.baseline_metrics, self.selected_metrics
        rows = [
            ("items", b["n_items"], s["n_items"]),
            ("size ratio (full / subset)", 1.0, b["n_items"] / s["n_items"]),
            (f"std of top-{len(self.top_models)} scores", b["std_top"], s["std_top"]),
            ("discriminative ratio (std / baseline std)", 1.0, s["std_top"] / b["std_top"]),
            ("mean voter penalty, whole-pipeline LOVO (points)", 0.0, 100 * s.get("voter_penalty", np.nan)),
            ("max voter penalty, whole-pipeline LOVO (points)", 0.0, 100 * s.get("voter_penalty_max", np.nan)),
            ("penalty vs unpadded LOVO cuts, padding target (points)", 0.0,
             100 * s.get("penalty_vs_unpadded_lovo", np.nan)),
            ("chance baseline (mean 1/n_options)", b["chance"], s["chance"]),
            ("min score - chance (points)", 100 * b["min_minus_chance"], 100 * s["min_minus_chance"]),
            ("share of models below chance", b["share_below_chance"], s["share_below_chance"]),
        ]
        return pd.DataFrame(rows, columns=["metric", "baseline", "subset"]).set_index("metric")

    def to_artifact(self) -> dict[str, Any]:
        """JSON-ready dict for the store / HTML report."""
        return {
            "kind": "distill_hard",
            "method": self.method,
            "reference": self.reference,
            "voters": self.voters,
            "top_models": self.top_models,
            "guessers": [m for m, g in self.guessers["is_guesser"].items() if g],
            "selected_fraction": self.selected_fraction,
            "selected_items": self.selected_items,
            "padding": self.padding,
            "lifted_above_chance": self.lifted,
            "chance_source": self.chance_source,
            "chance_note": self.chance_note,
            "chance_shortfall": self.chance_shortfall,
            "voter_penalties": {k: float(v) for k, v in self.voter_penalties.items()},
            "lovo_cost": self.lovo_cost,
            "summary": self.summary().reset_index().to_dict(orient="records"),
            "metrics": self.metrics.reset_index().to_dict(orient="records"),
            "scores": self.scores.reset_index().to_dict(orient="records"),
            "pareto": None if self.pareto is None else self.pareto.to_dict(orient="records"),
        }


def build_plan(
    matrix: ResponseMatrix,
    method: str,
    *,
    reference: str | None = None,
    top_n: int = 10,
    exclude_voters: Sequence[str] = (),
    chance: np.ndarray | None = None,
    guessers: pd.DataFrame | None = None,
    irt_fitter: Callable[[ResponseMatrix], pd.DataFrame] | None = None,
    loo: bool = True,
) -> tuple[HardPlan, pd.DataFrame]:
    """Validate inputs, detect guessers, and precompute the ranking and (``loo``) its leave-one-voter-out variants."""
    if method not in RANKINGS:
        raise DistillError(f"unknown method {method!r}; choose one of {', '.join(RANKINGS)}")
    require_models(matrix, MIN_MODELS_HARD, "a hard-subset selection")
    pos = {m: i for i, m in enumerate(matrix.models)}
    ref_idx = None
    if reference is not None:
        if reference not in pos:
            raise DistillError(
                f"reference model {reference!r} is not in the matrix; models are e.g. {list(matrix.models)[:5]}"
            )
        ref_idx = pos[reference]
    elif method == "ref-vs-others":
        raise DistillError("method 'ref-vs-others' needs --reference MODEL")
    unknown = [m for m in exclude_voters if m not in pos]
    if unknown:
        raise DistillError(f"excluded voter(s) not in the matrix: {unknown}")
    if chance is None:
        chance = chance_rates(matrix)
    if guessers is None:
        guessers = detect_guessers(matrix, chance)
    is_g = guessers["is_guesser"].reindex(list(matrix.models)).fillna(False).to_numpy(dtype=bool)
    drop = set(exclude_voters) | ({reference} if reference else set())
    voters = np.array([i for i, m in enumerate(matrix.models) if m not in drop and not is_g[i]], dtype=int)
    if voters.size < 2:
        raise DistillError(
            f"only {voters.size} voter model(s) left after removing the reference, excluded models and "
            f"guessers; at least 2 are needed"
        )
    regular = np.flatnonzero(~is_g)
    full = full_scores(matrix)
    top = regular[np.argsort(-np.nan_to_num(full[regular], nan=-1.0), kind="stable")[: max(2, min(top_n, regular.size))]]
    keep = keep_scores(matrix, method, voters, ref_idx, irt_fitter)
    loo_keep = loo_keep_scores(matrix, method, voters, ref_idx, irt_fitter) if loo else None
    plan = HardPlan(
        values=matrix.values,
        method=method,
        order=deletion_order(keep),
        loo_orders=None if loo_keep is None else deletion_order(loo_keep),
        voters=voters,
        top=top,
        regular=regular,
        chance=np.asarray(chance, dtype=float),
        reference=ref_idx,
        std_full=float(np.nanstd(full[top])),
    )
    return plan, guessers


def select_mask(plan: HardPlan, sel: Selection) -> tuple[np.ndarray, dict[int, int], dict[int, int], dict[int, float]]:
    """The chosen subset of a plan: cut at ``sel.fraction``, penalty padding, lift above chance.

    The lift targets the non-guesser models at or above chance on the full
    benchmark (``HardPlan.liftable``): no subset can honestly put a model that
    is below chance on every item pool above it, and chasing it costs the
    subset its discrimination.

    Returns
    -------
    (keep mask (n_items,), {voter position: items padded}, {model position: items re-added by the
    lift}, {non-guesser position: chance baseline minus score} for the models below chance on the subset)
    """
    mask = plan.keep_mask(sel.fraction)
    padded: dict[int, int] = {}
    if sel.pad:
        if plan.loo_orders is None:
            raise DistillError("penalty padding needs the leave-one-voter-out rankings (build the plan with loo=True)")
        loo = plan.loo_masks(np.array([sel.fraction]))[:, 0, :]
        mask, padded = _pad_for_penalty(plan, mask, loo, sel.window, sel.scale, sel.tol)
    lifted: dict[int, int] = {}
    if sel.lift_to_chance:
        mask, lifted, _ = lift_above_chance(
            plan.values, mask, plan.order, plan.chance, plan.liftable(), lo=sel.window[0], hi=sel.window[1],
            scale=sel.scale,
        )
    scores = subset_scores(plan.values, mask)
    base = float(plan.chance[mask].mean())
    short = {int(m): base - float(scores[m]) for m in plan.regular if scores[m] < base}
    return mask, padded, lifted, short


def lovo_plan(
    matrix: ResponseMatrix,
    plan: HardPlan,
    k: int,
    *,
    inner_loo: bool,
    irt_fitter: Callable[[ResponseMatrix], pd.DataFrame] | None = None,
) -> HardPlan:
    """The plan the pipeline builds with voter ``plan.voters[k]`` left out of the pool.

    Guessers, top models, chance rates and the reference do not depend on the
    voter pool and are kept. The ranking is recomputed without the voter (for the
    IRT rankings it is the refit already made for ``plan.loo_orders[k]``: the same
    call), and, when ``inner_loo`` (padding is part of the pipeline), so are its
    own leave-one-voter-out rankings: one IRT refit per remaining voter.
    """
    if plan.voters.size < 3:
        raise DistillError(
            f"a whole-pipeline voter penalty needs at least 3 voters (the pipeline needs 2 once one is left "
            f"out), there are {plan.voters.size}"
        )
    voters = np.delete(plan.voters, k)
    if plan.method in IRT_RANKINGS and plan.loo_orders is not None:
        order = plan.loo_orders[k]
    else:
        order = deletion_order(keep_scores(matrix, plan.method, voters, plan.reference, irt_fitter))
    loo = deletion_order(loo_keep_scores(matrix, plan.method, voters, plan.reference, irt_fitter)) if inner_loo else None
    return replace(plan, order=order, loo_orders=loo, voters=voters)


def _lovo_score(
    matrix: ResponseMatrix | None, plan: HardPlan, k: int, sel: Selection, irt_fitter, sub: HardPlan | None = None
) -> float:
    """Score of voter ``plan.voters[k]`` on the subset the pipeline selects without it."""
    if sub is None:
        sub = lovo_plan(matrix, plan, k, inner_loo=sel.pad, irt_fitter=irt_fitter)  # type: ignore[arg-type]
    mask = select_mask(sub, sel)[0]
    v = plan.voters[k]
    return float(subset_scores(plan.values[v : v + 1], mask)[0])


def lovo_scores(
    matrix: ResponseMatrix | None,
    plan: HardPlan,
    sel: Selection,
    *,
    irt_fitter: Callable[[ResponseMatrix], pd.DataFrame] | None = None,
    plans: Sequence[HardPlan] | None = None,
    n_jobs: int = 1,
) -> np.ndarray:
    """Every voter's score on the subset the whole pipeline selects without it (n_voters,).

    One pipeline per voter: ranking without the voter (``lovo_plan``), cut,
    padding against that pool's own leave-one-out cuts, lift above chance. The
    voter penalty of the subset ``select_mask(plan, sel)`` is this minus the
    voters' scores on it. ``plans`` reuses prebuilt ``lovo_plan`` results (the
    optimiser builds them once); ``n_jobs`` > 1 runs the voters in parallel
    processes (joblib). Cost: one cut + padding per voter, plus building the
    plans (IRT rankings: one refit per voter pair when padding).
    """
    n = plan.voters.size
    if plans is not None and len(plans) != n:
        raise DistillError(f"got {len(plans)} leave-one-voter-out plans for {n} voters")
    subs = [None] * n if plans is None else list(plans)
    if n_jobs == 1:
        out = [_lovo_score(matrix, plan, k, sel, irt_fitter, subs[k]) for k in range(n)]
    else:
        from joblib import Parallel, delayed

        out = Parallel(n_jobs=n_jobs)(delayed(_lovo_score)(matrix, plan, k, sel, irt_fitter, subs[k]) for k in range(n))
    return np.asarray(out, dtype=float)


def select_hard(
    matrix: ResponseMatrix,
    method: str = "ref-vs-others",
    *,
    reference: str | None = None,
    fractions: np.ndarray | None = None,
    fraction: float = 0.8,
    top_n: int = 10,
    exclude_voters: Sequence[str] = (),
    pad: bool = True,
    pad_window: tuple[float, float] = (0.0, 1.0),
    pad_scale: float = 1.0,
    lift_to_chance: bool = True,
    chance: np.ndarray | None = None,
    chance_source: str | None = None,
    irt_fitter: Callable[[ResponseMatrix], pd.DataFrame] | None = None,
    voter_penalty: bool = True,
    n_jobs: int = 1,
) -> HardResult:
    """Progressive deletion with per-step metrics and a chosen (padded, lifted) subset.

    Parameters
    ----------
    matrix : ResponseMatrix, binary or partial scores, NaN = missing (skipped in every mean)
    method : ranking, one of ``ref-vs-others, mean, irt-difficulty, irt-discrimination``
    reference : model id (required for ``ref-vs-others``; flagged as unfairly scored)
    fractions : fractions deleted at each step of the trend table (default 0..0.95 by 0.05)
    fraction : fraction deleted in the chosen subset (0.8 = 5x smaller, as MAGI)
    top_n : N in "std. dev. of the top-N model scores"
    exclude_voters : models kept out of the voter pool (guessers are always excluded)
    pad : re-add deleted items that burned voters got right (gap to the unpadded leave-one-out cuts)
    pad_window : candidate window over the deleted items (0 = deleted first, 1 = deleted last)
    pad_scale : multiplier on the number of items re-added per model and round
    lift_to_chance : re-add items until no non-guesser model scores below the subset's chance
        baseline (MAGI's "no model below random"); on by default
    chance : per-item random-guess rate; default ``1 / n_choices`` from the item metadata, 1/4 where unknown
    chance_source : how ``chance`` was obtained, for the reports (default: described from the metadata)
    irt_fitter : ``matrix -> DataFrame(a, d)``; default fits a 2PL with ``sharpbench.irt``
    voter_penalty : compute the voter penalties: the trend table's (one ranking per voter) and the
        chosen subset's whole-pipeline leave-one-voter-out (one pipeline per voter; IRT rankings
        with padding refit once per voter pair)
    n_jobs : parallel processes for the whole-pipeline leave-one-voter-out (joblib)
    """
    if method in IRT_RANKINGS:
        matrix.require_binary()
    sel = Selection(fraction=float(fraction), pad=pad, window=tuple(pad_window), scale=pad_scale,
                    lift_to_chance=lift_to_chance)  # fmt: skip
    if method in IRT_RANKINGS and irt_fitter is None:
        from sharpbench.distill.irt_bridge import fit_item_params

        irt_fitter = fit_item_params
    if chance is None:
        chance, chance_source = chance_rates(matrix), describe_chance(matrix)
    plan, guessers = build_plan(
        matrix,
        method,
        reference=reference,
        top_n=top_n,
        exclude_voters=exclude_voters,
        chance=chance,
        irt_fitter=irt_fitter,
        loo=voter_penalty or pad,
    )
    fr = default_fractions() if fractions is None else np.asarray(fractions, dtype=float)
    fr = np.unique(np.append(fr, [0.0, fraction]))
    masks = _masks(plan.order, plan.n_delete(fr))
    loo = plan.loo_masks(fr) if voter_penalty else None
    pen = plan.penalties(masks, loo)
    metrics = plan.metrics(masks, pen).set_index(pd.Index(fr, name="fraction_deleted"))
    scores = pd.DataFrame(subset_scores(matrix.values, masks), index=metrics.index, columns=list(matrix.models))
    voters = [matrix.models[i] for i in plan.voters]
    penalties = pd.DataFrame(pen, index=metrics.index, columns=voters)

    chosen, padded, lifted, short = select_mask(plan, sel)
    honest = np.full(plan.voters.size, np.nan)
    cost: dict[str, Any] = {}
    if voter_penalty and plan.voters.size < 3:
        cost = {"skipped": f"not computed: {plan.voters.size} voters, the pipeline needs 2 once one is left out"}
    elif voter_penalty:
        t0 = time.perf_counter()
        out_scores = lovo_scores(matrix, plan, sel, irt_fitter=irt_fitter, n_jobs=n_jobs)
        honest = out_scores - subset_scores(plan.values[plan.voters], chosen)
        cost = {"pipelines": int(plan.voters.size), "seconds": time.perf_counter() - t0, "n_jobs": n_jobs}
    sel_metrics = plan.metrics(chosen[None, :], honest[None, :]).iloc[0].to_dict()
    if plan.loo_orders is not None:
        step = int(np.flatnonzero(np.isclose(fr, fraction))[0])
        unpadded = plan.penalties(chosen[None, :], plan.loo_masks(fr[step : step + 1]))
        sel_metrics["penalty_vs_unpadded_lovo"] = float(np.nanmean(unpadded))
    items = np.asarray(matrix.items, dtype=object)
    return HardResult(
        method=method,
        reference=reference,
        fractions=fr,
        scores=scores,
        metrics=metrics,
        penalties=penalties,
        guessers=guessers,
        voters=voters,
        top_models=[matrix.models[i] for i in plan.top],
        deletion_order=[str(x) for x in items[plan.order]],
        selected_items=[str(x) for x in items[np.flatnonzero(chosen)]],
        selected_fraction=float(fraction),
        padding={matrix.models[m]: k for m, k in padded.items()},
        selected_metrics={k: float(v) for k, v in sel_metrics.items()},
        baseline_metrics={k: float(v) for k, v in metrics.iloc[0].to_dict().items()},
        voter_penalties=pd.Series(honest, index=pd.Index(voters, name="voter"), name="voter_penalty")
        if voter_penalty
        else pd.Series(dtype=float),
        lovo_cost=cost,
        chance_source=chance_source or "per-item chance rates given by the caller",
        chance_shortfall={matrix.models[m]: float(g) for m, g in short.items()},
        lifted={matrix.models[m]: k for m, k in lifted.items()},
        lift_to_chance=lift_to_chance,
    )


def _pad_for_penalty(
    plan: HardPlan, mask: np.ndarray, loo: np.ndarray, window: tuple[float, float], scale: float, tol: float
) -> tuple[np.ndarray, dict[int, int]]:
    """Re-add deleted items to close every voter's gap to its unpadded leave-one-voter-out cut.

    Greedy on the squared gaps: every voter's gap is its score on its
    leave-it-out cut ``loo`` (n_voters, n_items) minus its score on the current
    subset; a deleted item in the candidate window is worth
    ``sum_v gap_v * (x_v - score_v)``, i.e. the voters who got it right vote for
    it in proportion to their gap. Batches of the best items (``scale`` % of the
    subset each) are re-added while the sum of squared gaps falls; a batch that
    raises it is halved, down to one item. This closes the gap to the *unpadded*
    cuts only: the whole-pipeline penalty (``lovo_scores``) reruns this padding
    without each voter, and stays positive.
    """
    x = plan.values[plan.voters]
    obs = ~np.isnan(x)
    xf = np.where(obs, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        loo_score = (loo * xf).sum(axis=1) / (loo * obs).sum(axis=1)
    deleted = plan.order[~mask[plan.order]]
    lo, hi = int(np.floor(window[0] * deleted.size)), int(np.ceil(window[1] * deleted.size))
    cand = deleted[lo:hi]

    def gaps(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cur = (xf * m).sum(axis=1) / np.maximum((obs * m).sum(axis=1), 1)
        return np.nan_to_num(loo_score - cur), cur

    added: dict[int, int] = {}
    gap, cur = gaps(mask)
    batch = max(1, round(scale * 0.01 * mask.sum()))
    while cand.size and np.abs(gap).mean() >= tol:
        worth = gap @ ((xf[:, cand] - cur[:, None]) * obs[:, cand])
        best = np.argsort(-worth, kind="stable")[:batch]
        best = best[worth[best] > 0]
        if best.size == 0:
            break
        trial = mask.copy()
        trial[cand[best]] = True
        new_gap, new_cur = gaps(trial)
        if (new_gap**2).sum() >= (gap**2).sum():
            if batch == 1:
                break
            batch = max(1, batch // 2)
            continue
        for c in cand[best]:  # credit each item to the most-burned voter who got it right
            right = xf[:, c] > 0
            if right.any():
                v = int(plan.voters[np.flatnonzero(right)[np.argmax(gap[right])]])
                added[v] = added.get(v, 0) + 1
        mask, gap, cur = trial, new_gap, new_cur
        cand = np.delete(cand, best)
    return mask, added
