"""Full-score prediction from tiny subsets, at leaderboard scale and with few models, every row in one run.

Part 1  metabench's data (../shared, CC BY-NC-SA 4.0: read from there, never copied): for gsm8k, mmlu,
        truthfulqa and winogrande, metabench's train models split 80/20 by
        ``numpy.random.default_rng(0).permutation``; fit on the 80 %, predict the 20 %, MAE in points.
        Rows: sharpbench ``predict`` (ScorePredictor, the estimator chosen by cross-validation), the two
        baselines a user writes in three lines (cubic fit on the subset mean; ridge on the item answers),
        the ability -> spline mapping alone (what ``predict`` did before), metabench's published figure
        (its own test models), interval coverage, fit time.
Part 2  Subset selection on the same data and split: N items chosen from metabench's subset on the training
        models by ``cv`` (greedy, minimises the cross-validated error), metabench's rule (highest Fisher
        information over the training abilities: ``irt-info``), tinyBenchmarks' rule (``anchor`` points),
        and random items (mean of 3 draws); every selection scored by the same ScorePredictor.
Part 3  MMLU-Pro, 29 models, leave-one-model-out, 100-item anchor subsets (the few-models regime):
        weighted / p-IRT / gp-IRT / auto, against random items with the same estimator.
Part 4  Cost: ScorePredictor fit + predict on simulated 2PL answers from 20 x 10 to 50,000 x 1,000.
Part 5  Part 1 with whole uploaders held out (the id before "/": 20 % of the organisations, default_rng(0)),
        so no fine-tune or merge of a held-out organisation's model is in training.

Run:  python benchmarks/predict_scale.py [--parts 1,2,3,4,5] [--n-select 30] [--seeds 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sharpbench.distill.predictor import ScorePredictor, read_scores
from sharpbench.distill.tiny import select_tiny
from sharpbench.matrix import ResponseMatrix

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "response-matrices"
METABENCH = SHARED / "metabench"
BENCHMARKS = ("gsm8k", "mmlu", "truthfulqa", "winogrande")
PUBLISHED = {"gsm8k": 1.441, "mmlu": 1.200, "truthfulqa": 1.470, "winogrande": 1.508}
BEFORE = {"gsm8k": 1.756, "mmlu": 4.473, "truthfulqa": 1.607, "winogrande": 3.838}  # issue #20's measurement


def load(name: str):
    answers = pd.read_csv(METABENCH / f"{name}_responses.csv", index_col=0)
    scores = pd.read_csv(METABENCH / f"{name}_scores.csv", index_col=0)
    scores = scores[scores["set"] == "train"]
    models = answers.index.intersection(scores.index)
    y, _unit = read_scores(scores.loc[models, "score"])
    perm = np.random.default_rng(0).permutation(len(models))
    k = int(round(0.8 * len(models)))
    return answers.loc[models], y, perm[:k], perm[k:]


def mae(p, y) -> float:
    return float(100 * np.mean(np.abs(np.asarray(p) - y)))


def baselines(x: np.ndarray, y: np.ndarray, tr, te) -> tuple[float, float]:
    from sklearn.linear_model import RidgeCV

    m = x.mean(axis=1)
    cubic = np.polyval(np.polyfit(m[tr], y[tr], 3), m[te])
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 20)).fit(x[tr], y[tr]).predict(x[te])
    return mae(cubic, y[te]), mae(ridge, y[te])


def held_out(x: np.ndarray, y: np.ndarray, tr, te) -> dict:
    """ScorePredictor fitted on ``tr``, scored on ``te``, beside both baselines (MAE in points)."""
    t0 = time.perf_counter()
    pred = ScorePredictor().fit(x[tr], y[tr])
    out = pred.predict(x[te])
    cubic, ridge = baselines(x, y, tr, te)
    return {"pred": pred, "mae": mae(out["score"], y[te]), "seconds": time.perf_counter() - t0,
            "cover": float(((out["ci_low"] <= y[te]) & (y[te] <= out["ci_high"])).mean()),
            "cubic": cubic, "ridge": ridge}


def part1() -> None:
    print("\n## Part 1: metabench's subsets, train models 80/20 (default_rng(0)); held-out MAE in points")
    print("| benchmark (items, models) | sharpbench predict | estimator chosen | cubic on subset mean | ridge on answers "
          "| ability-spline alone | before (#20) | metabench published | 95% interval coverage | fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in BENCHMARKS:
        frame, y, tr, te = load(name)
        x = frame.to_numpy(float)
        r = held_out(x, y, tr, te)
        pred = r["pred"]
        alone = ScorePredictor(candidates=["ability-spline"], blend=False).fit(x[tr], y[tr]).predict(x[te])
        print(f"| {name} ({x.shape[1]}, {len(y)}) | **{r['mae']:.3f}** | {pred.label} | {r['cubic']:.3f} | "
              f"{r['ridge']:.3f} | {mae(alone['score'], y[te]):.3f} | {BEFORE[name]:.3f} | {PUBLISHED[name]:.3f} | "
              f"{r['cover']:.3f} | {r['seconds']:.1f} |")
        cv = pred.cv_table_.assign(mae=lambda t: 100 * t["mae"])
        print("  cross-validated MAE on the training models: "
              + ", ".join(f"{c.estimator} {c.mae:.3f}" for c in cv.itertuples()))


def part2(n_select: int) -> None:
    print(f"\n## Part 2: choosing {n_select} items from metabench's subset on the training models, "
          "each selection scored by the same ScorePredictor (held-out MAE, points)")
    print("| benchmark | cv (greedy, sharpbench) | metabench's rule (irt-info) | tinyBenchmarks' rule (anchor) "
          "| random (mean of 3) | all items |")
    print("|---|---|---|---|---|---|")
    for name in BENCHMARKS:
        frame, y, tr, te = load(name)
        train = ResponseMatrix.from_frame(frame.iloc[tr])
        x = frame.to_numpy(float)

        def score(sub) -> float:
            pos = [frame.columns.get_loc(i) for i in sub.items]
            p = ScorePredictor().fit(x[np.ix_(tr, pos)], y[tr]).predict(x[np.ix_(te, pos)])
            return mae(p["score"], y[te])

        row = {}
        for method in ("cv", "irt-info", "anchor"):
            t0 = time.perf_counter()
            sub = select_tiny(train, n_select, method, seed=0, scores=y[tr] if method == "cv" else None)
            row[method] = (score(sub), time.perf_counter() - t0)
        rand = [score(select_tiny(train, n_select, "random", seed=s)) for s in range(3)]
        full = ScorePredictor().fit(x[tr], y[tr]).predict(x[te])
        print(f"| {name} | **{row['cv'][0]:.3f}** | {row['irt-info'][0]:.3f} | {row['anchor'][0]:.3f} | "
              f"{np.mean(rand):.3f} | {mae(full['score'], y[te]):.3f} ({x.shape[1]} items) |")


def part3(seeds: int) -> None:
    from sharpbench.matrix import read_matrix
    from sharpbench.distill.evaluate import evaluate_tiny

    m = read_matrix(SHARED / "mmlu_pro_matrix.csv")
    t0 = time.perf_counter()
    res = evaluate_tiny(m, n_items=100, methods=["anchor"], estimators=["weighted", "pirt", "gpirt", "auto"],
                        seeds=list(range(seeds)), random_repeats=3)
    print(f"\n## Part 3: MMLU-Pro, 29 models, leave-one-model-out, 100 items, {seeds} seed(s) "
          f"({time.perf_counter() - t0:.0f} s)")
    print(res.to_markdown())


def part4() -> None:
    from sharpbench.irt.simulate import simulate

    print("\n## Part 4: cost of ScorePredictor fit + predict (simulated 2PL answers, score = mean over 2,000 items)")
    print("| training models | items | seconds | estimator chosen |")
    print("|---|---|---|---|")
    for n, k in ((20, 10), (1000, 100), (5000, 250), (20000, 500), (50000, 1000)):
        y_all, _truth = simulate(n + 100, 2000, model="2pl", seed=1)
        score = y_all.mean(axis=1)
        x = y_all[:, :k]
        t0 = time.perf_counter()
        pred = ScorePredictor().fit(x[:n], score[:n])
        pred.predict(x[n:])
        print(f"| {n:,} | {k:,} | {time.perf_counter() - t0:.1f} | {pred.label} |", flush=True)


def part5() -> None:
    print("\n## Part 5: whole organisations held out (20 % of the uploaders, default_rng(0)); held-out MAE, points")
    print("| benchmark | held-out models (organisations) | sharpbench predict | estimator chosen | cubic on subset mean "
          "| ridge on answers | 95% interval coverage |")
    print("|---|---|---|---|---|---|---|")
    for name in BENCHMARKS:
        frame, y, _tr, _te = load(name)
        x = frame.to_numpy(float)
        org = np.array([m.split("/")[0] for m in frame.index])
        orgs = np.unique(org)
        held = set(np.random.default_rng(0).choice(orgs, int(0.2 * len(orgs)), replace=False))
        te_mask = np.array([o in held for o in org])
        tr, te = np.flatnonzero(~te_mask), np.flatnonzero(te_mask)
        r = held_out(x, y, tr, te)
        print(f"| {name} | {te.size} ({len(held)}) | **{r['mae']:.3f}** | {r['pred'].label} | {r['cubic']:.3f} | "
              f"{r['ridge']:.3f} | {r['cover']:.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="1,2,3,4,5")
    ap.add_argument("--n-select", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=3, help="seeds for Part 3")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if "1" in parts:
        part1()
    if "2" in parts:
        part2(args.n_select)
    if "3" in parts:
        part3(args.seeds)
    if "4" in parts:
        part4()
    if "5" in parts:
        part5()


if __name__ == "__main__":
    main()
