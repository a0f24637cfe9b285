"""Skill slices of a response matrix (Moayeri et al., 2024).

A *skill assignment* is a ``pd.Series`` indexed by item id whose values are
skill labels (one label per item; items without a label are left out). Skills
come from item metadata (this module), from clustering item-text embeddings
(:mod:`sharpbench.insight.embed_skills`) or from model-written rationales
(:mod:`sharpbench.insight.rationale_skills`).

Analyses: per model x skill accuracy with Wilson CIs, significant pairwise
skill differences (paired exact McNemar test, multiple-comparison corrected)
and a split-half routing evaluation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from sharpbench.choices import SKILL_SOURCES
from sharpbench.insight.stats import InsightError, adjust_pvalues, wilson_interval
from sharpbench.matrix import ResponseMatrix

__all__ = [
    "KNOWN_SKILL_COLUMNS",
    "SKILL_SOURCES",
    "NoSkillSourceError",
    "close_pairs",
    "metadata_skill_columns",
    "routing_evaluation",
    "skill_accuracy",
    "skill_differences",
    "skills_from_metadata",
]

# Metadata columns that name a skill, in order of preference.
KNOWN_SKILL_COLUMNS = ("category", "subject", "src", "source", "subset", "task", "benchmark", "skill")
# Columns that never name a skill (answers, texts).
_NOT_SKILLS = {"answer", "answer_index", "gold", "label", "question", "options", "choices", "text",
               "passage", "prompt", "explanation", "cot_content", "other"}


class NoSkillSourceError(InsightError):
    """The requested skill source is unavailable for this matrix."""


def metadata_skill_columns(item_meta: pd.DataFrame, max_fraction: float = 0.5) -> list[str]:
    """Columns of ``item_meta`` usable as skill labels.

    A column qualifies when it is one of :data:`KNOWN_SKILL_COLUMNS` or a
    string column whose number of distinct values is between 2 and
    ``max_fraction`` of the items (free text and ids are excluded).
    """
    n = len(item_meta)
    out: list[str] = []
    for col in list(KNOWN_SKILL_COLUMNS) + [c for c in item_meta.columns if c not in KNOWN_SKILL_COLUMNS]:
        if col not in item_meta.columns or str(col).lower() in _NOT_SKILLS:
            continue
        s = item_meta[col]
        if not (pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)):
            continue
        k = s.dropna().astype(str).nunique()
        size_ok = 2 <= k <= max(2, int(max_fraction * n)) or (col in KNOWN_SKILL_COLUMNS and k >= 1)
        if size_ok and s.dropna().map(lambda v: isinstance(v, str)).all():
            out.append(col)
    return out


def skills_from_metadata(matrix: ResponseMatrix, column: str | None = None) -> pd.Series:
    """Skill labels from an item-metadata column.

    Raises
    ------
    NoSkillSourceError
        When the matrix carries no usable metadata; the message names the
        ``--from`` options that remain.
    """
    cols = metadata_skill_columns(matrix.item_meta)
    if not cols:
        have = [str(c) for c in matrix.item_meta.columns]
        if not have:
            raise NoSkillSourceError(
                "the matrix carries no item metadata, so --from metadata cannot work; pass --items ITEMS.jsonl "
                "with a skill column (category, subject, src) for --from metadata, or with the question texts "
                "for --from embeddings or --from rationales"
            )
        raise NoSkillSourceError(
            f"no skill column in the item metadata (columns: {have[:8]}); --from embeddings and "
            "--from rationales remain (they read the question text)"
        )
    if column is None:
        column = cols[0]
    if column not in cols:
        raise NoSkillSourceError(f"metadata column {column!r} is not a usable skill column; choose one of {cols}")
    s = matrix.item_meta[column].dropna().astype(str)
    s.name = column
    return s


def _aligned(matrix: ResponseMatrix, skills: pd.Series) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Values restricted to labelled items, integer skill codes, skill names."""
    if not isinstance(skills, pd.Series):
        raise InsightError("skills must be a pandas Series indexed by item id")
    s = skills.copy()
    s.index = s.index.map(str)
    pos = {it: k for k, it in enumerate(matrix.items)}
    keep = [it for it in s.index if it in pos]
    if not keep:
        raise InsightError("no item of the skill assignment is in the matrix; do the item ids match?")
    cols = np.array([pos[it] for it in keep])
    cat = pd.Categorical(s.loc[keep].astype(str))
    return matrix.values[:, cols], np.asarray(cat.codes), list(cat.categories)


def skill_accuracy(matrix: ResponseMatrix, skills: pd.Series, confidence: float = 0.95) -> pd.DataFrame:
    """Per model x skill accuracy with Wilson confidence intervals.

    Returns
    -------
    DataFrame with columns ``model, skill, n_items, correct, accuracy,
    ci_low, ci_high`` (one row per model and skill; ``n_items`` counts the
    observed cells).
    """
    vals, codes, names = _aligned(matrix, skills)
    obs = ~np.isnan(vals)
    filled = np.where(obs, vals, 0.0)
    k = len(names)
    onehot = np.zeros((codes.size, k))
    onehot[np.arange(codes.size), codes] = 1.0
    correct = filled @ onehot  # (n_models, k)
    n = obs.astype(float) @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n > 0, correct / n, np.nan)
    lo, hi = wilson_interval(correct, n, confidence)
    return pd.DataFrame(
        {
            "model": np.repeat(np.asarray(matrix.models, dtype=object), k),
            "skill": np.tile(np.asarray(names, dtype=object), matrix.n_models),
            "n_items": n.ravel().astype(int),
            "correct": correct.ravel(),
            "accuracy": acc.ravel(),
            "ci_low": lo.ravel(),
            "ci_high": hi.ravel(),
        }
    )


def skill_differences(
    matrix: ResponseMatrix,
    skills: pd.Series,
    pairs: list[tuple[str, str]] | None = None,
    *,
    correction: str = "holm",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Where two models differ most, skill by skill, with corrected paired tests.

    For every model pair and skill, the items both models answered are
    compared with an exact two-sided McNemar test (binomial on discordant
    pairs). P-values are corrected over *all* tests run (Holm by default).

    Parameters
    ----------
    pairs : list of (model_a, model_b), optional
        Default: every unordered pair of models.

    Returns
    -------
    DataFrame with ``model_a, model_b, skill, n_items, acc_a, acc_b, diff,
    overall_diff, a_only, b_only, p_value, p_adjusted, significant``, sorted
    by significance then ``|diff|`` descending.
    """
    matrix.require_binary()
    vals, codes, names = _aligned(matrix, skills)
    index = {m: i for i, m in enumerate(matrix.models)}
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(matrix.models) for b in matrix.models[i + 1 :]]
    for a, b in pairs:
        for m in (a, b):
            if m not in index:
                raise InsightError(f"unknown model {m!r}; known: {list(matrix.models)[:8]} ...")
    if not pairs:
        raise InsightError("need at least two models to compare skills")
    k = len(names)
    onehot = np.zeros((codes.size, k))
    onehot[np.arange(codes.size), codes] = 1.0
    rows = []
    overall = matrix.model_accuracy()["accuracy"].to_numpy()
    for a, b in pairs:
        va, vb = vals[index[a]], vals[index[b]]
        both = ~np.isnan(va) & ~np.isnan(vb)
        w = onehot * both[:, None]
        n = w.sum(axis=0)
        ca = np.where(both, va, 0) @ w
        cb = np.where(both, vb, 0) @ w
        a_only = (np.where(both, (va == 1) & (vb == 0), False).astype(float)) @ onehot
        b_only = (np.where(both, (vb == 1) & (va == 0), False).astype(float)) @ onehot
        disc = a_only + b_only
        # exact two-sided binomial test on discordant pairs, p = 0.5
        p = np.where(disc > 0, np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(a_only, b_only), disc, 0.5)), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc_a, acc_b = ca / n, cb / n
        for j in range(k):
            if n[j] == 0:
                continue
            rows.append(
                (a, b, names[j], int(n[j]), acc_a[j], acc_b[j], acc_a[j] - acc_b[j],
                 overall[index[a]] - overall[index[b]], int(a_only[j]), int(b_only[j]), p[j])
            )
    out = pd.DataFrame(
        rows,
        columns=["model_a", "model_b", "skill", "n_items", "acc_a", "acc_b", "diff", "overall_diff",
                 "a_only", "b_only", "p_value"],
    )
    out["p_adjusted"] = adjust_pvalues(out["p_value"].to_numpy(), correction) if len(out) else []
    out["significant"] = out["p_adjusted"] < alpha
    out = out.assign(_abs=out["diff"].abs()).sort_values(["significant", "_abs"], ascending=[False, False])
    return out.drop(columns="_abs").reset_index(drop=True)


def close_pairs(matrix: ResponseMatrix, tol: float = 0.02) -> list[tuple[str, str]]:
    """Model pairs whose overall accuracies differ by at most ``tol`` (where skill trade-offs hide)."""
    acc = matrix.model_accuracy()["accuracy"]
    ms = list(matrix.models)
    return [(a, b) for i, a in enumerate(ms) for b in ms[i + 1 :] if abs(acc[a] - acc[b]) <= tol]


def routing_evaluation(
    matrix: ResponseMatrix,
    skills: pd.Series,
    *,
    n_splits: int = 20,
    seed: int = 0,
    min_items: int = 1,
) -> dict[str, object]:
    """Split-half routing: route each skill to the model best on it.

    For each of ``n_splits`` random halvings of the labelled items (stratified
    by skill), the best model per skill and the best single model are chosen on
    the *selection* half, and both policies are scored on the *held-out* half.
    Skills with fewer than ``min_items`` selection items route to the best
    single model. Missing cells count as unobserved (the policy's accuracy is
    the mean over observed cells of the chosen model).

    Returns
    -------
    dict with ``routed_accuracy``, ``single_accuracy``, ``oracle_accuracy``
    (best model per item on the held-out half, an upper bound), their standard
    deviations over splits, ``gain`` (routed - single, mean) with a 95%
    percentile interval over splits, ``best_single_model`` (most often chosen),
    ``routes`` (skill -> model chosen on the full data) and ``n_splits``.
    """
    if n_splits < 1:
        raise InsightError("n_splits must be >= 1")
    vals, codes, names = _aligned(matrix, skills)
    if matrix.n_models < 2:
        raise InsightError("routing needs at least two models")
    rng = np.random.default_rng(seed)
    obs = ~np.isnan(vals)
    filled = np.where(obs, vals, 0.0)
    routed, single, oracle, singles = [], [], [], []
    for _ in range(n_splits):
        sel = np.zeros(codes.size, dtype=bool)
        for j in range(len(names)):
            idx = np.flatnonzero(codes == j)
            rng.shuffle(idx)
            sel[idx[: (idx.size + 1) // 2]] = True
        test = ~sel
        route = _best_per_skill(filled, obs, codes, sel, len(names), min_items)
        best_single = int(np.argmax(_acc(filled[:, sel], obs[:, sel])))
        chosen = route[codes[test]]
        cols = np.flatnonzero(test)
        o = obs[chosen, cols]
        routed.append(float(filled[chosen, cols][o].mean()))
        single.append(float(np.nanmean(np.where(obs[best_single, test], vals[best_single, test], np.nan))))
        oracle.append(float(np.nanmax(np.where(obs[:, test], vals[:, test], np.nan), axis=0).mean()))
        singles.append(best_single)
    routed_a, single_a = np.array(routed), np.array(single)
    gain = routed_a - single_a
    full_route = _best_per_skill(filled, obs, codes, np.ones(codes.size, bool), len(names), min_items)
    return {
        "routed_accuracy": float(routed_a.mean()),
        "routed_sd": float(routed_a.std(ddof=1)) if n_splits > 1 else 0.0,
        "single_accuracy": float(single_a.mean()),
        "single_sd": float(single_a.std(ddof=1)) if n_splits > 1 else 0.0,
        "oracle_accuracy": float(np.mean(oracle)),
        "gain": float(gain.mean()),
        "gain_ci": (float(np.percentile(gain, 2.5)), float(np.percentile(gain, 97.5))),
        "best_single_model": matrix.models[int(np.bincount(singles).argmax())],
        "routes": {names[j]: matrix.models[int(full_route[j])] for j in range(len(names))},
        "n_splits": n_splits,
        "n_items": int(codes.size),
    }


def _acc(filled: np.ndarray, obs: np.ndarray) -> np.ndarray:
    n = obs.sum(axis=1)
    return np.where(n > 0, filled.sum(axis=1) / np.maximum(n, 1), -np.inf)


def _best_per_skill(
    filled: np.ndarray, obs: np.ndarray, codes: np.ndarray, sel: np.ndarray, k: int, min_items: int
) -> np.ndarray:
    best_single = int(np.argmax(_acc(filled[:, sel], obs[:, sel])))
    route = np.full(k, best_single)
    for j in range(k):
        m = sel & (codes == j)
        if m.sum() >= min_items:
            route[j] = int(np.argmax(_acc(filled[:, m], obs[:, m])))
    return route
