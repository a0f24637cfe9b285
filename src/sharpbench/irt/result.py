"""The fitted IRT model: item and ability tables, fit statistics, save/load."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.irt.ability import _coords, estimate_abilities
from sharpbench.irt.data import Responses
from sharpbench.irt.em import e_step
from sharpbench.irt.errors import IRTError
from sharpbench.irt.icc import log_probs
from sharpbench.irt.information import (
    expected_score,
    item_information,
    test_information,
)
from sharpbench.irt.quadrature import make_quadrature
from sharpbench.matrix.core import ResponseMatrix

__all__ = ["PARAMETERISATION", "IRTFit", "as_matrix"]

#: Stated in every output: the logit and how b relates to it.
PARAMETERISATION = "slope-intercept: P = g + (u - g) / (1 + exp(-(a*theta + d))); b = -d/a, i.e. a*(theta - b)"


@dataclass
class IRTFit:
    """Result of ``OnePL/TwoPL/ThreePL/FourPL().fit(matrix)``.

    Attributes
    ----------
    items : DataFrame indexed by item id
        ``a, b, d, g, u`` (slope-intercept ``a*theta + d``, ``b = -d/a``), plus
        ``n_obs``, ``p_value`` and ``flag`` ("all_correct" / "all_wrong" /
        "at_bound" / "").
    abilities : DataFrame indexed by model id
        ``theta, se`` (``ability_method``: EAP by default) and ``flag``.
    """

    model: str
    items: pd.DataFrame
    abilities: pd.DataFrame
    loglik: float
    n_params: int
    n_respondents: int
    n_cells: int
    converged: bool
    n_iter: int
    quadrature: str
    prior: dict[str, Any]
    prior_label: str
    ability_method: str = "eap"
    parameterisation: str = PARAMETERISATION
    history: list[float] = field(default_factory=list)
    fit_seconds: float = float("nan")
    #: why EM stopped: "parameters" (no parameter moved more than tol), "objective" (the penalised
    #: log-likelihood settled, relative change < ftol) or "max_iter" (not converged)
    stop_reason: str = ""
    #: largest parameter change in the last EM iteration (g, u as probabilities)
    last_change: float = float("nan")

    # ---------------------------------------------------------- statistics
    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + self.n_params * float(np.log(max(self.n_respondents, 1)))

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        it = self.items
        g = it["g"].to_numpy(float)
        u = it["u"].to_numpy(float)
        return (
            it["a"].to_numpy(float),
            it["d"].to_numpy(float),
            g if np.any(g > 0) else None,
            u if np.any(u < 1) else None,
        )

    # --------------------------------------------------------- prediction
    def predict_proba(self, theta) -> np.ndarray:
        """P(correct) for each ability in ``theta`` (n_theta,) and item: (n_theta, n_items)."""
        theta = np.atleast_1d(np.asarray(theta, dtype=float))
        if theta.ndim != 1:
            raise IRTError(f"theta must be 1-D, got shape {theta.shape}")
        return np.exp(log_probs(theta, *self._params())[0])

    def item_information(self, theta) -> np.ndarray:
        """Item information (n_theta, n_items)."""
        return item_information(theta, *self._params())

    def test_information(self, theta) -> np.ndarray:
        """Test information (n_theta,)."""
        return test_information(theta, *self._params())

    def expected_score(self, theta) -> np.ndarray:
        """Expected number correct (n_theta,)."""
        return expected_score(theta, *self._params())

    def _aligned(self, matrix) -> np.ndarray:
        m = as_matrix(matrix)
        missing = [i for i in m.items if i not in self.items.index]
        if missing:
            raise IRTError(f"{len(missing)} item(s) were not in the fit, e.g. {missing[:3]}")
        pos = self.items.index.get_indexer(list(m.items))
        y = np.full((m.n_models, len(self.items)), np.nan)
        y[:, pos] = m.values
        return y

    def transform(self, matrix, method: str = "eap") -> pd.DataFrame:
        """Abilities of the respondents in ``matrix`` (items matched by id) under this fit."""
        y = self._aligned(matrix)
        th, se = estimate_abilities(y, *self._params(), method=method)
        return pd.DataFrame({"theta": th, "se": se}, index=pd.Index(as_matrix(matrix).models, name="model"))

    def score(self, matrix) -> float:
        """Mean marginal log-likelihood per observed cell of ``matrix`` (higher is better).

        Each respondent's ability is integrated over N(0, 1) (121-node grid),
        so respondents need not be those of the fit.
        """
        y = self._aligned(matrix)
        n_cells = int((~np.isnan(y)).sum())
        if n_cells == 0:
            raise IRTError("matrix has no observed cells on this fit's items")
        resp = Responses.from_values(y, collapse=False)
        ll, *_ = e_step(resp, make_quadrature("even:121"), _coords(*self._params()), counts=False)
        return ll / n_cells

    # ---------------------------------------------------------- save/load
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the CLI's ``--format json``)."""
        items = self.items.reset_index().rename(columns={self.items.index.name or "index": "item"})
        abil = self.abilities.reset_index().rename(columns={self.abilities.index.name or "index": "model"})
        return {
            "model": self.model,
            "parameterisation": self.parameterisation,
            "items": _records(items),
            "abilities": _records(abil),
            "ability_method": self.ability_method,
            "loglik": self.loglik,
            "aic": self.aic,
            "bic": self.bic,
            "n_params": self.n_params,
            "n_respondents": self.n_respondents,
            "n_cells": self.n_cells,
            "converged": self.converged,
            "n_iter": self.n_iter,
            "quadrature": self.quadrature,
            "prior": self.prior,
            "prior_label": self.prior_label,
            "fit_seconds": self.fit_seconds,
            "stop_reason": self.stop_reason,
            "last_change": self.last_change,
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> IRTFit:
        try:
            items = pd.DataFrame(obj["items"]).astype({"item": str}).set_index("item")
            abil = pd.DataFrame(obj["abilities"]).astype({"model": str}).set_index("model")
            return cls(
                model=obj["model"], items=items, abilities=abil, loglik=float(obj["loglik"]),
                n_params=int(obj["n_params"]), n_respondents=int(obj["n_respondents"]),
                n_cells=int(obj["n_cells"]), converged=bool(obj["converged"]), n_iter=int(obj["n_iter"]),
                quadrature=obj["quadrature"], prior=obj["prior"], prior_label=obj["prior_label"],
                ability_method=obj.get("ability_method", "eap"),
                parameterisation=obj.get("parameterisation", PARAMETERISATION),
                history=list(obj.get("history", [])), fit_seconds=float(obj.get("fit_seconds", float("nan"))),
                stop_reason=str(obj.get("stop_reason", "")),
                last_change=float(obj.get("last_change", float("nan"))),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IRTError(f"not a sharpbench IRT fit (JSON): {exc}") from None

    def save(self, path: str | Path) -> Path:
        """Write JSON (lossless for float64: shortest round-trip repr)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=True))
        return path

    @classmethod
    def load(cls, path: str | Path) -> IRTFit:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def __repr__(self) -> str:
        return (
            f"IRTFit({self.model}, {len(self.items)} items, {len(self.abilities)} respondents, "
            f"loglik={self.loglik:.3f}, converged={self.converged} after {self.n_iter} iterations)"
        )


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({k: (v.item() if isinstance(v, np.generic) else v) for k, v in rec.items()})
    return out


def as_matrix(data: Any) -> ResponseMatrix:
    """Accept a ResponseMatrix, a DataFrame (rows = respondents) or a 2-D array."""
    if isinstance(data, ResponseMatrix):
        return data
    if isinstance(data, pd.DataFrame):
        return ResponseMatrix.from_frame(data)
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 2:
        raise IRTError(f"expected a 2-D respondents x items matrix, got shape {arr.shape}")
    return ResponseMatrix(arr, tuple(f"r{i}" for i in range(arr.shape[0])), tuple(f"i{j}" for j in range(arr.shape[1])))
