"""One-call summary of a response matrix (the ``matrix info`` command)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sharpbench.matrix.core import ResponseMatrix

__all__ = ["MatrixSummary", "summarize"]


@dataclass
class MatrixSummary:
    """Shape, missingness, accuracy per model (with CI), per-item p-values, constant items/models."""

    n_models: int
    n_items: int
    n_missing: int
    is_binary: bool
    accuracy: pd.DataFrame  # per model: accuracy, stderr, ci_low, ci_high, n_items, missing
    items: pd.DataFrame  # per item: p_value, n_obs, missing, constant ("all_correct"/"all_wrong"/"unobserved"/"")
    constant_models: list[str]

    @property
    def missing_fraction(self) -> float:
        return self.n_missing / max(self.n_models * self.n_items, 1)

    def to_dict(self) -> dict:
        const = self.items["constant"]
        return {
            "n_models": self.n_models,
            "n_items": self.n_items,
            "n_missing": self.n_missing,
            "missing_fraction": self.missing_fraction,
            "is_binary": self.is_binary,
            "n_constant_items": int((const != "").sum()),
            "constant_items": {k: int((const == k).sum()) for k in ("all_correct", "all_wrong", "unobserved")},
            "constant_models": self.constant_models,
            "accuracy": self.accuracy.reset_index().to_dict(orient="records"),
            "item_pvalues": {
                "mean": float(np.nanmean(self.items["p_value"])) if self.n_items else float("nan"),
                "quantiles": {
                    str(q): float(np.nanquantile(self.items["p_value"], q)) if self.items["p_value"].notna().any() else None
                    for q in (0.1, 0.5, 0.9)
                },
            },
        }


def summarize(m: ResponseMatrix, confidence: float = 0.95) -> MatrixSummary:
    """Compute the summary; accuracy CIs at ``confidence`` (Wilson for scores in [0, 1], see
    :meth:`ResponseMatrix.model_accuracy`)."""
    miss = m.missing_counts()
    acc = m.model_accuracy(confidence)
    acc["missing"] = miss["per_model"].to_numpy()
    p = m.item_pvalues()
    obs = m.observed
    n_obs = obs.sum(axis=0)
    const = np.where(
        n_obs == 0, "unobserved", np.where(p.to_numpy() == 1, "all_correct", np.where(p.to_numpy() == 0, "all_wrong", ""))
    )
    # "constant" also covers partial-credit items with one identical score everywhere
    flat = m.constant_items() & (const == "")
    const = np.where(flat, "constant", const)
    items = pd.DataFrame(
        {"p_value": p.to_numpy(), "n_obs": n_obs, "missing": miss["per_item"].to_numpy(), "constant": const},
        index=pd.Index(m.items, name="item"),
    )
    a = acc["accuracy"].to_numpy()
    constant_models = [mm for mm, v in zip(m.models, a) if v in (0.0, 1.0)]
    return MatrixSummary(
        n_models=m.n_models, n_items=m.n_items, n_missing=int((~obs).sum()), is_binary=m.is_binary,
        accuracy=acc, items=items, constant_models=constant_models,
    )
