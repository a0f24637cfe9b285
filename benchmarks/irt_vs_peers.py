"""2PL fit: sharpbench vs mirt (PyPI 1.2.0, Rust), girth 0.8.0 (JML) and py-irt (Pyro SVI), same data, one run.

Every method runs in its own subprocess (peers in ``--peers-python``, by default
/work/peers-venv/bin/python, so their dependencies never touch ours) and
reports its fit time (fit plus abilities, packages imported before the clock
starts) and peak RSS. The parent then scores all methods the
same way:

* held-out cell log-likelihood: 10% of observed cells masked (seed 0), the
  method fitted on the rest, each held cell predicted by the posterior
  predictive under N(0, 1) given the respondent's training cells and the
  method's item parameters (sharpbench.irt.fitstats.predict_cells), next to
  the item-mean baseline;
* on simulated data, RMSE of a, b and theta to the truth (each method's own
  abilities).

Printed ratios are peer time / sharpbench time in the same run (machine load
shifts absolute times; ratios are what to compare). With ``--repeat N`` every
method's full fit runs N times, the methods interleaved; times are medians and
the ratio is the median of the per-repeat ratios.

    python benchmarks/irt_vs_peers.py --quick          # small, minutes
    python benchmarks/irt_vs_peers.py                  # issue sizes
    python benchmarks/irt_vs_peers.py --only big       # sharpbench 5,000 x 30,000
    python benchmarks/irt_vs_peers.py --methods sharpbench,mirt --only mmlu_pro,chembench --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "../shared/data/response-matrices"
sys.path.insert(0, str(ROOT / "src"))


# ----------------------------------------------------------------- workers
def _fit_sharpbench(y: np.ndarray, opts: dict) -> dict:
    from sharpbench.irt import TwoPL

    fit = TwoPL(prior=opts.get("prior", "auto")).fit(y)
    return {"a": fit.items["a"].tolist(), "d": fit.items["d"].tolist(), "theta": fit.abilities["theta"].tolist(),
            "n_iter": fit.n_iter, "converged": fit.converged, "note": f"prior={fit.prior_label}, {fit.quadrature}"}


def _fit_sharpbench_torch(y: np.ndarray, opts: dict) -> dict:
    from sharpbench.irt import TorchTwoPL

    fit = TorchTwoPL().fit(y)
    return {"a": fit.items["a"].tolist(), "d": fit.items["d"].tolist(), "theta": fit.abilities["theta"].tolist(),
            "n_iter": fit.n_iter, "converged": fit.converged, "note": f"joint MAP, {fit.prior_label}"}


def _fit_mirt(y: np.ndarray, opts: dict) -> dict:
    import mirt

    res = mirt.fit_mirt(y, model="2PL", compute_standard_errors=False)
    a = np.asarray(res.model.discrimination, float).ravel()
    b = np.asarray(res.model.difficulty, float).ravel()
    th = np.asarray(mirt.fscores(res, y).theta, float).ravel()
    return {"a": a.tolist(), "d": (-a * b).tolist(), "theta": th.tolist(), "n_iter": int(res.n_iterations),
            "converged": bool(res.converged), "note": "defaults (21 quadrature points, EM)"}


def _fit_girth(y: np.ndarray, opts: dict) -> dict:
    import girth

    data = girth.tag_missing_data(np.where(np.isnan(y), -1, y).astype(int).T, [0, 1])
    out = girth.twopl_jml(data)
    a, b = np.asarray(out["Discrimination"], float), np.asarray(out["Difficulty"], float)
    th = np.asarray(out.get("Ability", np.full(y.shape[0], np.nan)), float)
    return {"a": a.tolist(), "d": (-a * b).tolist(), "theta": th.tolist(), "n_iter": -1, "converged": True, "note": "twopl_jml"}


def _fit_pyirt(y: np.ndarray, opts: dict) -> dict:
    import pandas as pd
    import pyro
    from py_irt.config import IrtConfig
    from py_irt.dataset import Dataset
    from py_irt.training import IrtModelTrainer

    pyro.set_rng_seed(0)
    df = pd.DataFrame(y, columns=[f"i{j}" for j in range(y.shape[1])])
    df.insert(0, "subject", [f"s{i}" for i in range(y.shape[0])])
    ds = Dataset.from_pandas(df, subject_column="subject", item_columns=list(df.columns[1:]))
    cfg = IrtConfig(model_type="2pl", epochs=int(opts.get("epochs", 2000)), priors="hierarchical", seed=0)
    tr = IrtModelTrainer(config=cfg, data_path=None, dataset=ds, verbose=False)
    tr.train(device="cpu")
    p = tr.last_params
    item_pos = {v: k for k, v in p["item_ids"].items()}
    subj_pos = {v: k for k, v in p["subject_ids"].items()}
    ia = [int(item_pos[f"i{j}"]) for j in range(y.shape[1])]
    si = [int(subj_pos[f"s{i}"]) for i in range(y.shape[0])]
    a = np.asarray(p["disc"], float)[ia]
    b = np.asarray(p["diff"], float)[ia]
    th = np.asarray(p["ability"], float)[si]
    return {"a": a.tolist(), "d": (-a * b).tolist(), "theta": th.tolist(), "n_iter": int(cfg.epochs), "converged": True,
            "note": f"SVI {cfg.epochs} epochs, hierarchical priors"}


def _peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would include the parent's at fork on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


WORKERS = {"sharpbench": _fit_sharpbench, "sharpbench-torch": _fit_sharpbench_torch, "mirt": _fit_mirt, "girth": _fit_girth, "py-irt": _fit_pyirt}


#: imported before the clock starts, so that times are fit times (import costs differ by seconds)
PRE_IMPORT = {"sharpbench": "sharpbench.irt", "sharpbench-torch": "torch", "mirt": "mirt", "girth": "girth",
              "py-irt": "py_irt.training"}


def worker(method: str, data_path: str, key: str, out_path: str, opts: dict) -> None:
    import importlib

    y = np.load(data_path)[key]
    importlib.import_module(PRE_IMPORT[method])
    if method == "sharpbench-torch":
        importlib.import_module("sharpbench.irt")
    t0 = time.perf_counter()
    res = WORKERS[method](y, opts)
    res["seconds"] = time.perf_counter() - t0
    res["peak_rss_mib"] = _peak_rss_mib()
    Path(out_path).write_text(json.dumps(res))


# ------------------------------------------------------------------ parent
def run_method(method: str, npz: Path, key: str, args) -> dict:
    py = sys.executable if method.startswith("sharpbench") else args.peers_python
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    opts = {"epochs": args.pyirt_epochs}
    cmd = [py, __file__, "--worker", method, str(npz), key, out, json.dumps(opts)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {args.timeout} s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(Path(out).read_text())


def datasets(args):
    from sharpbench.irt.simulate import simulate
    from sharpbench.matrix.io import read_matrix

    out = []
    if args.quick:
        sims = [(1000, 500), (1000, 2000)]
    else:
        sims = [(2000, 1000), (2000, 5000)]
    want = set(args.only.split(",")) if args.only else None
    if want is None or "mmlu_pro" in want:
        m = read_matrix(SHARED / "mmlu_pro_matrix.csv")
        out.append(("mmlu_pro", m.values, None))
    if want is None or "chembench" in want:
        m = read_matrix(SHARED / "chembench_binary_matrix.csv", items_as_rows=True)
        out.append(("chembench", m.values, None))
    for n, k in sims:
        name = f"sim_{n}x{k}"
        if want is None or "sim" in want or name in want:
            y, tr = simulate(n, k, seed=2024)
            out.append((name, y, tr))
    if want is not None and "big" in want:
        y, tr = simulate(5000, 30000, seed=7)
        out.append(("sim_5000x30000", y, tr))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small simulated sizes, no py-irt")
    ap.add_argument("--only", default="", help="comma list: mmlu_pro, chembench, sim, sim_NxK, big")
    ap.add_argument("--methods", default="sharpbench,mirt,girth,py-irt")
    ap.add_argument("--peers-python", default="/work/peers-venv/bin/python")
    ap.add_argument("--pyirt-epochs", type=int, default=2000)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--repeat", type=int, default=1, help="full fits per method (interleaved); times are medians")
    ap.add_argument("--json", type=Path, default=None, help="also write all results here")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        method, path, key, out, opts = args.worker
        worker(method, path, key, out, json.loads(opts))
        return

    from sharpbench.irt.fitstats import (
        cell_loglik,
        item_mean_baseline,
        mask_cells,
        predict_cells,
    )

    methods = args.methods.split(",")
    if args.quick and "py-irt" in methods:
        methods.remove("py-irt")
    if not Path(args.peers_python).exists():
        print(f"peers python {args.peers_python} missing: running sharpbench only")
        methods = ["sharpbench"]
    report = []
    tmp = Path(tempfile.mkdtemp(prefix="irtbench_"))
    for name, y, truth in datasets(args):
        train, held = mask_cells(y, 0.1, seed=0)
        cells = np.nonzero(held)
        npz = tmp / f"{name}.npz"
        np.savez(npz, full=y, train=train)
        base = cell_loglik(y[cells], item_mean_baseline(train, cells))
        print(f"\n== {name}: {y.shape[0]} respondents x {y.shape[1]} items, {int(np.isnan(y).sum())} missing; "
              f"held-out cells {cells[0].size}, item-mean baseline {base:.4f}", flush=True)
        rows = []
        # repeats interleave the methods, so that a load spike hits all of them alike
        runs: dict[str, list[dict]] = {m: [] for m in methods}
        for _rep in range(args.repeat):
            for meth in methods:
                if name == "sim_5000x30000" and not meth.startswith("sharpbench"):
                    continue
                runs[meth].append(run_method(meth, npz, "full", args))
        for meth in methods:
            if not runs[meth]:
                continue
            errors = [r for r in runs[meth] if "error" in r]
            if errors:
                print(f"  {meth:10s} error: {errors[0]['error']}", flush=True)
                continue
            full = runs[meth][-1]
            secs = [r["seconds"] for r in runs[meth]]
            row = {"data": name, "method": meth, "seconds": float(np.median(secs)), "seconds_all": secs,
                   "peak_rss_mib": full["peak_rss_mib"], "n_iter": full["n_iter"], "note": full["note"]}
            if name != "sim_5000x30000":
                tr = run_method(meth, npz, "train", args)
                if "error" not in tr:
                    p = predict_cells(train, cells, np.array(tr["a"]), np.array(tr["d"]))
                    row["heldout"] = cell_loglik(y[cells], p)
            if truth is not None:
                a, d = np.array(full["a"]), np.array(full["d"])
                with np.errstate(divide="ignore", invalid="ignore"):
                    b = -d / a
                th = np.array(full["theta"])
                row["rmse_a"] = float(np.sqrt(np.mean((a - truth["a"]) ** 2)))
                row["rmse_b"] = float(np.sqrt(np.nanmean((b - truth["b"]) ** 2)))
                row["rmse_theta"] = float(np.sqrt(np.nanmean((th - truth["theta"]) ** 2))) if np.isfinite(th).any() else float("nan")
            rows.append(row)
            extra = "".join(f", {k} {row[k]:.4f}" for k in ("heldout", "rmse_a", "rmse_b", "rmse_theta") if k in row)
            spread = f" (median of {len(secs)}: {', '.join(f'{x:.2f}' for x in secs)})" if len(secs) > 1 else ""
            print(f"  {meth:10s} {row['seconds']:8.2f} s{spread}  peak {row['peak_rss_mib']:7.0f} MiB, "
                  f"{row['n_iter']} iterations{extra}  ({row['note']})", flush=True)
        ours = next((r for r in rows if r["method"] == "sharpbench"), None)
        if ours:
            for r in rows:
                if r is not ours:
                    # median over repeats of the ratio within each repeat (same load for both)
                    ratios = [p / q for p, q in zip(r["seconds_all"], ours["seconds_all"])]
                    r["time_ratio_vs_sharpbench"] = float(np.median(ratios))
                    print(f"  {r['method']:10s} / sharpbench time ratio: {r['time_ratio_vs_sharpbench']:.1f}x"
                          + (f" (per repeat: {', '.join(f'{x:.1f}' for x in ratios)})" if len(ratios) > 1 else ""))
        report.extend(rows)
    shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
