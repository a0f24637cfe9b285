"""1PL-4PL fits: sharpbench vs mirt (PyPI 1.2.0, Rust), girth 0.8.0 (JML) and py-irt (Pyro SVI), same data, one run.

Every tool runs in its own long-lived worker process (peers in
``--peers-python``, by default /work/peers-venv/bin/python, so their
dependencies never touch ours), one BLAS/OpenMP/rayon thread each by default
(``--threads``). Timing is warm and interleaved:

* the worker imports its package, then fits the same model with the same
  prior once on the same matrix, untimed (``--warmup-items``), so that lazy
  imports, JIT, thread pools and first-call costs are paid before the clock;
* then every setting fits the training matrix ``--repeat`` times, settings
  interleaved within each repeat (a load spike hits all of them alike);
  times are medians; ratios are the median over repeats of peer time /
  sharpbench time within the repeat. A fit's time is the fit plus abilities
  (EAP), measured inside the worker (no process start, no data loading).

Two settings per peer, side by side:

* ``default``: each tool as it ships. sharpbench ``prior="auto"`` (MMLU-Pro and
  ChemBench, < 50 models: "strong"; 3PL/4PL always add an asymptote prior),
  mirt without priors (its Rust EM paths);
* ``same prior`` (``mirt+prior``): mirt gets the prior sharpbench resolved for
  that matrix: slope ``a ~ N(a_mean, a_sd)``, location ``N(0, d_sd)`` (on mirt's
  difficulty ``b``: mirt's 1-4PL are ``a (theta - b)``, sharpbench's prior is on
  the intercept ``d = -a b``, which mirt cannot express), and sharpbench's
  asymptote weight ``g^alpha (1-g)^beta`` on the logit scale as mirt's
  ``BetaPrior(alpha + 1, beta + 1)`` on g itself (the same function of g, so
  the same MAP), likewise for u. sharpbench runs its default, which is that
  prior. Left different: the location prior's coordinate, the quadrature
  (mirt 21 points, sharpbench 61-121 on [-6, 6]), and for the 2PL the
  estimate: sharpbench's default 2PL stops at the PX-EM fixed point, not the
  MAP (see ``sharpbench.irt.em.run_em``); ``--methods ...,sharpbench-map``
  adds sharpbench's exact MAP (``px="map"``, the 3PL/4PL default), the
  estimate mirt+prior computes.

Scores, all methods alike:

* held-out cell log-likelihood: 10% of observed cells masked (seed 0), the
  method fitted on the rest (the timed fits), each held cell predicted by the
  posterior predictive under N(0, 1) given the respondent's training cells
  and the method's item parameters (sharpbench.irt.fitstats.predict_cells),
  next to the item-mean baseline;
* on simulated data, RMSE of a, b and theta to the truth (one more fit on
  the full matrix, each method's own abilities).

    python benchmarks/irt_vs_peers.py --quick          # small, minutes
    python benchmarks/irt_vs_peers.py --methods sharpbench,mirt --only mmlu_pro,chembench --repeat 3
    python benchmarks/irt_vs_peers.py --methods sharpbench,mirt --only mmlu_pro,chembench --irt-models 3pl,4pl
    python benchmarks/irt_vs_peers.py --only big       # sharpbench 5,000 x 30,000
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

FREE = {"1pl": ("a", "d"), "2pl": ("a", "d"), "3pl": ("a", "d", "g"), "4pl": ("a", "d", "g", "u")}


# ----------------------------------------------------------------- workers
def _only_2pl(opts: dict, tool: str) -> None:
    if opts["model"] != "2pl" or opts["setting"] != "default":
        raise ValueError(f"{tool}: only the 2PL in its default setting is wired up")


def _params(a, d, g=None, u=None) -> dict:
    out = {"a": np.asarray(a, float).tolist(), "d": np.asarray(d, float).tolist()}
    if g is not None:
        out["g"] = np.asarray(g, float).tolist()
    if u is not None:
        out["u"] = np.asarray(u, float).tolist()
    return out


def _fit_sharpbench(y: np.ndarray, opts: dict, px: bool | str = "auto") -> dict:
    from sharpbench.irt import MODELS

    fit = MODELS[opts["model"]](prior="auto", px=px).fit(y)
    it = fit.items
    g = it["g"].to_numpy() if opts["model"] in ("3pl", "4pl") else None
    u = it["u"].to_numpy() if opts["model"] == "4pl" else None
    return {**_params(it["a"], it["d"], g, u), "theta": fit.abilities["theta"].tolist(), "n_iter": fit.n_iter,
            "converged": fit.converged, "prior": fit.prior,
            "note": f"prior={fit.prior_label}, {fit.quadrature}, px={px}, stop: {fit.stop_reason}"}


def _fit_sharpbench_map(y: np.ndarray, opts: dict) -> dict:
    """sharpbench's exact MAP (PX-ECM), the estimate mirt+prior computes; the 3PL/4PL default."""
    return _fit_sharpbench(y, opts, px="map")


def _fit_sharpbench_torch(y: np.ndarray, opts: dict) -> dict:
    from sharpbench.irt import TorchTwoPL

    _only_2pl(opts, "sharpbench-torch")
    fit = TorchTwoPL().fit(y)
    return {**_params(fit.items["a"], fit.items["d"]), "theta": fit.abilities["theta"].tolist(),
            "n_iter": fit.n_iter, "converged": fit.converged, "note": f"joint MAP, {fit.prior_label}"}


def _mirt_priors(prior: dict, model: str) -> dict | None:
    """sharpbench's resolved ItemPrior as mirt Prior objects (see the module docstring)."""
    from mirt.estimation.priors import BetaPrior, NormalPrior

    out = {}
    if prior.get("a_sd") is not None:
        out["discrimination"] = NormalPrior(float(prior["a_mean"]), float(prior["a_sd"]))
    if prior.get("d_sd") is not None:
        out["difficulty"] = NormalPrior(0.0, float(prior["d_sd"]))
    if model in ("3pl", "4pl") and prior.get("g_alpha") is not None:
        out["guessing"] = BetaPrior(float(prior["g_alpha"]) + 1.0, float(prior["g_beta"]) + 1.0)
    if model == "4pl" and prior.get("u_alpha") is not None:
        out["upper"] = BetaPrior(float(prior["u_alpha"]) + 1.0, float(prior["u_beta"]) + 1.0)
    return out or None


def _describe_mirt_priors(pri: dict | None) -> str:
    if not pri:
        return "no prior"
    return ", ".join(f"{k} {v!r}" for k, v in pri.items())


def _fit_mirt(y: np.ndarray, opts: dict) -> dict:
    import mirt

    model = opts["model"]
    pri = _mirt_priors(opts["prior"], model) if opts["setting"] == "same" else None
    res = mirt.fit_mirt(y, model=model.upper(), compute_standard_errors=False, priors=pri)
    md = res.model
    a = np.asarray(md.discrimination, float).ravel()
    b = np.asarray(md.difficulty, float).ravel()
    g = np.asarray(md.guessing, float) if model in ("3pl", "4pl") else None
    u = np.asarray(md.upper, float) if model == "4pl" else None
    th = np.asarray(mirt.fscores(res, y).theta, float).ravel()
    return {**_params(a, -a * b, g, u), "theta": th.tolist(), "n_iter": int(res.n_iterations),
            "converged": bool(res.converged), "note": f"21 quadrature points, EM; {_describe_mirt_priors(pri)}"}


def _fit_girth(y: np.ndarray, opts: dict) -> dict:
    import girth

    _only_2pl(opts, "girth")
    data = girth.tag_missing_data(np.where(np.isnan(y), -1, y).astype(int).T, [0, 1])
    out = girth.twopl_jml(data)
    a, b = np.asarray(out["Discrimination"], float), np.asarray(out["Difficulty"], float)
    th = np.asarray(out.get("Ability", np.full(y.shape[0], np.nan)), float)
    return {**_params(a, -a * b), "theta": th.tolist(), "n_iter": -1, "converged": True, "note": "twopl_jml"}


def _fit_pyirt(y: np.ndarray, opts: dict) -> dict:
    import pandas as pd
    import pyro
    from py_irt.config import IrtConfig
    from py_irt.dataset import Dataset
    from py_irt.training import IrtModelTrainer

    _only_2pl(opts, "py-irt")
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
    return {**_params(a, -a * b), "theta": th.tolist(), "n_iter": int(cfg.epochs), "converged": True,
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


WORKERS = {"sharpbench": _fit_sharpbench, "sharpbench-map": _fit_sharpbench_map, "sharpbench-torch": _fit_sharpbench_torch, "mirt": _fit_mirt, "girth": _fit_girth, "py-irt": _fit_pyirt}


#: imported before any fit, so that times are fit times (import costs differ by seconds)
PRE_IMPORT = {"sharpbench": "sharpbench.irt", "sharpbench-map": "sharpbench.irt", "sharpbench-torch": "torch", "mirt": "mirt", "girth": "girth",
              "py-irt": "py_irt.training"}

#: tools that run in their default setting only (sharpbench's default is the "same" prior)
DEFAULT_ONLY = {"sharpbench", "sharpbench-map", "sharpbench-torch", "girth", "py-irt"}


def serve(method: str) -> None:
    """Worker loop: one JSON request per stdin line, one JSON reply per stdout line.

    Request: ``{"npz", "key", "cols" (optional: first columns only), "model",
    "setting", "prior", "epochs"}``. Reply: the fit's parameters, ``seconds``
    (fit plus abilities) and ``peak_rss_mib`` (the worker's, over all its fits
    so far), or ``{"error": ...}``.
    """
    import importlib
    import traceback

    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints of a package go to stderr, not into the replies
    importlib.import_module(PRE_IMPORT[method])
    if method == "sharpbench-torch":
        importlib.import_module("sharpbench.irt")
    cache: dict[tuple[str, str], np.ndarray] = {}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            key = (req["npz"], req["key"])
            if key not in cache:
                cache[key] = np.load(req["npz"])[req["key"]]
            y = cache[key]
            if req.get("cols"):
                y = np.ascontiguousarray(y[:, : req["cols"]])
            t0 = time.perf_counter()
            res = WORKERS[method](y, req)
            res["seconds"] = time.perf_counter() - t0
            res["peak_rss_mib"] = _peak_rss_mib()
        except Exception as exc:  # reported, the worker keeps serving
            res = {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "trace": traceback.format_exc()[-2000:]}
        reply.write(json.dumps(res) + "\n")
        reply.flush()


# ------------------------------------------------------------------ parent
class Worker:
    """A long-lived worker process for one tool (see :func:`serve`)."""

    def __init__(self, method: str, args) -> None:
        py = sys.executable if method.startswith("sharpbench") else args.peers_python
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        if args.threads:
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
                env[var] = str(args.threads)
        self.method = method
        self.log = tempfile.NamedTemporaryFile(prefix=f"irtbench_{method}_", suffix=".log", delete=False)
        self.proc = subprocess.Popen([py, __file__, "--serve", method], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)

    def fit(self, req: dict) -> dict:
        if self.proc.poll() is not None:
            return {"error": f"worker exited ({self.proc.returncode}); log {self.log.name}"}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"worker died; log {self.log.name}"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def resolved_prior(values: np.ndarray, model: str) -> dict:
    """The prior sharpbench's ``prior="auto"`` resolves to for this matrix (asymptote priors included)."""
    from sharpbench.irt.data import column_stats
    from sharpbench.irt.priors import resolve_prior, with_asymptote_priors

    pv = column_stats(values).p_item
    prior, _ = resolve_prior("auto", values.shape[0], bool(((pv == 0) | (pv == 1)).any()))
    prior, _ = with_asymptote_priors(prior, FREE[model])
    return prior.to_dict()


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
    ap.add_argument("--irt-models", default="2pl", help="comma list of 1pl, 2pl, 3pl, 4pl")
    ap.add_argument("--settings", default="default,same",
                    help="peer settings: default (each tool's defaults), same (mirt given sharpbench's prior)")
    ap.add_argument("--peers-python", default="/work/peers-venv/bin/python")
    ap.add_argument("--pyirt-epochs", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/rayon threads per worker (0: leave alone)")
    ap.add_argument("--repeat", type=int, default=3, help="timed fits per setting (interleaved); times are medians")
    ap.add_argument("--warmup-items", type=int, default=-1,
                    help="untimed warm-up fit per setting before the timed ones: on the whole training matrix "
                         "(-1, default), on its first N items (N > 0; cheaper, but mirt's first full-size fit "
                         "after a 500-item warm-up still took 2.5x its later ones), or none (0)")
    ap.add_argument("--json", type=Path, default=None, help="also write all results here")
    ap.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return

    from sharpbench.irt.fitstats import cell_loglik, item_mean_baseline, mask_cells, predict_cells

    methods = args.methods.split(",")
    if args.quick and "py-irt" in methods:
        methods.remove("py-irt")
    if not Path(args.peers_python).exists():
        print(f"peers python {args.peers_python} missing: running sharpbench only")
        methods = [m for m in methods if m.startswith("sharpbench")]
    settings = args.settings.split(",")
    # (label, tool, setting); sharpbench's default is the "same" prior, so it runs once
    entries = []
    for m in methods:
        for st in settings:
            if m in DEFAULT_ONLY and st != "default":
                continue
            entries.append((m if st == "default" else f"{m}+prior", m, st))
    workers = {m: Worker(m, args) for m in methods}
    warm = {0: "none", -1: "one fit of the same matrix"}.get(args.warmup_items, f"one fit of {args.warmup_items} items")
    print(f"threads per worker: {args.threads or 'default'}; warm-up: {warm}; "
          f"{args.repeat} interleaved repeats; times = fit + abilities on the training matrix (90% of cells)")
    report = []
    tmp = Path(tempfile.mkdtemp(prefix="irtbench_"))
    try:
        for name, y, truth in datasets(args):
            train, held = mask_cells(y, 0.1, seed=0)
            cells = np.nonzero(held)
            npz = tmp / f"{name}.npz"
            np.savez(npz, full=y, train=train)
            base = cell_loglik(y[cells], item_mean_baseline(train, cells))
            print(f"\n== {name}: {y.shape[0]} respondents x {y.shape[1]} items, {int(np.isnan(y).sum())} missing; "
                  f"held-out cells {cells[0].size}, item-mean baseline {base:.4f}; load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
            for model in args.irt_models.split(","):
                prior = resolved_prior(train, model)
                print(f"-- {model.upper()}; sharpbench prior (train matrix): "
                      f"{ {k: v for k, v in prior.items() if v is not None} }", flush=True)
                todo = [e for e in entries if not (name == "sim_5000x30000" and not e[1].startswith("sharpbench"))]

                def request(tool, setting, key, cols=None, _model=model, _npz=npz):
                    pr = resolved_prior(train if key == "train" else y, _model)
                    return workers[tool].fit({"npz": str(_npz), "key": key, "cols": cols, "model": _model,
                                              "setting": setting, "prior": pr, "epochs": args.pyirt_epochs})

                if args.warmup_items:
                    cols = None if args.warmup_items < 0 else min(args.warmup_items, y.shape[1])
                    for _label, tool, st in todo:
                        request(tool, st, "train", cols=cols)
                runs: dict[str, list[dict]] = {e[0]: [] for e in todo}
                for _rep in range(max(args.repeat, 1)):
                    for label, tool, st in todo:
                        runs[label].append(request(tool, st, "train"))
                rows = []
                for label, tool, st in todo:
                    errors = [r for r in runs[label] if "error" in r]
                    if errors:
                        print(f"  {label:16s} error: {errors[0]['error']}", flush=True)
                        continue
                    last = runs[label][-1]
                    secs = [r["seconds"] for r in runs[label]]
                    row = {"data": name, "model": model, "method": label, "tool": tool, "setting": st,
                           "seconds": float(np.median(secs)), "seconds_all": secs, "peak_rss_mib": last["peak_rss_mib"],
                           "n_iter": last["n_iter"], "converged": last["converged"], "note": last["note"]}
                    if tool == "sharpbench" and last.get("prior") != prior:
                        row["note"] += f" (prior differs from the one given to peers: {last.get('prior')})"
                    g = np.array(last["g"]) if "g" in last else None
                    u = np.array(last["u"]) if "u" in last else None
                    p = predict_cells(train, cells, np.array(last["a"]), np.array(last["d"]), g, u)
                    row["heldout"] = cell_loglik(y[cells], p)
                    if truth is not None:
                        full = request(tool, st, "full")
                        if "error" not in full:
                            a, d = np.array(full["a"]), np.array(full["d"])
                            with np.errstate(divide="ignore", invalid="ignore"):
                                b = -d / a
                            th = np.array(full["theta"])
                            row["rmse_a"] = float(np.sqrt(np.mean((a - truth["a"]) ** 2)))
                            row["rmse_b"] = float(np.sqrt(np.nanmean((b - truth["b"]) ** 2)))
                            row["rmse_theta"] = (float(np.sqrt(np.nanmean((th - truth["theta"]) ** 2)))
                                                 if np.isfinite(th).any() else float("nan"))
                    rows.append(row)
                    extra = "".join(f", {k} {row[k]:.4f}" for k in ("heldout", "rmse_a", "rmse_b", "rmse_theta") if k in row)
                    spread = f" (median of {len(secs)}: {', '.join(f'{x:.2f}' for x in secs)})" if len(secs) > 1 else ""
                    print(f"  {label:16s} {row['seconds']:8.2f} s{spread}  peak {row['peak_rss_mib']:7.0f} MiB, "
                          f"{row['n_iter']} iterations{'' if row['converged'] else ' (NOT converged)'}{extra}  "
                          f"({row['note']})", flush=True)
                ours = next((r for r in rows if r["method"] == "sharpbench"), None)
                if ours:
                    for r in rows:
                        if r is not ours:
                            # median over repeats of the ratio within each repeat (same load for both)
                            ratios = [p_ / q for p_, q in zip(r["seconds_all"], ours["seconds_all"])]
                            r["time_ratio_vs_sharpbench"] = float(np.median(ratios))
                            r["heldout_minus_sharpbench"] = r["heldout"] - ours["heldout"]
                            print(f"  {r['method']:16s} / sharpbench time ratio: {r['time_ratio_vs_sharpbench']:.2f}x"
                                  + (f" (per repeat: {', '.join(f'{x:.2f}' for x in ratios)})" if len(ratios) > 1 else "")
                                  + f"; held-out {r['heldout_minus_sharpbench']:+.4f} vs sharpbench")
                report.extend(rows)
    finally:
        for w in workers.values():
            w.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
