"""Adaptive testing vs random item sampling, leave-one-model-out, on a real response matrix.

For each held-out model, a 2PL item bank is calibrated on the OTHER models
(``sharpbench.irt.TwoPL``); the held-out model answers from its recorded
responses. For each item budget we compare

* random sampling scored by plain accuracy (``random/accuracy``),
* random sampling scored by IRT: MAP ability on the sampled items ->
  mean over benchmark items of P(correct | theta) (``random/irt``),
* adaptive testing (maximum Fisher information, MAP) -> same IRT prediction,
  answered items counted with their observed score (``adaptive/irt``),

on the mean absolute error of the predicted full-benchmark accuracy, Kendall's
tau of the predicted ranking of the 29 held-out models vs their full-benchmark
ranking, the run-to-run SD (repetitions with different random seeds), and the
coverage of the 95% CI. The truth each prediction is compared with is the
held-out model's mean over all its answered items of the benchmark
(``ItemBank.full_score``: every matrix item). Items the bank leaves out (fitted
slope <= 0, 58-74 of MMLU-Pro's 12,032 per bank) count at their
calibration mean in IRT predictions and are drawn by random sampling; they are
never administered adaptively. Missing matrix cells: left out of the held-out
model's full score and never administered to it.

Usage::

    python benchmarks/adaptive_vs_random.py                       # MMLU-Pro, 29 models
    python benchmarks/adaptive_vs_random.py --models 6 --reps 3   # quick look
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sharpbench.adaptive.bank import ItemBank
from sharpbench.adaptive.calibrate import calibrate_bank, misfit_sd
from sharpbench.adaptive.evaluation import leave_one_model_out, summarize
from sharpbench.matrix.io import read_matrix

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MATRIX = ROOT / ".." / "shared" / "data" / "response-matrices" / "mmlu_pro_matrix.csv"


def _bank_fitter(cache: Path | None, benchmark: str):
    def fit(matrix, held_out: str) -> ItemBank:
        path = None if cache is None else cache / f"loo_{held_out}.json"
        if path is not None and path.exists():
            bank = ItemBank.load(path)
            if "misfit_sd" not in bank.info:  # banks cached before misfit_sd existed
                bank.info["misfit_sd"] = misfit_sd(bank, matrix)
                bank.save(path)
            return bank
        t0 = time.perf_counter()
        bank = calibrate_bank(matrix, f"loo-{held_out}", benchmark=benchmark)
        print(f"  fitted 2PL bank without {held_out}: {bank.n_items} items, "
              f"{bank.n_total - bank.n_items} fixed, misfit SD {bank.misfit_sd:.4f}, "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        if path is not None:
            bank.save(path)
        return bank

    return fit


def equivalent_random_items(summary: pd.DataFrame, scoring: str = "accuracy") -> pd.DataFrame:
    """For each adaptive budget, the random-sampling budget with the same Kendall tau (log-interpolated)."""
    rnd = summary[(summary.method == "random") & (summary.scoring == scoring)].sort_values("budget")
    ada = summary[(summary.method == "adaptive") & (summary.scoring == "irt")].sort_values("budget")
    # monotone envelope so interpolation is well defined
    taus = np.maximum.accumulate(rnd["tau"].to_numpy())
    logn = np.log(rnd["budget"].to_numpy(dtype=float))
    rows = []
    for _, r in ada.iterrows():
        if r.tau <= taus[0]:
            eq = f"<= {int(rnd.budget.iloc[0])}"
            ratio = np.nan
        elif r.tau > taus[-1]:
            eq = f"> {int(rnd.budget.iloc[-1])}"
            ratio = np.inf
        else:
            k = int(np.searchsorted(taus, r.tau))
            lo, hi = taus[k - 1], taus[k]
            frac = 0.0 if hi == lo else (r.tau - lo) / (hi - lo)
            n_eq = float(np.exp(logn[k - 1] + frac * (logn[k] - logn[k - 1])))
            eq, ratio = f"{n_eq:.0f}", n_eq / r.budget
        rows.append({"adaptive items": int(r.budget), "adaptive tau": round(r.tau, 3),
                     f"random items with same tau ({scoring})": eq, "ratio": ratio})
    return pd.DataFrame(rows)


def markdown_table(summary: pd.DataFrame, budgets) -> str:
    cols = [("random", "accuracy"), ("random", "irt"), ("adaptive", "irt")]
    head = ("| items | " + " | ".join(f"MAE {m}/{s}" for m, s in cols) + " | "
            + " | ".join(f"tau {m}/{s}" for m, s in cols) + " | "
            + " | ".join(f"SD runs {m}/{s}" for m, s in cols) + " | CI cover random/irt | CI cover adaptive/irt |")
    lines = [head, "|" + "---|" * (2 + 3 * len(cols) + 1)]
    idx = summary.set_index(["method", "scoring", "budget"])
    for n in budgets:
        def get(m, s, c, n=n):
            try:
                return idx.loc[(m, s, n), c]
            except KeyError:
                return np.nan
        vals = [f"{get(m, s, 'mae'):.4f}" for m, s in cols] + [f"{get(m, s, 'tau'):.3f}" for m, s in cols]
        vals += [f"{get(m, s, 'sd_runs'):.4f}" for m, s in cols]
        vals += [f"{get('random', 'irt', 'coverage'):.0%}", f"{get('adaptive', 'irt', 'coverage'):.0%}"]
        lines.append(f"| {n} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def plot_tau(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for (m, s), g in summary.groupby(["method", "scoring"]):
        g = g.sort_values("budget")
        ax1.plot(g.budget, g.tau, marker="o", label=f"{m} / {s}")
        ax2.plot(g.budget, g.mae, marker="o", label=f"{m} / {s}")
    for ax, ylab in ((ax1, "Kendall tau vs full ranking"), (ax2, "mean |predicted - full accuracy|")):
        ax.set_xscale("log")
        ax.set_xlabel("items per model (count, log scale)")
        ax.set_ylabel(ylab)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax1.set_title("Ranking fidelity (leave-one-model-out)")
    ax2.set_title("Accuracy error (leave-one-model-out)")
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matrix", type=Path, default=DEFAULT_MATRIX)
    ap.add_argument("--benchmark", default="mmlu_pro")
    ap.add_argument("--budgets", default="10,20,50,100,200")
    ap.add_argument("--random-budgets", default="10,20,50,100,200,500,1000,2000,4000",
                    help="random sampling budgets (larger ones find the random items matching adaptive tau)")
    ap.add_argument("--reps", type=int, default=10, help="repetitions of random sampling per model and budget")
    ap.add_argument("--randomesque", type=int, default=1, help=">1: adaptive picks among the k best (repeated)")
    ap.add_argument("--models", type=int, default=None, help="hold out only the first N models (quick look)")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "adaptive_banks")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "adaptive_vs_random")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    budgets = [int(x) for x in args.budgets.split(",")]
    random_budgets = sorted(set(budgets) | {int(x) for x in args.random_budgets.split(",")})
    matrix = read_matrix(args.matrix)
    print(f"{matrix} from {args.matrix.name}; missing cells: {int((~matrix.observed).sum())}", flush=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    models = list(matrix.models[: args.models]) if args.models else None
    t0 = time.perf_counter()
    runs = leave_one_model_out(matrix, budgets, fit_bank=_bank_fitter(args.cache, args.benchmark),
                               n_reps=args.reps, seed=args.seed, random_budgets=random_budgets,
                               randomesque=args.randomesque, models=models,
                               progress=lambda m: print(f"held out: {m}", flush=True))
    elapsed = time.perf_counter() - t0
    summary = summarize(runs)
    runs.to_csv(args.out / "runs.csv", index=False)
    summary.to_csv(args.out / "summary.csv", index=False)
    plot_tau(summary, args.out / "tau_mae.png")
    n_models = runs.model.nunique()
    print(f"\n## Adaptive vs random, leave-one-model-out on {args.matrix.name} ({n_models} held-out models, "
          f"{args.reps} random repetitions; {elapsed:.0f} s)\n")
    print(f"Predictions of full-benchmark accuracy vs each held-out model's mean over all its answered items "
          f"of the {matrix.n_items}-item matrix (bank and fixed-score items alike).\n")
    print(markdown_table(summary, budgets))
    print("\nRandom sampling at larger budgets:\n")
    big = summary[(summary.method == "random") & ~summary.budget.isin(budgets)]
    print(big.to_markdown(index=False, floatfmt=".4f") if len(big) else "(none)")
    for scoring in ("accuracy", "irt"):
        print(f"\nRandom items ({scoring} scoring) needed to match adaptive tau:\n")
        print(equivalent_random_items(summary, scoring).to_markdown(index=False, floatfmt=".3g"))
    print(f"\nwrote {args.out}/runs.csv, summary.csv, tau_mae.png")


if __name__ == "__main__":
    main()
