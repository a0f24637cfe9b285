"""Tiny subsets that predict the full score (tinyBenchmarks-style selection).

Methods
-------
``anchor``      k-means on item embeddings (correctness columns, or IRT ``(a, d)``);
                the item nearest each centroid, weight = cluster mass. Balanced per
                subject: every subject gets anchors in proportion to its size.
``irt-info``    items with the largest Fisher information summed over the training
                models' abilities, allocated per subject; equal weights.
``stratified``  random items within strata (subject x difficulty quartile) in
                proportion to stratum size; weight = stratum mass / stratum draws.
``random``      uniform random items, equal weights.
``text``        cold start: k-means on sentence embeddings of the item texts
                (no model results needed); see :mod:`sharpbench.distill.coldstart`.
``cv``          greedy forward selection of the items whose answers predict the
                training models' full scores best in K-fold cross-validation
                (ridge; :mod:`sharpbench.distill.cv_select`); equal weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.choices import TINY_METHODS
from sharpbench.distill.errors import DistillError
from sharpbench.matrix import ResponseMatrix

__all__ = [
    "MIN_MODELS_TINY", "TINY_METHODS", "TinySubset", "allocate", "anchor_points", "decode_train", "encode_train",
    "select_tiny",
]

MIN_MODELS_TINY = {"anchor": 3, "irt-info": 3, "stratified": 1, "random": 0, "text": 0, "cv": 10}
"""Fewest models a method needs (anchor/irt-info fit IRT or cluster correctness columns)."""


@dataclass
class TinySubset:
    """A selected subset: item ids, estimator weights, and what the IRT estimators need."""

    method: str
    items: list[str]
    weights: np.ndarray
    all_items: list[str]
    item_params: pd.DataFrame | None = None  # a, d for every item of the benchmark
    lam: float | None = None  # gp-IRT mixing weight of the weighted estimator
    info: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] | None = None  # training models' subset answers and full scores (see encode_train)
    predictor: dict[str, Any] | None = None  # the cross-validated estimator choice (ScorePredictor.to_artifact)

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=float)
        if self.weights.shape != (len(self.items),):
            raise DistillError("one weight per selected item is required")
        if len(set(self.items)) != len(self.items):
            raise DistillError("selected items must be unique")

    @property
    def n_items(self) -> int:
        return len(self.items)

    def to_artifact(self) -> dict[str, Any]:
        """JSON-ready dict (also the on-disk format of ``save``)."""
        params = None
        if self.item_params is not None:
            params = {
                "item": list(map(str, self.item_params.index)),
                "a": self.item_params["a"].round(6).tolist(),
                "d": self.item_params["d"].round(6).tolist(),
            }
        return {
            "kind": "distill_tiny",
            "method": self.method,
            "items": self.items,
            "weights": self.weights.round(8).tolist(),
            "n_full_items": len(self.all_items),
            "all_items": self.all_items,
            "item_params": params,
            "gp_irt_lambda": self.lam,
            "info": self.info,
            "train": self.train,
            "predictor": self.predictor,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_artifact()))

    @classmethod
    def load(cls, path: str | Path) -> TinySubset:
        path = Path(path)
        if not path.exists():
            raise DistillError(f"subset file {path} does not exist")
        raw = json.loads(path.read_text())
        if raw.get("kind") != "distill_tiny":
            raise DistillError(f"{path} is not a tiny-subset file (written by `sharpbench distill tiny`)")
        params = None
        if raw.get("item_params"):
            p = raw["item_params"]
            params = pd.DataFrame({"a": p["a"], "d": p["d"]}, index=pd.Index(p["item"], name="item"))
        return cls(raw["method"], raw["items"], np.asarray(raw["weights"]), raw["all_items"], params,
                   raw.get("gp_irt_lambda"), raw.get("info", {}), raw.get("train"), raw.get("predictor"))

    def train_data(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Training models, their subset answers (n, k) with NaN, and their full scores (fractions)."""
        if self.train is None:
            raise DistillError("this subset file holds no training answers: recreate it with `sharpbench distill tiny`")
        return decode_train(self.train)


def encode_train(models: list[str], answers: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """Compact JSON form of binary training answers: one string per model, ``1``/``0``/``.`` (missing)."""
    a = np.asarray(answers, dtype=float)
    if not np.isin(a[~np.isnan(a)], (0.0, 1.0)).all():
        raise DistillError("training answers must be 0/1 (NaN = missing)")
    rows = ["".join("." if np.isnan(v) else str(int(v)) for v in row) for row in a]
    return {"models": list(map(str, models)), "answers": rows, "scores": np.round(scores, 8).tolist()}


def decode_train(train: dict[str, Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_train`."""
    table = {"1": 1.0, "0": 0.0, ".": np.nan}
    answers = np.array([[table[c] for c in row] for row in train["answers"]], dtype=float)
    return list(train["models"]), answers, np.asarray(train["scores"], dtype=float)


def allocate(sizes: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` draws over groups in proportion to ``sizes`` (largest remainder, capped by size).

    Every non-empty group gets at least one draw when ``n`` allows it.
    """
    sizes = np.asarray(sizes, dtype=int)
    if n > sizes.sum():
        raise DistillError(f"cannot draw {n} items from {sizes.sum()}")
    share = sizes / sizes.sum() * n
    out = np.floor(share).astype(int)
    if n >= (sizes > 0).sum():
        out = np.maximum(out, (sizes > 0).astype(int))
    out = np.minimum(out, sizes)
    while out.sum() > n:
        k = np.argmax(np.where(out > 1, out - share, -np.inf))
        out[k] -= 1
    while out.sum() < n:
        k = np.argmax(np.where(out < sizes, share - out, -np.inf))
        out[k] += 1
    return out


def _groups(matrix: ResponseMatrix, balance: bool) -> np.ndarray:
    if balance and "subject" in matrix.item_meta.columns:
        return matrix.item_meta["subject"].fillna("(none)").astype(str).to_numpy()
    return np.full(matrix.n_items, "all", dtype=object)


def anchor_points(emb: np.ndarray, groups: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-group k-means anchors: (positions of the items nearest each centroid, cluster-mass weights)."""
    from sklearn.cluster import KMeans

    _names, inv, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    ks = allocate(sizes, n)
    total = groups.size
    pos, wts = [], []
    for g, k in enumerate(ks):
        if k == 0:
            continue
        idx = np.flatnonzero(inv == g)
        x = emb[idx]
        if k >= idx.size:
            pos.extend(idx.tolist())
            wts.extend([1.0 / total] * idx.size)
            continue
        km = KMeans(n_clusters=int(k), n_init=3, random_state=seed).fit(x)
        dist = ((x[:, None, :] - km.cluster_centers_[None, :, :]) ** 2).sum(-1)
        for c in range(int(k)):
            members = km.labels_ == c
            if not members.any():
                continue
            best = idx[np.flatnonzero(members)[np.argmin(dist[members, c])]]
            pos.append(int(best))
            wts.append(members.sum() / total)
    return np.asarray(pos, dtype=int), np.asarray(wts, dtype=float)


def _correctness_embedding(matrix: ResponseMatrix) -> np.ndarray:
    v = matrix.values.T.copy()
    means = np.nanmean(np.where(np.isnan(v), np.nan, v), axis=1, keepdims=True)
    means = np.where(np.isnan(means), 0.5, means)
    return np.where(np.isnan(v), means, v)


def select_tiny(
    matrix: ResponseMatrix,
    n_items: int = 100,
    method: str = "anchor",
    *,
    seed: int = 0,
    balance: bool = True,
    embedding: str = "correctness",
    item_params: pd.DataFrame | None = None,
    abilities: np.ndarray | None = None,
    text_embeddings: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> TinySubset:
    """Pick ``n_items`` items of ``matrix`` by ``method`` (see module docstring).

    Parameters
    ----------
    matrix : training response matrix (binary; NaN = missing, skipped)
    n_items : subset size, 1 <= n_items <= number of items
    embedding : ``correctness`` (answer columns; default, the better one on MMLU-Pro's 29 models)
        or ``irt`` (item ``(a, d)``) for ``anchor``
    item_params : fitted ``a, d`` for every item (fitted here when needed and not given)
    abilities : training abilities for ``irt-info`` (default: a N(0, 1) grid)
    text_embeddings : (n_items, dim) for ``text`` (see ``coldstart.embed_texts``)
    scores : (n_models,) full scores for ``cv`` (default: the matrix row means, i.e. the matrix is the
        whole benchmark)
    """
    if method not in TINY_METHODS:
        raise DistillError(f"unknown method {method!r}; choose one of {', '.join(TINY_METHODS)}")
    if not 1 <= n_items <= matrix.n_items:
        raise DistillError(
            f"subset of {n_items} items requested but the benchmark has {matrix.n_items}; "
            f"choose --n-items between 1 and {matrix.n_items}"
        )
    need = MIN_MODELS_TINY[method]
    if method == "anchor" and embedding == "correctness":
        need = 2
    if matrix.n_models < need:
        raise DistillError(f"method {method!r} needs at least {need} models, the matrix has {matrix.n_models}")
    rng = np.random.default_rng(seed)
    groups = _groups(matrix, balance)
    needs_irt = method == "irt-info" or (method == "anchor" and embedding == "irt")
    if needs_irt and item_params is None:
        from sharpbench.distill.irt_bridge import fit_item_params

        item_params = fit_item_params(matrix)
    if item_params is not None:
        item_params = item_params.reindex(list(matrix.items))
    n_all = matrix.n_items
    if method == "random":
        pos = rng.choice(n_all, n_items, replace=False)
        w = np.full(n_items, 1.0 / n_items)
    elif method == "stratified":
        pos, w = _stratified(matrix, groups, n_items, rng)
    elif method == "anchor":
        if embedding == "irt":
            emb = item_params[["a", "d"]].to_numpy(dtype=float)  # type: ignore[index]
        elif embedding == "correctness":
            emb = _correctness_embedding(matrix)
        else:
            raise DistillError(f"unknown embedding {embedding!r}; use 'irt' or 'correctness'")
        pos, w = anchor_points(emb, groups, n_items, seed)
    elif method == "text":
        if text_embeddings is None:
            raise DistillError("method 'text' needs item text embeddings (item texts via --item-meta)")
        emb = np.asarray(text_embeddings, dtype=float)
        if emb.shape[0] != n_all:
            raise DistillError(f"{emb.shape[0]} text embeddings for {n_all} items")
        pos, w = anchor_points(emb, groups, n_items, seed)
    elif method == "cv":
        from sharpbench.distill.common import full_scores
        from sharpbench.distill.cv_select import greedy_cv_items

        truth = full_scores(matrix) if scores is None else np.asarray(scores, dtype=float)
        pos, _curve = greedy_cv_items(matrix.values, truth, n_items, folds=min(5, matrix.n_models // 2), seed=seed)
        w = np.full(n_items, 1.0 / n_items)
    else:  # irt-info
        pos, w = _irt_info(item_params, groups, n_items, abilities)  # type: ignore[arg-type]
    order = np.argsort(pos)
    items = np.asarray(matrix.items, dtype=object)
    return TinySubset(
        method=method,
        items=[str(x) for x in items[pos[order]]],
        weights=w[order] / w.sum(),
        all_items=list(matrix.items),
        item_params=item_params,
        info={"seed": seed, "balance": balance, "embedding": embedding if method == "anchor" else None},
    )


def _stratified(matrix: ResponseMatrix, groups: np.ndarray, n: int, rng: np.random.Generator):
    """Draws per subject in proportion to its size, then per difficulty quartile inside the subject."""
    p = matrix.item_pvalues().to_numpy()
    p = np.where(np.isnan(p), 0.5, p)
    _names, inv, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    pos, w = [], []
    for g, k in enumerate(allocate(sizes, n)):
        if k == 0:
            continue
        idx = np.flatnonzero(inv == g)
        n_q = 4 if k >= 4 and idx.size >= 8 else 1
        q = np.searchsorted(np.quantile(p[idx], np.linspace(0, 1, n_q + 1)[1:-1]), p[idx], side="right")
        q_sizes = np.bincount(q, minlength=n_q)
        for s, kq in enumerate(allocate(q_sizes, int(k))):
            if kq == 0:
                continue
            stratum = idx[q == s]
            pos.extend(rng.choice(stratum, int(kq), replace=False).tolist())
            w.extend([stratum.size / groups.size / kq] * int(kq))
    return np.asarray(pos, dtype=int), np.asarray(w, dtype=float)


def _irt_info(params: pd.DataFrame, groups: np.ndarray, n: int, abilities: np.ndarray | None):
    a = params["a"].to_numpy(dtype=float)
    d = params["d"].to_numpy(dtype=float)
    theta = np.asarray(abilities, dtype=float) if abilities is not None else np.linspace(-2, 2, 21)
    z = np.multiply.outer(theta, a) + d
    p = 0.5 * (1 + np.tanh(0.5 * z))
    info = (a**2 * p * (1 - p)).sum(axis=0)
    _names, inv, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    ks = allocate(sizes, n)
    pos = []
    for g, k in enumerate(ks):
        idx = np.flatnonzero(inv == g)
        pos.extend(idx[np.argsort(-info[idx], kind="stable")[: int(k)]].tolist())
    pos_arr = np.asarray(pos, dtype=int)
    return pos_arr, np.full(pos_arr.size, 1.0 / pos_arr.size)
