"""How robust is each rank-aggregation method to missing data?

Drops 50 / 90 / 95 % of the observed cells of the MMLU-Pro matrix uniformly at
random (MMLU-Pro's 14 categories act as 14 "benchmarks") and reports Kendall
tau-b between each method's ranking on the sparse matrix and its own ranking on
the full matrix (mean and sd over repeats). A second scenario makes the data
*structurally* incomplete, ONEBench-style: each model is evaluated on only a
random half of the categories; there the complete-data methods must refuse and
Bradley-Terry still ranks (tau to its full-data ranking).

Usage: python benchmarks/rank_robustness.py [--repeats 10] [--out table.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sharpbench.matrix import read_matrix
from sharpbench.insight.rank import METHODS, IncompleteDataError, aggregate
from sharpbench.insight.rank_ci import drop_cells
from sharpbench.matrix import ResponseMatrix

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "response-matrices"


def _tau(a: pd.Series, b: pd.Series) -> float:
    return float(stats.kendalltau(a.to_numpy(), b.loc[a.index].to_numpy()).statistic)


def _half_benchmarks(matrix: ResponseMatrix, bench: pd.Series, rng: np.random.Generator) -> ResponseMatrix:
    v = matrix.values.copy()
    lab = bench.reindex(list(matrix.items)).to_numpy()
    cats = np.unique(lab)
    for r in range(matrix.n_models):
        drop = rng.choice(cats, cats.size // 2, replace=False)
        v[r, np.isin(lab, drop)] = np.nan
    return ResponseMatrix(v, matrix.models, matrix.items, matrix.item_meta)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    matrix = read_matrix(DATA / "mmlu_pro_matrix.csv", items=DATA / "mmlu_pro_items.jsonl")
    bench = matrix.item_meta["category"].astype(str)
    full = {m: aggregate(matrix, bench, m)[1] for m in METHODS}
    rng = np.random.default_rng(args.seed)
    rows = []
    timing = {m: 0.0 for m in METHODS}
    for frac in (0.5, 0.9, 0.95):
        taus: dict[str, list[float]] = {m: [] for m in METHODS}
        for _ in range(args.repeats):
            sparse = drop_cells(matrix, frac, rng)
            for m in METHODS:
                t0 = time.perf_counter()
                _, s = aggregate(sparse, bench, m)
                timing[m] += time.perf_counter() - t0
                taus[m].append(_tau(s, full[m]))
        rows.append({"scenario": f"drop {int(frac * 100)}% of cells"} | {
            m: f"{np.mean(taus[m]):.3f} ± {np.std(taus[m], ddof=1):.3f}" for m in METHODS})
    taus = {m: [] for m in METHODS}
    for _ in range(args.repeats):
        sparse = _half_benchmarks(matrix, bench, rng)
        for m in METHODS:
            try:
                _, s = aggregate(sparse, bench, m)
                taus[m].append(_tau(s, full[m]))
            except IncompleteDataError:
                pass
    rows.append({"scenario": "each model on 7 of 14 categories"} | {
        m: (f"{np.mean(taus[m]):.3f} ± {np.std(taus[m], ddof=1):.3f}" if taus[m] else "refuses") for m in METHODS})
    table = pd.DataFrame(rows).set_index("scenario")
    md = table.to_markdown() if _has_tabulate() else table.to_string()
    print(f"Kendall tau-b to each method's full-data ranking (29 models, mean ± sd over {args.repeats} repeats)")
    print(md)
    base = timing["mean"]
    print("time per method relative to mean score (same run): "
          + ", ".join(f"{m} {timing[m] / base:.1f}x" for m in METHODS))
    if args.out:
        args.out.write_text(md + "\n")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
