"""Prompt sensitivity of multiple-choice accuracy, and honest "max elicitation" estimates.

For each model, every prompt variant scores the same questions. Reported:
accuracy per variant, its mean / std / min-max spread, the best variant and
its ratio to the plain prompt, the accuracy of a per-item majority vote over
the variants' answers, and a held-out estimate of the best variant (choose it
on one half of the items, score it on the other half, both ways, over
repeated random splits): the in-sample best is optimistic by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sharpbench.compare.errors import CompareError


@dataclass
class ModelSensitivity:
    """Sensitivity summary of one model."""

    model: str
    variants: list[str]
    accuracy: np.ndarray  # (n_variants,)
    n_items: int
    plain: str
    best: str
    majority_vote: float
    held_out_best: float
    held_out_sd: float

    @property
    def mean(self) -> float:
        return float(self.accuracy.mean())

    @property
    def std(self) -> float:
        return float(self.accuracy.std(ddof=1)) if self.accuracy.size > 1 else 0.0

    @property
    def spread(self) -> float:
        return float(self.accuracy.max() - self.accuracy.min())

    @property
    def plain_accuracy(self) -> float:
        return float(self.accuracy[self.variants.index(self.plain)])

    @property
    def best_accuracy(self) -> float:
        return float(self.accuracy.max())

    @property
    def best_ratio(self) -> float | None:
        p = self.plain_accuracy
        return None if p == 0 else self.best_accuracy / p

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "n_items": self.n_items,
            "accuracy": {v: float(a) for v, a in zip(self.variants, self.accuracy)},
            "mean": self.mean,
            "std": self.std,
            "min": float(self.accuracy.min()),
            "max": self.best_accuracy,
            "spread": self.spread,
            "plain": self.plain_accuracy,
            "best_variant": self.best,
            "best_ratio_to_plain": self.best_ratio,
            "majority_vote": self.majority_vote,
            "held_out_best": self.held_out_best,
            "held_out_sd": self.held_out_sd,
            "optimism": self.best_accuracy - self.held_out_best,
        }


def majority_vote(pred: np.ndarray, *, prefer: int = 0) -> np.ndarray:
    """Per-item most frequent answer over variants.

    Parameters
    ----------
    pred : ndarray of int, shape (n_variants, n_items)
        Predicted original option index per variant and item.
    prefer : int
        Row whose answer wins a tie when it is among the tied answers;
        otherwise the smallest tied option index wins.

    Returns
    -------
    ndarray of int, shape (n_items,)
    """
    p = np.asarray(pred)
    if p.ndim != 2 or p.shape[0] == 0:
        raise CompareError(f"predictions must be (n_variants, n_items), got shape {p.shape}")
    n_opt = int(p.max()) + 1
    counts = np.zeros((n_opt, p.shape[1]), dtype=int)
    for row in p:
        counts[row, np.arange(p.shape[1])] += 1
    top = counts.max(axis=0)
    vote = counts.argmax(axis=0)
    pref = p[prefer]
    use_pref = counts[pref, np.arange(p.shape[1])] == top
    return np.where(use_pref, pref, vote)


def held_out_best(correct: np.ndarray, *, n_splits: int = 50, seed: int = 0) -> tuple[float, float]:
    """Accuracy of the variant chosen on one half of the items, measured on the other half.

    Parameters
    ----------
    correct : ndarray of shape (n_variants, n_items), 0/1
    n_splits : int
        Random half splits; each is used in both directions.

    Returns
    -------
    (mean, sd) over the 2 * n_splits held-out estimates.
    """
    c = np.asarray(correct, dtype=float)
    if c.ndim != 2 or c.shape[1] < 2:
        raise CompareError(f"need (n_variants, n_items >= 2) correctness, got shape {c.shape}")
    rng = np.random.default_rng(seed)
    n = c.shape[1]
    est = []
    for _ in range(n_splits):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 :]
        for sel, ev in ((a, b), (b, a)):
            best = int(np.argmax(c[:, sel].mean(axis=1)))
            est.append(c[best, ev].mean())
    return float(np.mean(est)), float(np.std(est, ddof=1))


def summarize_model(
    model: str,
    variants: Sequence[str],
    pred: np.ndarray,
    gold: np.ndarray,
    *,
    plain: str = "plain",
    n_splits: int = 50,
    seed: int = 0,
) -> ModelSensitivity:
    """Summary from predicted original option indices (n_variants, n_items) and gold (n_items,)."""
    p = np.asarray(pred, dtype=int)
    g = np.asarray(gold, dtype=int)
    if p.ndim != 2 or p.shape != (len(variants), g.size):
        raise CompareError(f"predictions shape {p.shape} does not match {len(variants)} variants x {g.size} items")
    names = list(variants)
    if plain not in names:
        raise CompareError(f"the variant set has no {plain!r} variant to compare with")
    correct = (p == g[None, :]).astype(float)
    acc = correct.mean(axis=1)
    vote = majority_vote(p, prefer=names.index(plain))
    ho, sd = held_out_best(correct, n_splits=n_splits, seed=seed)
    return ModelSensitivity(
        model=model,
        variants=names,
        accuracy=acc,
        n_items=int(g.size),
        plain=plain,
        best=names[int(np.argmax(acc))],
        majority_vote=float((vote == g).mean()),
        held_out_best=ho,
        held_out_sd=sd,
    )


def predicted_choice(result, item) -> int:
    """Index of the chosen option: argmax log-likelihood (per character for option-text answers)."""
    ll = np.array([c.loglik for c in result.choices], dtype=float)
    if item.metadata.get("answer_by_text"):
        ll = ll / np.array([max(len(c), 1) for c in item.choices], dtype=float)
    return int(np.argmax(ll))


@dataclass
class SensitivityResult:
    """Per-model sensitivity summaries for one variant set."""

    variants: list[dict[str, Any]]
    models: list[ModelSensitivity] = field(default_factory=list)
    tasks: str = "mmlu"

    def to_artifact(self) -> dict:
        return {"tasks": self.tasks, "variants": self.variants, "models": [m.to_dict() for m in self.models]}


def run_sensitivity(
    models: Sequence[str],
    *,
    tasks: str = "mmlu",
    variants: str = "default",
    limit: int = 100,
    batch_size: int = 16,
    n_splits: int = 50,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    store: Any = None,
) -> SensitivityResult:
    """Score every variant of ``limit`` MMLU-style questions with each model and summarise.

    With ``store`` (a :class:`~sharpbench.store.Store` or path), every
    (model, variant) is a run of its own in the store (task
    ``sensitivity:<tasks>:<variant>``), per item and per choice like any
    evaluation: a rerun reuses what is stored and an interrupted one resumes.
    """
    from sharpbench.compare.hf import load_tokenizer
    from sharpbench.compare.scoring import _backend
    from sharpbench.compare.variants import (
        build_item,
        chat_renderer,
        describe,
        mmlu_questions,
        variant_set,
    )

    say = progress or (lambda s: None)
    vs = variant_set(variants)
    max_fs = max(v.fewshot for v in vs)
    questions = mmlu_questions(limit, tasks=tasks, max_fewshot=max_fs)
    if len(questions) < 2:
        raise CompareError(f"only {len(questions)} question(s) found in {tasks!r}; need at least 2")
    gold = np.array([q.answer for q in questions])
    out = SensitivityResult(describe(vs), tasks=tasks)
    st, own = _open_store(store)
    try:
        for model in models:
            backend = _backend(model)
            chat = chat_renderer(load_tokenizer(model)) if any(v.chat for v in vs) else None
            pred = np.zeros((len(vs), len(questions)), dtype=int)
            for i, (v, desc) in enumerate(zip(vs, out.variants)):
                say(f"{model}: variant {i + 1}/{len(vs)} {v.name}")
                vitems = [build_item(q, v, chat=chat) for q in questions]
                results = variant_results(backend, [vi.item for vi in vitems], st, tasks, desc, questions,
                                          batch_size)
                for j, (vi, r) in enumerate(zip(vitems, results)):
                    pred[i, j] = vi.order[predicted_choice(r, vi.item)]
            out.models.append(summarize_model(str(model), [v.name for v in vs], pred, gold, n_splits=n_splits,
                                              seed=seed))
    finally:
        if own:
            st.close()
    return out


def _open_store(store: Any) -> tuple[Any, bool]:
    if store is None:
        return None, False
    from sharpbench.store import Store

    return (store, False) if isinstance(store, Store) else (Store(store, shared=True), True)


def variant_results(backend, items, st, tasks: str, desc: dict, questions, batch_size: int, *,
                    count_new: bool = False):
    """Per-item results of one variant: scored in memory, or through the store (reused when there).

    The run is task ``sensitivity:<tasks>:<variant>``; its key hashes the
    variant and the questions, so any command asking the same variant of the
    same questions (``sensitivity``, ``elicit``) shares it. With ``count_new``
    returns ``(results, n_scored_now, run_id)`` (``run_id`` None without a store).
    """
    from sharpbench.compare.scoring import score_item_list

    if st is None:
        res = score_item_list(backend, items, batch_size=batch_size)
        return (res, len(items), None) if count_new else res
    import hashlib
    import json

    from sharpbench.engine.pipeline import KEEP_LIMIT, store_scores
    from sharpbench.store import RunSpec

    key = json.dumps([desc, [(q.subject, q.question, q.options, q.answer) for q in questions]], sort_keys=True)
    spec = RunSpec(
        model_id=str(backend.model_id), fingerprint=str(backend.fingerprint), backend=str(backend.name),
        dtype=str(backend.dtype), task=f"sensitivity:{tasks}:{desc['name']}", num_fewshot=int(desc["fewshot"]),
        template_hash=hashlib.sha256(key.encode()).hexdigest()[:16], task_group=f"sensitivity:{tasks}",
        n_total=len(items),
    )
    done = st.stored_item_ids(spec.run_id)
    todo = [it for it in items if it.item_id not in done]
    store_scores(backend, st, spec, todo, batch_size=batch_size, limit=KEEP_LIMIT)
    by_id = {r.item_id: r for r in st.item_results(spec.run_id, [it.item_id for it in items])}
    res = [by_id[it.item_id] for it in items]
    return (res, len(todo), spec.run_id) if count_new else res


def plot_sensitivity(result: SensitivityResult, path: str | Path) -> Path:
    """Accuracy per variant (x) per model (one marker series each), with the plain prompt marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result.models:
        raise CompareError("nothing to plot: no model results")
    names = result.models[0].variants
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 4.5))
    for m in result.models:
        ax.plot(x, 100 * m.accuracy, marker="o", linestyle="-", label=f"{m.model} (plain {100 * m.plain_accuracy:.1f}%)")
    ax.axhline(25, color="grey", linestyle=":", label="chance (4 options)")
    ax.set_xticks(x, names, rotation=60, ha="right")
    ax.set_xlabel("prompt variant")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Prompt sensitivity on {result.tasks} ({result.models[0].n_items} questions)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p
