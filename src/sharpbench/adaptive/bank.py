"""Item bank: fitted IRT item parameters + item ids + metadata, saved as JSON.

A bank records which benchmark (task) it was calibrated on and the ability
distribution of the calibration models, so an adaptive run can refuse a bank
fitted on another benchmark and start from the calibration mean.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sharpbench.adaptive.numeric import prob
from sharpbench.errors import InputError

__all__ = ["BankError", "BankMismatchError", "ItemBank", "bank_dir", "resolve_bank_path"]

PARAM_COLUMNS = ("a", "d", "g", "u")
FORMAT_VERSION = 1


class BankError(InputError, ValueError):
    """An item bank is missing, malformed or unusable."""


class BankMismatchError(BankError):
    """The bank was calibrated on a different benchmark than the one requested."""


def bank_dir() -> Path:
    """Folder of named banks: ``$SHARPBENCH_BANK_DIR`` or ``~/.cache/sharpbench/banks``."""
    env = os.environ.get("SHARPBENCH_BANK_DIR")
    return Path(env) if env else Path.home() / ".cache" / "sharpbench" / "banks"


def resolve_bank_path(name_or_path: str | Path) -> Path:
    """A path as given when it exists or ends in ``.json``, else ``bank_dir()/<name>.json``."""
    p = Path(name_or_path).expanduser()
    if p.exists() or p.suffix == ".json" or len(p.parts) > 1:
        return p
    return bank_dir() / f"{name_or_path}.json"


@dataclass(frozen=True, eq=False)
class ItemBank:
    """Calibrated items for adaptive testing.

    Attributes
    ----------
    name : str
        Bank name (file stem under :func:`bank_dir`).
    benchmark : str
        Task / benchmark the parameters were fitted on (e.g. ``"mmlu_pro"``).
    items : DataFrame
        Indexed by item id (str); columns ``a, d, g, u`` plus metadata
        (e.g. ``subject``). Every slope is > 0.
    ability_mean, ability_sd : float
        Mean and SD of the calibration models' abilities.
    info : dict
        Provenance: IRT model, calibration models, excluded items, creation time.
    """

    name: str
    benchmark: str
    items: pd.DataFrame
    ability_mean: float = 0.0
    ability_sd: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        items = self.items.copy()
        items.index = items.index.map(str)
        items.index.name = "item"
        if "a" not in items or "d" not in items:
            raise BankError(f"bank {self.name!r}: item table needs columns a and d, has {list(items.columns)}")
        if "g" not in items:
            items["g"] = 0.0
        if "u" not in items:
            items["u"] = 1.0
        if len(items) == 0:
            raise BankError(f"bank {self.name!r} has no items")
        if items.index.duplicated().any():
            raise BankError(f"bank {self.name!r} has duplicated item ids, e.g. {items.index[items.index.duplicated()][0]}")
        par = items[list(PARAM_COLUMNS)].to_numpy(dtype=float)
        if not np.isfinite(par).all():
            bad = items.index[~np.isfinite(par).all(axis=1)][:3].tolist()
            raise BankError(f"bank {self.name!r}: non-finite item parameters for {bad}; refit the bank")
        nonpos = items.index[items["a"].to_numpy() <= 0]
        if len(nonpos):
            raise BankError(
                f"bank {self.name!r}: {len(nonpos)} degenerate item(s) with slope a <= 0 (e.g. {nonpos[0]!r}); "
                "they measure nothing or measure backwards: recalibrate with `sharpbench calibrate`, "
                "which excludes them, or drop them with ItemBank.subset"
            )
        g, u = items["g"].to_numpy(), items["u"].to_numpy()
        if ((g < 0) | (u > 1) | (g >= u)).any():
            raise BankError(f"bank {self.name!r}: asymptotes must satisfy 0 <= g < u <= 1")
        if not self.ability_sd > 0:
            raise BankError(f"bank {self.name!r}: ability_sd must be > 0, got {self.ability_sd}")
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "_ids", tuple(str(i) for i in items.index))
        params = tuple(np.ascontiguousarray(items[c].to_numpy(dtype=float)) for c in PARAM_COLUMNS)
        for arr in params:
            arr.setflags(write=False)
        object.__setattr__(self, "_params", params)

    # ----------------------------------------------------------- accessors
    @property
    def item_ids(self) -> tuple[str, ...]:
        return self._ids  # type: ignore[attr-defined]

    @property
    def n_items(self) -> int:
        return len(self.items)

    def params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(a, d, g, u)`` arrays of shape (n_items,)."""
        return self._params  # type: ignore[attr-defined]

    @property
    def fixed_scores(self) -> np.ndarray:
        """Calibration mean scores of benchmark items left out of the bank (constant or a <= min_slope).

        They are never administered; predictions count them at this fixed
        probability so that predicted accuracies refer to the whole benchmark.
        """
        return np.asarray(list(self.info.get("excluded_pvalues", {}).values()), dtype=float)

    @property
    def misfit_sd(self) -> float:
        """RMS gap between calibration models' accuracies and the model's expectation (0 if unknown)."""
        return float(self.info.get("misfit_sd", 0.0))

    @property
    def n_total(self) -> int:
        """Items of the benchmark: bank items plus fixed-score items."""
        return self.n_items + self.fixed_scores.size

    @property
    def benchmark_item_ids(self) -> tuple[str, ...]:
        """Ids of every item a predicted accuracy refers to: bank items, then fixed-score items (``n_total``)."""
        return self.item_ids + tuple(str(i) for i in self.info.get("excluded_pvalues", {}))

    def full_score(self, scores: pd.Series) -> float:
        """A model's observed accuracy on the benchmark the bank predicts: the truth for its predictions.

        ``scores`` holds the model's scores indexed by item id (a response-matrix
        row; NaN = not answered). The mean runs over its answered items among
        :attr:`benchmark_item_ids`, fixed-score items included, because
        :meth:`expected_accuracy` and adaptive predictions count those too.
        Items of ``scores`` outside the benchmark are ignored.
        """
        row = pd.Series(np.asarray(scores, dtype=float), index=[str(i) for i in scores.index])
        y = row.reindex(list(self.benchmark_item_ids)).to_numpy(dtype=float)
        if np.isnan(y).all():
            raise BankError(f"no recorded score on any of the {self.n_total} items of bank {self.name!r}")
        return float(np.nanmean(y))

    def expected_accuracy(self, theta) -> np.ndarray:
        """Expected full-benchmark accuracy at ``theta``, shape (n_theta,).

        Mean over bank items of P(correct | theta), with the fixed-score items
        (:attr:`fixed_scores`) counted at their calibration mean.
        """
        p = prob(theta, *self.params())
        return (p.sum(axis=1) + self.fixed_scores.sum()) / self.n_total

    def check_benchmark(self, benchmark: str) -> None:
        """Raise :class:`BankMismatchError` unless the bank was fitted on ``benchmark``."""
        if benchmark != self.benchmark:
            raise BankMismatchError(
                f"bank {self.name!r} was calibrated on {self.benchmark!r}, not {benchmark!r}: "
                f"pass --task {self.benchmark} or calibrate a bank on {benchmark!r}"
            )

    def subset(self, items: Sequence[str] | np.ndarray, name: str | None = None) -> ItemBank:
        """Bank restricted to some item ids (or a boolean mask), e.g. one subject."""
        arr = np.asarray(items)
        ids = self.items.index[arr] if arr.dtype == bool else pd.Index([str(i) for i in arr])
        known = self.items.index.union(pd.Index(list(self.info.get("excluded_pvalues", {}))))
        missing = ids.difference(known)
        if len(missing):
            raise BankError(f"{len(missing)} item id(s) not in bank {self.name!r}, e.g. {missing[0]!r}")
        keep = set(ids)
        fixed = {k: v for k, v in self.info.get("excluded_pvalues", {}).items() if k in keep}
        ids = ids.difference(pd.Index(list(fixed)), sort=False)
        info = dict(self.info, subset_of=self.name, excluded_pvalues=fixed,
                    excluded_items=[i for i in self.info.get("excluded_items", []) if i in keep])
        return ItemBank(name or self.name, self.benchmark, self.items.loc[ids], self.ability_mean,
                        self.ability_sd, info)

    # -------------------------------------------------------- construction
    @classmethod
    def from_fit(
        cls,
        fit: Any,
        *,
        name: str,
        benchmark: str,
        item_meta: pd.DataFrame | None = None,
        min_slope: float = 0.0,
        info: dict[str, Any] | None = None,
    ) -> ItemBank:
        """Bank from a :class:`sharpbench.irt.IRTFit` (``.items``, ``.abilities``).

        Items with slope ``a <= min_slope`` are excluded (listed in
        ``info["excluded_items"]``): a non-positive slope means stronger models
        do no better, so the item carries no information about ability.
        """
        table = fit.items.copy()
        table.index = table.index.map(str)
        table = table[[c for c in PARAM_COLUMNS if c in table.columns]]
        if "a" not in table or "d" not in table:
            raise BankError("IRT fit has no a/d item columns; fit a 1PL-4PL model first")
        bad = ~np.isfinite(table[["a", "d"]].to_numpy(dtype=float)).all(axis=1) | (table["a"].to_numpy() <= min_slope)
        excluded = table.index[bad].tolist()
        table = table.loc[~bad]
        if item_meta is not None and len(item_meta.columns):
            meta = item_meta.copy()
            meta.index = meta.index.map(str)
            extra = [c for c in meta.columns if c not in table.columns]
            table = table.join(meta[extra], how="left")
        theta = np.asarray(fit.abilities["theta"], dtype=float)
        theta = theta[np.isfinite(theta)]
        meta_info = {
            "irt_model": type(fit).__name__,
            "calibration_models": [str(m) for m in fit.abilities.index],
            "excluded_items": excluded,
            "min_slope": min_slope,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        meta_info.update(info or {})
        return cls(name, benchmark, table,
                   float(theta.mean()) if theta.size else 0.0,
                   float(theta.std(ddof=1)) if theta.size > 1 else 1.0, meta_info)

    # ------------------------------------------------------------- file io
    def to_dict(self) -> dict[str, Any]:
        table = self.items.reset_index()
        return {
            "format": "sharpbench-item-bank",
            "version": FORMAT_VERSION,
            "name": self.name,
            "benchmark": self.benchmark,
            "ability_mean": self.ability_mean,
            "ability_sd": self.ability_sd,
            "info": self.info,
            "columns": list(table.columns),
            "rows": json.loads(table.to_json(orient="values")),
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write JSON to ``path`` (default ``bank_dir()/<name>.json``); returns the path."""
        p = Path(path).expanduser() if path is not None else bank_dir() / f"{self.name}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict()))
        return p

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemBank:
        if data.get("format") != "sharpbench-item-bank":
            raise BankError("not a sharpbench item bank file (missing format tag)")
        if data.get("version", 0) > FORMAT_VERSION:
            raise BankError(f"bank format version {data['version']} is newer than this sharpbench supports")
        table = pd.DataFrame(data["rows"], columns=data["columns"]).set_index("item")
        table.index = table.index.map(str)
        return cls(data["name"], data["benchmark"], table, float(data["ability_mean"]),
                   float(data["ability_sd"]), dict(data.get("info", {})))

    @classmethod
    def load(cls, name_or_path: str | Path) -> ItemBank:
        """Load a bank by file path or by name from :func:`bank_dir`."""
        p = resolve_bank_path(name_or_path)
        if not p.exists():
            raise BankError(
                f"no item bank at {p}; create one with `sharpbench calibrate --tasks <task> --from-matrix <csv>`"
            )
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise BankError(f"item bank {p} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
